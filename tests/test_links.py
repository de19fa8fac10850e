"""Trace-driven links and outages: the exact transfer-end rule on hand-written traces, and
what outages and drop policies do to whole runs."""
import dataclasses

import pytest
from hand_profiles import tiny_costs

from simulator.core.errors import UserError
from simulator.costmodel import LinkSpec
from simulator.links.capacity import LinkClock, LinkShape, trace_gaps
from simulator.links.outages import OutageSchedule
from simulator.links.traces import load_trace
from simulator.sim import RunSpec, simulate


@pytest.fixture
def mahimahi(tmp_path):
    """Opportunities at 1, 1, 3, 7, 10 ms; period 10 ms: then 11, 11, 13, 17, 20, 21, ..."""
    path = tmp_path / "hand.up"
    path.write_text("1\n1\n3\n7\n10\n")
    load_trace.cache_clear()
    return str(path)


@pytest.fixture
def rate_csv(tmp_path):
    """8 Mbit/s for 1 s, nothing for 1 s, 16 Mbit/s for 1 s (the last row holds as long as the one before)."""
    path = tmp_path / "hand.csv"
    path.write_text("time_s,mbps\n0,8\n1,0\n2,16\n")
    load_trace.cache_clear()
    return str(path)


def clock(trace=None, rate_mbps=1.0, **shape) -> LinkClock:
    return LinkClock(rate_mbps, LinkShape(trace=trace, **shape))


def test_mahimahi_payloads_use_the_next_unused_opportunities_and_the_trace_repeats(mahimahi):
    trace = load_trace(mahimahi)
    assert (trace.period_ms, len(trace.times_ms)) == (10, 5)
    assert trace.mean_mbps == pytest.approx(5 * 1500 * 8 / 0.010 / 1e6)
    link = clock(mahimahi)
    assert link.send_end_s(0.0, 1500) == pytest.approx(0.001)  # the first opportunity at 1 ms
    assert link.send_end_s(0.001, 3000) == pytest.approx(0.003)  # the second one at 1 ms, unused, then 3 ms
    assert link.send_end_s(0.003, 4500) == pytest.approx(0.011)  # 7, 10, then the repeat's 11
    assert link.send_end_s(0.011, 1) == pytest.approx(0.011)  # the repeat's second opportunity at 11 ms
    assert link.send_end_s(0.050, 1500 * 6) == pytest.approx(0.060)  # 50 (the 5th period ends), 51, 51, 53, 57, 60
    assert link.send_end_s(0.061, 0) == 0.061  # nothing to send


def test_mahimahi_scale_and_offset(mahimahi):
    assert clock(mahimahi, scale=2.0).send_end_s(0.0, 3000) == pytest.approx(0.001)  # one opportunity carries 3000 B
    assert clock(mahimahi, scale=0.5).send_end_s(0.0, 1500) == pytest.approx(0.001)  # two at 1 ms
    assert clock(mahimahi, scale=0.5).send_end_s(0.0, 1501) == pytest.approx(0.003)
    assert clock(mahimahi, offset_s=0.005).send_end_s(0.0, 1500) == pytest.approx(0.002)  # trace 7 ms = run 2 ms
    assert clock(mahimahi, offset_s=0.025).send_end_s(0.0, 3000) == pytest.approx(0.005)  # 27, then 30 ms


def test_mahimahi_opportunities_inside_an_outage_are_lost(mahimahi):
    link = clock(mahimahi, outages=((0.0, 0.005),))  # [0, 5 ms)
    assert link.send_end_s(0.0, 1500) == pytest.approx(0.007)
    link = clock(mahimahi, outages=((0.002, 0.006),))  # [2, 8 ms): 3 and 7 are lost
    assert link.send_end_s(0.0, 4500) == pytest.approx(0.010)  # 1, 1, then 10


