"""Real two-process runs (`simulate emulate`): pacing, payload bytes, the workers' training against
MethodTrainer's, part steps (measured in the session, refused from another host), the wake-up charge,
`split: auto`, real workers on loopback, a cloud killed mid-run, a bad address; and the validation
table against the simulator."""
import math
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import (
    ROOT,
    assert_user_error,
    needs_fashion_mnist,
    run_process,
    write_scenario,
)

from simulator.core.names import METHODS
from simulator.costmodel.costs import batch_costs, uplink_payload_bytes
from simulator.data.batching import get_preprocess
from simulator.emulation.channel import DATA, Frame
from simulator.emulation.compute import (
    cloud_features,
    cloud_raw,
    edge_hierarchical,
    edge_split_backward,
    edge_split_forward,
)
from simulator.emulation.hosts import host_identity
from simulator.emulation.launcher import emulate
from simulator.emulation.pacing import PacedLink
from simulator.emulation.part_steps import CLOUD_STEPS, EDGE_STEPS, WAITING, Repeats
from simulator.emulation.payloads import (
    decode_with_labels,
    encode_raw,
    encode_with_labels,
)
from simulator.emulation.plan import at_rates, plan_runs
from simulator.emulation.prediction import predict, wake_ms
from simulator.emulation.processes import free_port
from simulator.emulation.session import build_parts, run_request, sgd
from simulator.emulation.steps_file import MeasuredSteps, load_steps, write_steps
from simulator.emulation.validation import VALIDATION_COLUMNS, validation_table
from simulator.models import build_model
from simulator.models.codecs import CODECS, roundtrip
from simulator.profiling.measure import measure_profile
from simulator.profiling.schema import Profile
from simulator.scenario.load import load_scenario
from simulator.sim.engine import simulate
from simulator.sweep.points import SweepPoint, run_spec
from simulator.training.methods import MethodTrainer
from simulator.training.optimizer import OptimizerConfig

SCENARIO = ROOT / "scenarios" / "emulate_fashion_mnist.yaml"


# ---- pacing: the simulator's link in real time -------------------------------------------

def paced(buffer_batches: int | None, sizes: list[int], rate_mbps: float, latency_ms: float):
    """Send payloads of `sizes` bytes at once; (send returned, delivered) times after the start, s."""
    delivered = []
    link = PacedLink("uplink", lambda frame: delivered.append(time.perf_counter()), rate_mbps, latency_ms,
                     buffer_batches)
    start = time.perf_counter()
    returned = []
    for batch, size in enumerate(sizes):
        link.send(Frame(DATA, batch, torch.zeros(0, dtype=torch.uint8)), size)
        returned.append(time.perf_counter() - start)
    assert link.close(5.0)
    return returned, [t - start for t in delivered], link


def test_paced_link_serialises_in_order_then_adds_latency():
    # 12,500 B at 1 Mbit/s = 0.1 s on the wire each, then 50 ms: deliveries at 0.15, 0.25, 0.35 s.
    _, delivered, link = paced(None, [12_500, 12_500, 12_500], 1.0, 50.0)
    assert delivered == pytest.approx([0.15, 0.25, 0.35], abs=0.02)
    assert link.delivered == 3 and link.bytes_charged == 37_500 and link.max_backlog == 3


def test_paced_link_buffer_holds_the_sender_until_the_wire_frees():
    # Buffer of 2 batches (the one on the wire included): the third send waits for the first to leave (0.1 s).
    returned, delivered, _ = paced(2, [12_500, 12_500, 12_500], 1.0, 0.0)
    assert returned[:2] == pytest.approx([0.0, 0.0], abs=0.02)
    assert returned[2] == pytest.approx(0.1, abs=0.02)
    assert delivered == pytest.approx([0.1, 0.2, 0.3], abs=0.02)


