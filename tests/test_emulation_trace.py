"""Real runs over measured traces and outages: the paced link follows the simulator's transfer-end
rule (`links.capacity.LinkClock`) and its drop policies, and a real emulation over a hand-written
Mahimahi trace, or through an outage under drop_oldest, follows the simulated run."""
import math
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import (
    DELETE,
    assert_user_error,
    needs_fashion_mnist,
    run_process,
    write_scenario,
)
from test_emulation import tiny_profile  # noqa: F401  (a fixture: the tiny VGG-16's profile)

from simulator.costmodel.costs import LinkSpec
from simulator.emulation.channel import DATA, Frame
from simulator.emulation.launcher import emulate
from simulator.emulation.pacing import PacedLink, stall_allowance_s
from simulator.emulation.part_steps import Repeats
from simulator.emulation.plan import at_rates
from simulator.links.capacity import LinkClock, LinkShape
from simulator.scenario.load import load_scenario

STRUCTURAL_PCT = 5.0  # the emulation's target on structural_error_pct (README "Real runs")


# ---- the paced link follows the trace, the outages and the drop policy --------------------------

def paced(link: PacedLink, sizes: list[int]) -> tuple[list[float], list[bool], list[tuple[int, float]]]:
    """Send payloads of `sizes` bytes at once from t = 0: when each send returned (s), whether
    it queued the payload, and (batch, delivered s) of each delivery."""
    delivered: list[tuple[int, float]] = []
    link.deliver = lambda frame: delivered.append((frame.batch, time.perf_counter()))
    start = time.perf_counter()
    link.start(start)
    returned, queued = [], []
    for batch, size in enumerate(sizes):
        queued.append(link.send(Frame(DATA, batch, torch.zeros(0, dtype=torch.uint8)), size))
        returned.append(time.perf_counter() - start)
    assert link.close(10.0)
    return returned, queued, [(batch, t - start) for batch, t in delivered]


def no_delivery(_frame: Frame) -> None:
    raise AssertionError("paced() sets the delivery")


def write_trace(path: Path, times_ms: list[int]) -> str:
    path.write_text("".join(f"{t}\n" for t in times_ms))
    return str(path)


def test_paced_link_uses_the_trace_opportunities_one_payload_after_the_other(tmp_path):
    # Opportunities at 100, 200 | gap | 1500, 1600 ms (period 2000 ms). Two payloads of 3,000 B, two
    # packets each: the first leaves at the 200 ms one, the second may not reuse it and leaves at
    # 1600 ms; both arrive 50 ms later.
    trace = write_trace(tmp_path / "gap.up", [100, 200, 1500, 1600, 2000])
    link = PacedLink("uplink", no_delivery, 1.0, 50.0, None, LinkClock(1.0, LinkShape(trace=trace)))
    _, _, delivered = paced(link, [3000, 3000])
    assert [b for b, _ in delivered] == [0, 1]
    assert [t for _, t in delivered] == pytest.approx([0.25, 1.65], abs=0.02)


def test_paced_link_holds_the_bits_through_an_outage():
    # 12,500 B at 1 Mbit/s = 0.1 s; an outage from 0.05 to 0.55 s: half the bits before it, half
    # after, the payload has left at 0.6 s; the next one takes 0.6-0.7 s.
    clock = LinkClock(1.0, LinkShape(outages=((0.05, 0.5),)))
    link = PacedLink("uplink", no_delivery, 1.0, 0.0, None, clock)
    _, _, delivered = paced(link, [12_500, 12_500])
    assert [t for _, t in delivered] == pytest.approx([0.6, 0.7], abs=0.02)


def test_a_constant_rate_without_outages_needs_no_clock():
    assert stall_allowance_s([LinkSpec(rate_mbps=10.0)], 100.0) == 0.0
    outage = LinkSpec(rate_mbps=10.0, shape=LinkShape(outages=((5.0, 30.0), (200.0, 10.0))))
    assert stall_allowance_s([outage], 100.0) == pytest.approx(30.0)  # only the windows within the horizon


