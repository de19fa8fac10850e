"""Real two-process runs (`simulate emulate`): pacing, payload bytes, real workers on loopback,
a cloud killed mid-run, a bad address; and the validation table against the simulator."""
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from conftest import ROOT, assert_user_error, needs_fashion_mnist, run_process

from simulator.costmodel.costs import batch_costs, uplink_payload_bytes
from simulator.emulation.channel import DATA, Frame
from simulator.emulation.pacing import PacedLink
from simulator.emulation.payloads import decode_with_labels, encode_raw, encode_with_labels
from simulator.emulation.prediction import emulated_spec
from simulator.emulation.validation import VALIDATION_COLUMNS, validation_table
from simulator.models.codecs import CODECS, roundtrip
from simulator.profiling.measure import measure_profile
from simulator.profiling.schema import Profile
from simulator.scenario.config import load_scenario
from simulator.sim.engine import simulate

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


# ---- real workers on loopback ----------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_profile(tmp_path_factory) -> Path:
    """A quick one-thread profile of VGG-16 at width 0.0625 (its times are not what is tested here)."""
    path = tmp_path_factory.mktemp("profile") / "tiny.json"
    profile = measure_profile("vgg16", "fashion-mnist", 32, "cpu", threads=1, repeats=1, warmup=0, width=0.0625,
                              progress=False)
    profile.save(path)
    return path


@pytest.fixture
def tiny_scenario(tmp_path, tiny_profile):
    """The shipped scenario on a width-0.0625 VGG-16."""
    def make(methods: list[str]) -> Path:
        data = yaml.safe_load(SCENARIO.read_text())
        data.update(methods=methods, output_dir=str(tmp_path / "out"))
        data["edge"]["profiles"]["vgg16"] = data["cloud"]["profiles"]["vgg16"] = str(tiny_profile)
        path = tmp_path / "tiny.yaml"
        path.write_text(yaml.safe_dump(data))
        return path
    return make


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
def test_every_method_trains_for_real_across_two_processes(tiny_scenario, tmp_path):
    path = tiny_scenario(["full_cloud", "split_learning", "hierarchical"])
    proc = run_process("emulate", path, "--uplink-mbps", "50", "--batches", "6", "--timeout-s", "20",
                       "--no-progress")
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(tmp_path / "out" / "validation.csv")
    assert list(table.columns[:6]) == VALIDATION_COLUMNS
    assert list(table.method) == ["full_cloud", "split_learning", "hierarchical"]
    assert (table.status == "ok").all() and (table.cloud_batches == 6).all() and (table.batches == 6).all()
    assert (table.measured_s > 0).all() and (table.predicted_s > 0).all()
    assert (table.pacing == "application").all() and (table.edge_threads == 1).all()
    assert (tmp_path / "out" / "fig_validation.png").stat().st_size > 1000
    assert "error_pct" in proc.stdout
    assert processes_naming(str(tmp_path)) == []  # both workers are gone


def start_cloud(path: Path, port: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "simulator", "emulate-worker", "--role", "cloud", "--listen",
                             f"127.0.0.1:{port}", str(path), "--timeout-s", "20"], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@needs_fashion_mnist
@pytest.mark.parametrize("method", ["hierarchical", "split_learning"])
def test_killing_the_cloud_mid_run(method, tiny_scenario, tmp_path):
    """A separate cloud worker (as on a server), killed while the edge trains: the hierarchical edge
    still trains every batch; split learning stops at once; both say what happened."""
    path, port = tiny_scenario([method]), free_port()
    cloud = start_cloud(path, port)
    edge = subprocess.Popen([sys.executable, "-m", "simulator", "emulate", str(path), "--cloud", f"127.0.0.1:{port}",
                             "--uplink-mbps", "0.5", "--batches", "30", "--timeout-s", "20", "--no-progress"],
                            cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
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


# ---- the validation table ---------------------------------------------------------------------

def test_validation_table_compares_with_the_simulation():
    scenario = load_scenario(SCENARIO)
    record = {"model": "vgg16", "split": "stage3", "method": "hierarchical", "uplink_mbps": 10.0, "batches": 200,
              "status": "ok", "measured_s": 12.0, "edge_s": 11.0, "cloud_s": 12.0, "edge_batches": 200,
              "cloud_batches": 200, "edge_compute_ms": 50.0, "cloud_compute_ms": 20.0, "link_late_ms": 0.3,
              "bytes_up": 1, "bytes_down": 0, "edge_threads": 1, "cloud_threads": 1, "note": ""}
    table = validation_table(scenario, [record])
    assert list(table.columns[:6]) == VALIDATION_COLUMNS
    predicted = simulate(emulated_spec(scenario, "vgg16", "hierarchical", 10.0, 200)).total_time_s
    assert table.predicted_s[0] == pytest.approx(predicted)
    assert table.error_pct[0] == pytest.approx(100 * (predicted - 12.0) / 12.0)