def test_a_failed_delivery_takes_the_link_down_and_stops_blocking():
    from simulator.emulation.channel import LinkLost

    def deliver(frame):
        raise LinkLost("Connection reset by peer")

    link = PacedLink("uplink", deliver, 1000.0, 0.0, 1)
    assert link.send(Frame(DATA, 0, torch.zeros(0, dtype=torch.uint8)), 10)
    deadline = time.monotonic() + 2
    while not link.down and time.monotonic() < deadline:
        time.sleep(0.01)
    assert link.down and "Connection reset" in link.error
    assert not link.send(Frame(DATA, 1, torch.zeros(0, dtype=torch.uint8)), 10)  # dropped, no wait
    assert not link.close(1.0)


# ---- payloads: the bytes the simulator charges --------------------------------------------

@pytest.mark.parametrize("codec", CODECS)
def test_payloads_are_the_bytes_the_simulator_charges(codec):
    profile = Profile.load(ROOT / "profiles" / "epyc-1t_vgg16_fashion-mnist_w0.25_b32.json")
    costs = batch_costs(profile, profile, "stage3", codec)
    shape = tuple(profile.layers[profile.layer_index("stage3")].out_shape)
    features, labels = torch.randn(shape), torch.randint(0, 10, (shape[0],))
    body = encode_with_labels(codec, features, labels)
    assert body.numel() == uplink_payload_bytes(costs, "hierarchical")
    received, received_labels = decode_with_labels(codec, body, shape)
    assert torch.equal(received, roundtrip(codec, features)) and torch.equal(received_labels, labels)
    raw = encode_raw(torch.randint(0, 256, (shape[0], 1, 28, 28), dtype=torch.uint8), labels)
    assert raw.numel() == uplink_payload_bytes(costs, "full_cloud")


# ---- the workers train what MethodTrainer trains ----------------------------------------------

@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("method", METHODS)
def test_the_workers_train_what_method_trainer_trains(method, codec):
    """Three batches through the workers' per-batch functions, each worker with its own copy of the
    model built from the seed, the tensors crossing as the payload bytes they send: every weight and
    buffer equals MethodTrainer's on the same batches. Exactly, for every codec: the bytes carry
    the codec's payload losslessly, and int8's header holds the scale and minimum as float32, which
    is the precision torch multiplies a float32 tensor by a Python float in anyway."""
    scenario = load_scenario(SCENARIO)
    request = replace(run_request(scenario, "vgg16", "stage3", method, 10.0, 3), codec=codec, width=0.0625,
                      batch_size=8)
    device = torch.device("cpu")
    edge, shape = build_parts(request, device)  # the edge worker's copy
    cloud, _ = build_parts(request, device)  # the cloud worker's, in the other process
    affine = get_preprocess("fashion-mnist").affine()
    generator = torch.Generator().manual_seed(1)
    batches = [(torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8, generator=generator),
                torch.randint(0, 10, (8,), generator=generator)) for _ in range(3)]
    if method == "full_cloud":
        cloud_optimizer = sgd([cloud.edge, cloud.cloud], request)
    else:
        edge_optimizer = sgd([edge.edge] + ([edge.early_exit] if method == "hierarchical" else []), request)
        cloud_optimizer = sgd([cloud.cloud], request)
    for images, labels in batches:
        x = images.to(torch.float32).mul_(affine[0]).add_(affine[1])
        if method == "full_cloud":
            cloud_raw(cloud, cloud_optimizer, encode_raw(images, labels), tuple(images.shape), affine, device)
        elif method == "hierarchical":
            body = edge_hierarchical(edge, edge_optimizer, x, labels, codec)
            cloud_features(cloud, cloud_optimizer, body, codec, shape, device, send_gradient=False)
        else:
            activations, body = edge_split_forward(edge, edge_optimizer, x, labels, codec)
            gradient = cloud_features(cloud, cloud_optimizer, body, codec, shape, device, send_gradient=True)
            edge_split_backward(edge_optimizer, activations, gradient, codec)

    torch.manual_seed(request.seed)
    trainer = MethodTrainer(build_model("vgg16", "fashion-mnist", 0.0625), "stage3", method, codec,
                            OptimizerConfig(lr=request.lr, momentum=request.momentum,
                                            weight_decay=request.weight_decay, schedule="constant"), total_steps=3)
    for images, labels in batches:
        trainer.step(images.to(torch.float32).mul_(affine[0]).add_(affine[1]), labels)
    trained = {"edge": (cloud if method == "full_cloud" else edge).edge, "early_exit": edge.early_exit,
               "cloud": cloud.cloud}
    for part, module in trained.items():
        expected = getattr(trainer.parts, part).state_dict()
        for name, value in module.state_dict().items():
            assert torch.equal(value, expected[name]), (part, name)
    untrained = build_parts(request, device)[0].cloud.state_dict()
    assert any(not torch.equal(value, untrained[name]) for name, value in trained["cloud"].state_dict().items())