@pytest.mark.parametrize("policy, delivered_batches, dropped_batches, queued", [
    # a buffer of 2 (the one on the wire included), 4 payloads of 0.1 s at once: batch 0 goes on the
    # wire, 1 waits; drop_oldest then discards 1 for 2 and 2 for 3; drop_newest discards 2 and 3
    ("drop_oldest", [0, 3], [1, 2], [True, True, True, True]),
    ("drop_newest", [0, 1], [2, 3], [True, True, False, False]),
])
def test_a_full_buffer_drops_by_the_policy_and_never_holds_the_sender(policy, delivered_batches, dropped_batches,
                                                                     queued):
    link = PacedLink("uplink", no_delivery, 1.0, 0.0, 2, policy=policy)
    returned, was_queued, delivered = paced(link, [12_500] * 4)
    assert max(returned) < 0.02  # the sender never waited
    assert [b for b, _ in delivered] == delivered_batches
    assert [t for _, t in delivered] == pytest.approx([0.1, 0.2], abs=0.02)
    assert link.dropped_batches == dropped_batches and link.dropped == 2 and was_queued == queued
    assert link.lost == 0 and link.delivered == 2 and link.max_backlog == 2


# ---- real workers on loopback, over a trace and through an outage -------------------------------

GAP_TRACE_MS = [*range(5, 101, 5), *range(1100, 3001, 5)]  # 2.4 Mbit/s, nothing from 100 to 1100 ms, period 3 s


def trace_scenario(folder: Path, profile: Path, methods: list[str], network: dict) -> Path:
    """The shipped emulation scenario on the tiny VGG-16, cut at stage3, with `network` changes."""
    changes = {"methods": methods, "workload.models": [{"name": "vgg16", "split": "stage3"}],
               "edge.profiles": {"vgg16": str(profile)}, "cloud.profiles": {"vgg16": str(profile)}}
    return write_scenario(folder, changes | {f"network.{key}": value for key, value in network.items()},
                          base="emulate_fashion_mnist", name="trace")