def test_rate_trace_is_a_fluid_that_repeats(rate_csv):
    trace = load_trace(rate_csv)
    assert trace.period_s == 3.0
    assert trace.mean_mbps == pytest.approx(24 / 3)
    assert clock(rate_csv).send_end_s(0.0, 1_000_000) == pytest.approx(1.0)  # 8 Mbit at 8 Mbit/s
    assert clock(rate_csv).send_end_s(0.0, 2_000_000) == pytest.approx(2.5)  # nothing in [1, 2), then 16 Mbit/s
    assert clock(rate_csv).send_end_s(0.0, 4_000_000) == pytest.approx(4.0)  # 24 Mbit a period, 8 more at 8 Mbit/s
    assert clock(rate_csv, scale=2.0).send_end_s(0.0, 2_000_000) == pytest.approx(1.0)
    assert clock(rate_csv, offset_s=1.0).send_end_s(0.0, 2_000_000) == pytest.approx(2.0)  # the gap, 16 Mbit/s


def test_constant_rate_pauses_through_an_outage():
    link = clock(None, rate_mbps=8.0, outages=((0.5, 1.0),))  # nothing in [0.5, 1.5)
    assert link.send_end_s(0.0, 1_000_000) == pytest.approx(2.0)
    assert link.send_end_s(2.0, 500_000) == pytest.approx(2.5)
    assert clock(None, rate_mbps=8.0).send_end_s(0.25, 1_000_000) == 0.25 + 1.0  # no outage: t + bits / rate


def test_outage_model_draws_from_its_seed_and_matches_its_means():
    def windows(seed):
        return OutageSchedule((), 10.0, 2.0, seed).windows_until(20_000.0)
    assert windows(1) == windows(1) and windows(1) != windows(2)
    down_s = sum(min(end, 20_000.0) - start for start, end in windows(1))
    assert down_s / 20_000.0 == pytest.approx(2 / 12, rel=0.1)
    merged = OutageSchedule(((5.0, 3.0), (7.0, 3.0)))  # [5, 8) and [7, 10) merge
    assert merged.next_window(0.0) == (5.0, 10.0) and merged.next_window(9.0) == (5.0, 10.0)
    assert merged.next_window(10.0) is None


def test_an_outage_model_that_would_draw_without_end_is_one_line():
    with pytest.raises(UserError, match="network.outage_model draws more than 1,000,000 outages"):
        OutageSchedule((), 1.0, 1.0, 0).next_window(3e6)


def test_trace_gaps_of_the_shipped_3g_uplink():
    trace = load_trace("traces/TMobile-UMTS-driving.up")
    gaps = trace_gaps(trace, 0.0, trace.period_s)
    assert len(gaps) == 23 and max(b - a for a, b in gaps) == pytest.approx(5.8, abs=0.05)
    assert trace.mean_mbps == pytest.approx(0.94, abs=0.01)


@pytest.mark.parametrize("text, fragment", [("1\nx\n", "line 2"), ("5\n3\n", "non-decreasing"), ("0\n", "period"),
                                             ("", "at least one")])
def test_bad_mahimahi_traces_name_the_line(tmp_path, text, fragment):
    path = tmp_path / "bad.up"
    path.write_text(text)
    with pytest.raises(UserError, match=fragment):
        load_trace(str(path))


@pytest.mark.parametrize("text, fragment", [("t,r\n0,1\n1,1\n", "header"), ("time_s,mbps\n1,1\n2,1\n", "time_s 0"),
                                             ("time_s,mbps\n0,1\n0,1\n", "increase"),
                                             ("time_s,mbps\n0,-1\n1,1\n", ">= 0"),
                                             ("time_s,mbps\n0,0\n1,0\n", "above 0")])
def test_bad_rate_traces_say_what_is_valid(tmp_path, text, fragment):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(UserError, match=fragment):
        load_trace(str(path))


# ---- whole runs -------------------------------------------------------------------------------
COSTS = tiny_costs(label_bytes=1)  # activations 1000 + 1 label byte


def run(method: str, outages=(), policy="block", **kwargs) -> object:
    link = LinkSpec(rate_mbps=1.0, latency_ms=5.0, shape=LinkShape(outages=outages))
    return simulate(RunSpec(method, COSTS, link, link, batches_per_epoch=20, epochs=2, uplink_buffer_batches=2,
                            uplink_buffer_policy=policy, trace_batches=1000, **kwargs))