# ---- the prediction: part steps, the wake-up charge, the structural re-run --------------------

def measured_steps(busy_ms: dict, after_wait_ms: dict, host: dict | None = None, **key) -> MeasuredSteps:
    fields = {"model": "vgg16", "split": "stage3", "codec": "fp16", "dataset": "fashion-mnist", "width": 0.25,
              "batch_size": 32, "edge_threads": 1, "cloud_threads": 1} | key
    return MeasuredSteps(**fields, edge_host=host or host_identity(), cloud_host=host or host_identity(),
                         busy_ms=busy_ms, after_wait_ms=after_wait_ms, repeats=60, wait_repeats=10)


def test_the_wake_up_cost_is_interpolated_in_the_measured_waits():
    steps = measured_steps({"split_cloud": 10.0, "hierarchical_cloud": 10.0},
                           {"split_cloud": {"10": 11.0, "100": 15.0, "300": 16.0},
                            "hierarchical_cloud": {"10": 9.0, "30": 12.0}})
    # 0 at no wait; linear to +1 ms at 10 ms, to +5 ms at 100 ms, to +6 ms at 300 ms; +6 ms beyond.
    for idle_ms, extra_ms in ((0, 0), (5, 0.5), (10, 1), (55, 3), (200, 5.5), (1000, 6)):
        assert wake_ms(steps, "split_cloud", idle_ms) == pytest.approx(extra_ms)
    # a mean below the busy one is noise: no gain from waiting (0 at 10 ms), then up to +2 ms at 30 ms
    for idle_ms, extra_ms in ((10, 0), (20, 1), (30, 2), (100, 2)):
        assert wake_ms(steps, "hierarchical_cloud", idle_ms) == pytest.approx(extra_ms)


def test_split_learning_is_charged_the_wake_up_cost_on_both_sides():
    """Split learning in turn: every edge backward and every cloud step follows an idle wait of
    more than 10 ms, so each pays the +4 ms measured after such waits; by hand, per batch:
    prep + fwd 10 + up (36,896 B at 10 Mbit/s + 50 ms) + cloud 5 + 4 + down (36,864 B at 40 Mbit/s
    + 50 ms) + bwd 20 + 4."""
    scenario = load_scenario(SCENARIO)
    busy = {"hierarchical_edge": 30.0, "split_edge_forward": 10.0, "split_edge_backward": 20.0,
            "hierarchical_cloud": 5.0, "split_cloud": 5.0, "full_cloud": 40.0}
    after = {step: {"10": busy[step] + 4, "300": busy[step] + 4} for step in WAITING}
    request = run_request(scenario, "vgg16", "stage3", "split_learning", 10.0, 10)
    prediction = predict(scenario, request, measured_steps(busy, after))
    prep_ms = scenario.edge_profiles["vgg16"].input_prep_ms
    batch_ms = prep_ms + 10 + 36_896 * 8 / 10e3 + 50 + 5 + 4 + 36_864 * 8 / 40e3 + 50 + 20 + 4
    assert prediction.result.total_time_s == pytest.approx(10 * batch_ms / 1e3, rel=1e-9)
    assert (prediction.edge_wake_ms, prediction.cloud_wake_ms) == pytest.approx((4.0, 4.0))
    full = predict(scenario, replace(request, method="full_cloud"), measured_steps(busy, after))
    assert full.cloud_wake_ms == 0 and math.isnan(full.edge_wake_ms)  # the stored batches train back to back