@pytest.fixture(scope="module")
def gap_trace(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("trace")
    write_trace(folder / "gap.down", GAP_TRACE_MS)
    return Path(write_trace(folder / "gap.up", GAP_TRACE_MS))


def on_gap_trace(gap_trace: Path) -> dict:
    return {"uplink_mbps": DELETE, "uplink_trace": str(gap_trace), "downlink_trace": "paired",
            "trace_offset_s": 0}


@pytest.fixture(scope="module")
def stage3_steps(tmp_path_factory, tiny_profile, gap_trace) -> Path:  # noqa: F811
    """Part steps of the tiny model cut at stage3, measured by the two workers with few repeats."""
    folder = tmp_path_factory.mktemp("steps")
    path = trace_scenario(folder, tiny_profile, ["full_cloud", "split_learning", "hierarchical"],
                          on_gap_trace(gap_trace))
    return emulate(str(path), None, 8, None, 20.0, progress=False, measure_only=True, repeats=Repeats(5, 2))


@needs_fashion_mnist
def test_every_method_follows_the_trace_for_real(tmp_path, tiny_profile, gap_trace, stage3_steps):  # noqa: F811
    """Over a trace with a 1 s gap early in the run, each method's real time is the simulated one
    within the emulation's target; the gap is in both (the runs last 1.3-2.5 s, well over the
    ~0.5-1.5 s they would take at the trace's 2.4 Mbit/s without it)."""
    path = trace_scenario(tmp_path, tiny_profile, ["full_cloud", "split_learning", "hierarchical"],
                          on_gap_trace(gap_trace))
    proc = run_process("emulate", path, "--batches", "8", "--timeout-s", "20", "--no-progress", "--part-steps",
                       stage3_steps)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(tmp_path / "out" / "validation.csv")
    assert list(table.method) == ["full_cloud", "split_learning", "hierarchical"]
    assert (table.status == "ok").all() and (table.cloud_batches == 8).all()
    assert (table.uplink_trace == "gap.up").all() and (table.downlink_trace == "gap.down").all()
    assert (table.trace_offset_s == 0).all() and (table.trace_scale == 1).all()
    assert table.uplink_mbps[0] == pytest.approx(len(GAP_TRACE_MS) * 1500 * 8 / 3.0 / 1e6)
    assert table.batches_dropped.isna().all()  # block: nothing can be dropped
    assert (table.measured_s > 1.1).all() and (table.predicted_s > 1.1).all()  # the 1 s gap is in both
    for row in table.itertuples():
        assert abs(row.structural_error_pct) < STRUCTURAL_PCT, (row.method, row.measured_s, row.structural_error_pct)


@needs_fashion_mnist
def test_a_dropping_edge_trains_through_an_outage(tmp_path, tiny_profile, stage3_steps):  # noqa: F811
    """Hierarchical under drop_oldest, the link down for the first 3 s, a buffer of 4: the edge
    trains its 20 batches without waiting (well within the outage); batch 0 waits on the wire and
    the 3 newest in the buffer, so by hand the cloud trains 4 batches and 16 are dropped, as the
    simulation says; the run ends after the outage."""
    path = trace_scenario(tmp_path, tiny_profile, ["hierarchical"],
                          {"uplink_mbps": [20.0], "uplink_buffer_policy": "drop_oldest",
                           "outages": [{"start_s": 0, "duration_s": 3}]})
    proc = run_process("emulate", path, "--batches", "20", "--timeout-s", "20", "--no-progress", "--part-steps",
                       stage3_steps)
    assert proc.returncode == 0, proc.stderr
    row = pd.read_csv(tmp_path / "out" / "validation.csv").iloc[0]
    assert row.status == "ok" and row.uplink_buffer_policy == "drop_oldest" and row.outages == "0 s for 3 s"
    assert row.edge_batches == 20 and row.edge_s < 1.5  # not stretched by the 3 s outage
    assert row.edge_s == pytest.approx(20 * row.edge_compute_ms / 1e3, rel=0.25)  # it only computed
    assert (row.cloud_batches, row.batches_dropped) == (4, 16)
    assert (row.predicted_cloud_batches, row.predicted_batches_dropped) == (4, 16)
    assert row.measured_s > 3.0 and row.predicted_s > 3.0
    assert abs(row.structural_error_pct) < STRUCTURAL_PCT, (row.measured_s, row.structural_error_pct)
    assert math.isnan(row.trace_offset_s) and pd.isna(row.uplink_trace)
    assert "batches_dropped" in proc.stdout


# ---- the rates of a traced scenario ---------------------------------------------------------------

def test_a_traced_scenario_is_emulated_at_its_own_rates(tmp_path, gap_trace, cli):
    """With an uplink trace the rates are its mean x each trace_scale: --uplink-mbps picks among them
    (one line otherwise), and each keeps its own scale (under split: auto too)."""
    network = on_gap_trace(gap_trace) | {"trace_scale": [1, 4]}
    path = write_scenario(tmp_path, {f"network.{key}": value for key, value in network.items()},
                          base="emulate_fashion_mnist", name="traced")
    scenario = load_scenario(path)
    mean_mbps = len(GAP_TRACE_MS) * 1500 * 8 / 3.0 / 1e6
    assert scenario.network.uplink_mbps == pytest.approx([mean_mbps, 4 * mean_mbps])
    assert at_rates(scenario, [scenario.network.uplink_mbps[1]]).network.trace_scale == [4]
    assert_user_error(cli("emulate", path, "--uplink-mbps", "5"), "--uplink-mbps 5", "gap.up",
                      "network.trace_scale", f"{mean_mbps:.6g}, {4 * mean_mbps:.6g} Mbit/s")