@pytest.mark.parametrize("duration_s", [0.5, 3.0, 30.0])
def test_an_outage_of_d_seconds_delays_split_learning_by_at_least_d(duration_s):
    plain = run("split_learning")
    for batch in (0, 7, 33):  # an outage that begins while the batch's activations are on the uplink
        send = next(e for e in plain.trace if (e.resource, e.what, e.batch) == ("uplink", "send", batch))
        cut = run("split_learning", outages=(((send.start_s + send.end_s) / 2, duration_s),))
        assert cut.total_time_s >= plain.total_time_s + duration_s - 1e-9
    assert cut.cloud_batches_trained == plain.cloud_batches_trained == 40 and cut.batches_dropped == 0


@pytest.mark.parametrize("policy", ["drop_oldest", "drop_newest"])
@pytest.mark.parametrize("duration_s", [0.5, 30.0])
def test_a_dropping_hierarchical_edge_finishes_its_own_batches_on_time(policy, duration_s):
    def edge_end_s(result):
        return max(e.end_s for e in result.trace if e.resource.startswith("edge") and e.what == "train")
    plain, cut = run("hierarchical", policy=policy), run("hierarchical", outages=((0.05, duration_s),), policy=policy)
    assert edge_end_s(cut) == pytest.approx(edge_end_s(plain), rel=1e-12)  # the edge never waited
    assert cut.edge_batches_trained == 40
    assert cut.batches_dropped > 0 and cut.cloud_batches_trained + cut.batches_dropped == 40
    assert len(set(cut.dropped_batches)) == cut.batches_dropped
    cloud = {e.batch for e in cut.trace if e.resource == "cloud_gpu"}
    assert cloud.isdisjoint(cut.dropped_batches) and cloud | set(cut.dropped_batches) == set(range(40))
    blocked = run("hierarchical", outages=((0.05, duration_s),))
    assert blocked.batches_dropped == 0 and edge_end_s(blocked) > edge_end_s(cut) + duration_s / 2


def test_drop_oldest_discards_the_oldest_waiting_batch_and_drop_newest_the_new_one():
    oldest = run("hierarchical", outages=((0.0, 100.0),), policy="drop_oldest")
    newest = run("hierarchical", outages=((0.0, 100.0),), policy="drop_newest")
    # buffer 2: batch 0 is on the wire, stuck in the outage; one batch waits
    assert newest.dropped_batches == tuple(range(2, 40))  # batch 1 waits; every later one is discarded
    assert oldest.dropped_batches == tuple(range(1, 39))  # each newcomer pushes out the one waiting
    assert {e.batch for e in oldest.trace if e.resource == "cloud_gpu"} == {0, 39}


def test_only_hierarchical_training_drops():
    for method in ("split_learning", "full_cloud"):
        result = run(method, outages=((0.05, 5.0),), policy="drop_oldest")
        assert result.batches_dropped == 0 and result.cloud_batches_trained == 40


def test_a_trace_driven_run_is_exact_and_deterministic(mahimahi):
    link = LinkSpec(rate_mbps=load_trace(mahimahi).mean_mbps, latency_ms=0.0, shape=LinkShape(trace=mahimahi))
    spec = RunSpec("full_cloud", COSTS, link, link, batches_per_epoch=3, epochs=1, uplink_buffer_batches=3,
                   trace_batches=100)
    result = simulate(spec)
    assert not result.fast_forwarded and result == simulate(dataclasses.replace(spec))
    sends = [e for e in result.trace if e.resource == "uplink" and e.what == "send"]
    # raw batches of 1001 x tiny batch bytes: the link clock alone gives the same end times
    reference, start_s = clock(mahimahi), 0.0
    for event in sends:
        start_s = reference.send_end_s(max(start_s, event.start_s), COSTS.raw_batch_bytes)
        assert event.end_s == pytest.approx(start_s, abs=1e-12)