def test_structural_error_reruns_the_simulation_with_the_runs_own_compute():
    """A split-learning record whose workers measured 40 ms (edge, of which 25 after the gradient) and
    8 ms (cloud) per batch: the structural prediction is, by hand, 10 x (40 + up + 8 + down)."""
    scenario = load_scenario(SCENARIO)
    busy = dict.fromkeys(EDGE_STEPS + CLOUD_STEPS, 10.0)
    steps = measured_steps(busy, {step: {"10": 10.0} for step in WAITING})
    record = {"model": "vgg16", "split": "stage3", "method": "split_learning", "uplink_mbps": 10.0, "batches": 10,
              "status": "ok", "measured_s": 2.0, "edge_s": 2.0, "cloud_s": 2.0, "edge_batches": 10,
              "cloud_batches": 10, "edge_compute_ms": 40.0, "edge_backward_ms": 25.0, "cloud_compute_ms": 8.0,
              "link_late_ms": 0.3, "bytes_up": 1, "bytes_down": 1, "batches_dropped": 0, "edge_threads": 1, "cloud_threads": 1, "note": ""}
    table = validation_table(scenario, [record], {steps.key(): steps}, [""], "part steps (test)", "pinned (test)")
    assert list(table.columns[:7]) == VALIDATION_COLUMNS
    structural_s = 10 * (40 + 36_896 * 8 / 10e3 + 50 + 8 + 36_864 * 8 / 40e3 + 50) / 1e3
    assert table.structural_error_pct[0] == pytest.approx(100 * (structural_s - 2.0) / 2.0, rel=1e-9)
    predicted = predict(scenario, run_request(scenario, "vgg16", "stage3", "split_learning", 10.0, 10), steps)
    assert table.predicted_s[0] == pytest.approx(predicted.result.total_time_s)
    assert table.error_pct[0] == pytest.approx(100 * (predicted.result.total_time_s - 2.0) / 2.0)


# ---- split: auto ------------------------------------------------------------------------------

def test_split_auto_emulates_each_rate_at_the_fastest_point():
    """Under split: auto each rate gets its own point: the one whose simulated hierarchical time is
    the shortest of all points (brute force over the discrete-event simulation)."""
    scenario = load_scenario(SCENARIO)
    scenario.workload.models[0].split = "auto"
    rates = [0.2, 1.0, 1000.0]
    runs = plan_runs(scenario, rates, 50)
    assert [(r.request.uplink_mbps, r.request.method) for r in runs] == [
        (rate, method) for rate in rates for method in scenario.methods]
    points = scenario.edge_profiles["vgg16"].layer_names[:-1]
    at = at_rates(scenario, rates)
    chosen = {}
    for rate in rates:
        for method in ("hierarchical", "split_learning"):  # each at its own point; full_cloud runs at hierarchical's
            times = {p: simulate(run_spec(at, SweepPoint("vgg16", p, method, rate))).total_time_s for p in points}
            used = {r.request.method: r for r in runs if r.request.uplink_mbps == rate}
            split_point = used[method].request.split
            assert times[split_point] <= min(times.values()) * (1 + 1e-9), (rate, method, split_point, times)
            note = used[method].note
            assert f"split: auto chose {split_point} for {method} at {rate:g} Mbit/s" in note
            if method == "hierarchical":
                assert "accuracy not checked" in note and used["full_cloud"].request.split == split_point
                chosen[rate] = split_point
    assert len(set(chosen.values())) > 1  # the rates really differ in their point


# ---- part steps from a file: only this machine's --------------------------------------------

@pytest.mark.parametrize("host, expected", [
    ({"hostname": "elsewhere"}, "host 'elsewhere'"),
    ({"torch": "1.0.0"}, "torch 1.0.0, here"),
    ({"cpu_model": "Other CPU"}, "CPU 'Other CPU'"),
])
def test_part_steps_from_another_host_or_torch_are_refused(host, expected, tmp_path, cli):
    busy = dict.fromkeys(EDGE_STEPS + CLOUD_STEPS, 10.0)
    path = write_steps(tmp_path / "steps.json", [measured_steps(busy, {}, host_identity() | host)])
    proc = cli("emulate", SCENARIO, "--part-steps", path, "--batches", "2")
    assert_user_error(proc, str(path), "measured elsewhere", expected, "leave --part-steps out")


def test_part_steps_must_cover_every_point(tmp_path, cli):
    busy = dict.fromkeys(EDGE_STEPS + CLOUD_STEPS, 10.0)
    path = write_steps(tmp_path / "steps.json", [measured_steps(busy, {}, split="stage2")])
    assert_user_error(cli("emulate", SCENARIO, "--part-steps", path), "no part steps for vgg16 cut at stage3")
    assert_user_error(cli("emulate", SCENARIO, "--part-steps", path, "--measure-steps"), "exclude each other")
    (tmp_path / "old.json").write_text('{"schema": "part_steps/1"}')
    assert_user_error(cli("emulate", SCENARIO, "--part-steps", tmp_path / "old.json"), "schema 'part_steps/1'")


# ---- real workers on loopback ----------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_profile(tmp_path_factory) -> Path:
    """A quick one-thread profile of VGG-16 at width 0.0625 (its times are not what is tested here)."""
    path = tmp_path_factory.mktemp("profile") / "tiny.json"
    profile = measure_profile("vgg16", "fashion-mnist", 32, "cpu", threads=1, repeats=1, warmup=0, width=0.0625,
                              progress=False)
    profile.save(path)
    return path


def tiny_scenario_file(folder: Path, profile: Path, methods: list[str]) -> Path:
    """The shipped scenario on a width-0.0625 VGG-16, its point chosen per rate (split: auto)."""
    return write_scenario(folder, {"methods": methods, "workload.models": [{"name": "vgg16", "split": "auto"}],
                                   "edge.profiles": {"vgg16": str(profile)}, "cloud.profiles": {"vgg16": str(profile)}},
                          base="emulate_fashion_mnist", name="tiny")


@pytest.fixture(scope="module")
def tiny_steps(tmp_path_factory, tiny_profile) -> Path:
    """Part steps of the tiny scenario at 0.05 and 50 Mbit/s (each method's own points), measured by
    the two workers (`--measure-steps`, default output path) with few repeats: what the runs below
    predict from."""
    folder = tmp_path_factory.mktemp("steps")
    path = tiny_scenario_file(folder, tiny_profile, ["full_cloud", "split_learning", "hierarchical"])
    written = emulate(str(path), [0.05, 50.0], 6, None, 20.0, progress=False, measure_only=True,
                      repeats=Repeats(5, 2))
    assert written == folder / "out" / "part_steps.json"
    return written


@pytest.fixture
def tiny_scenario(tmp_path, tiny_profile):
    return lambda methods: tiny_scenario_file(tmp_path, tiny_profile, methods)




def processes_naming(text: str) -> list[int]:
    """Live processes whose command line mentions `text` (a test's own temporary path)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@needs_fashion_mnist
def test_the_two_workers_measure_their_part_steps_here(tiny_steps):
    entries = {entry.split: entry for entry in load_steps(tiny_steps)}
    assert len(entries) >= 2  # split: auto chose a different point at each rate (and per method)
    for entry in entries.values():
        assert entry.edge_host == entry.cloud_host == host_identity() and entry.repeats == 5
        assert set(entry.busy_ms) == set(EDGE_STEPS + CLOUD_STEPS) and all(v > 0 for v in entry.busy_ms.values())
        assert set(entry.after_wait_ms) == set(WAITING)
    # the whole model trains longer than any part of it
    assert all(e.busy_ms["full_cloud"] > e.busy_ms["split_cloud"] for e in entries.values())


@needs_fashion_mnist
def test_every_method_trains_for_real_across_two_processes(tiny_scenario, tiny_steps, tmp_path):
    path = tiny_scenario(["full_cloud", "split_learning", "hierarchical"])
    proc = run_process("emulate", path, "--uplink-mbps", "50", "--batches", "6", "--timeout-s", "20",
                       "--no-progress", "--part-steps", tiny_steps)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(tmp_path / "out" / "validation.csv")
    assert list(table.columns[:7]) == VALIDATION_COLUMNS
    assert list(table.method) == ["full_cloud", "split_learning", "hierarchical"]
    assert (table.status == "ok").all() and (table.cloud_batches == 6).all() and (table.batches == 6).all()
    assert (table.measured_s > 0).all() and (table.predicted_s > 0).all()
    assert table.structural_error_pct.notna().all() and table.error_pct.notna().all()
    assert table.split[0] == table.split[2]  # full_cloud's processes are cut at hierarchical's point
    for row in table.itertuples():  # each method at its own point
        method = "hierarchical" if row.method == "full_cloud" else row.method
        assert f"split: auto chose {row.split} for {method} at 50" in row.note
    assert (table.pacing == "application").all() and (table.edge_threads == 1).all()
    assert (table.compute_model == f"part steps from {tiny_steps}").all()
    assert table.cores[0].startswith("edge on core") or table.cores[0].startswith("not pinned")
    assert (tmp_path / "out" / "fig_validation.png").stat().st_size > 1000
    assert not (tmp_path / "out" / "part_steps.json").exists()  # given, not measured: nothing to write
    assert "structural_error_pct" in proc.stdout
    assert processes_naming(str(tmp_path)) == []  # both workers are gone


def start_cloud(path: Path, port: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "simulator", "emulate-worker", "--role", "cloud", "--listen",
                             f"127.0.0.1:{port}", str(path), "--timeout-s", "20"], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@needs_fashion_mnist
@pytest.mark.parametrize("method", ["hierarchical", "split_learning"])
def test_killing_the_cloud_mid_run(method, tiny_scenario, tiny_steps, tmp_path):
    """A separate cloud worker (as on a server), killed while the edge trains: the hierarchical edge
    still trains every batch; split learning stops at once; both say what happened."""
    path, port = tiny_scenario([method]), free_port()
    cloud = start_cloud(path, port)
    edge = subprocess.Popen([sys.executable, "-m", "simulator", "emulate", str(path), "--cloud", f"127.0.0.1:{port}",
                             "--uplink-mbps", "0.05", "--batches", "30", "--timeout-s", "20", "--no-progress",
                             "--part-steps", str(tiny_steps)], cwd=ROOT, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        for line in cloud.stdout:  # the run has started on the cloud
            if method in line:
                break
        time.sleep(1.0)
        cloud.send_signal(signal.SIGKILL)
        out, err = edge.communicate(timeout=60)
    finally:
        for process in (cloud, edge):
            if process.poll() is None:
                process.kill()
                process.wait()
    assert edge.returncode == 0, err
    row = pd.read_csv(tmp_path / "out" / "validation.csv").iloc[0]
    assert row.status == "cloud_lost" and pd.isna(row.measured_s) and "cloud" in row.note
    if method == "hierarchical":
        assert row.edge_batches == 30 and "the edge trained 30 of 30 batches" in row.note
    else:
        assert row.edge_batches < 30 and "cannot continue without gradients" in row.note
    assert "note:" in out
    assert processes_naming(str(tmp_path)) == []


def test_a_bad_address_fails_in_one_line_within_the_timeout(tmp_path):
    port = free_port()  # nothing listens there
    started = time.monotonic()
    proc = run_process("emulate", SCENARIO, "--cloud", f"127.0.0.1:{port}", "--timeout-s", "3", "--batches", "2")
    assert_user_error(proc, f"127.0.0.1:{port}", "no cloud worker answered within the timeout")
    assert time.monotonic() - started < 3 + 20  # the timeout plus two interpreter start-ups
    assert_user_error(run_process("emulate", SCENARIO, "--cloud", "server-without-port"), "--cloud", "HOST:PORT")
