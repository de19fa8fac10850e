"""The fast engine equals SimPy, the engine of record, column for column.

Property-based over random runs (methods, buffers, policies, rates, jitter, loss, traces, outages),
and over the deterministic grid whose round numbers make events tie.
"""
import dataclasses
import math
import os

import pytest
from hand_profiles import tiny_costs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.costmodel import BatchCosts, LinkSpec
from simulator.engines import simulate
from simulator.engines.fast import MIN_HORIZON_S
from simulator.engines.select import chosen_engine
from simulator.links.capacity import LinkShape
from simulator.sim import RunResult, RunSpec

COSTS = tiny_costs(label_bytes=1)
METHODS = [("full_cloud", "once"), ("full_cloud", "every_epoch"), ("split_learning", "once"), ("hierarchical", "once")]
POLICIES = ["block", "drop_oldest", "drop_newest"]
RTOL = 1e-9


def assert_same(fast: RunResult, slow: RunResult) -> None:
    """Every column within RTOL (relative), counts, drops and the trace window exactly."""
    assert (fast.engine, slow.engine) == ("fast", "simpy")
    for field in dataclasses.fields(RunResult):
        a, b = getattr(fast, field.name), getattr(slow, field.name)
        if field.name in ("engine", "fast_forwarded"):
            continue
        if field.name == "epoch_end_s":
            assert [math.isnan(x) for x in a] == [math.isnan(x) for x in b]
            assert [x for x in a if not math.isnan(x)] == pytest.approx([x for x in b if not math.isnan(x)], rel=RTOL)
        elif field.name == "trace":  # full_cloud's upload phase may be fast-forwarded: times to RTOL
            assert [(e.resource, e.what, e.batch) for e in a] == [(e.resource, e.what, e.batch) for e in b]
            assert [t for e in a for t in (e.start_s, e.end_s)] == pytest.approx(
                [t for e in b for t in (e.start_s, e.end_s)], rel=RTOL)
        elif field.name == "backlog_trace":
            assert [n for _, n in a] == [n for _, n in b]
            assert [t for t, _ in a] == pytest.approx([t for t, _ in b], rel=RTOL)
        elif field.name in ("dropped_batches", "stall_backlog", "stall_drops", "worst_stall_s") or isinstance(a, int):
            assert a == b, field.name
        else:
            assert a == pytest.approx(b, rel=RTOL, abs=1e-12), field.name


def both(spec: RunSpec) -> tuple[RunResult, RunResult]:
    return simulate(spec, "fast"), simulate(dataclasses.replace(spec, fast_forward=False), "simpy")


@pytest.fixture(scope="module")
def trace_files(tmp_path_factory) -> dict[str, str]:
    """A bursty Mahimahi trace with a 1.5 s gap, and a rate CSV with a zero-rate second."""
    folder = tmp_path_factory.mktemp("traces")
    mahimahi = folder / "bursty.up"
    mahimahi.write_text("\n".join(str(t) for t in [3, 3, 10, 40, 41, 41, 41, 250, 1750, 1760, 1900, 2000]) + "\n")
    rate = folder / "rates.csv"
    rate.write_text("time_s,mbps\n0,0.4\n1,0\n2,1.3\n3,0.05\n")
    return {"none": None, "mahimahi": str(mahimahi), "rate": str(rate), "3g": "traces/TMobile-UMTS-driving.up"}


def links(draw, trace_files, seed: int) -> LinkSpec:
    trace = trace_files[draw(st.sampled_from(list(trace_files)))]
    outages = tuple(draw(st.lists(st.tuples(st.floats(0, 30), st.floats(0, 5)), max_size=2)))
    model = draw(st.one_of(st.none(), st.tuples(st.floats(2, 30), st.floats(0.1, 4))))
    shape = LinkShape(trace, draw(st.floats(0.3, 4)), draw(st.floats(0, 90)), outages, model, seed)
    lossy = draw(st.booleans())
    return LinkSpec(rate_mbps=draw(st.floats(0.05, 20)), latency_ms=draw(st.floats(0, 60)),
                    jitter_ms=draw(st.sampled_from([0.0, 3.0, 40.0])), loss_rate=draw(st.floats(0, 0.2)) if lossy else 0.0,
                    mtu_bytes=draw(st.sampled_from([1500, 400])), retransmit_timeout_ms=draw(st.floats(0, 30)),
                    shape=shape)


@st.composite
def run_specs(draw, trace_files) -> RunSpec:
    method, raw_upload = draw(st.sampled_from(METHODS))
    seed = draw(st.integers(0, 2**16))
    scale = draw(st.floats(0.2, 5))
    costs = dataclasses.replace(
        COSTS, edge_prep_s=draw(st.floats(0, 0.02)), edge_fwd_s=COSTS.edge_fwd_s * scale,
        cloud_fwd_s=draw(st.floats(0.001, 0.1)), full_cloud_fwd_s=draw(st.floats(0.001, 0.1)),
        activation_bytes=draw(st.integers(1, 30_000)), gradient_bytes=draw(st.integers(1, 30_000)),
        raw_batch_bytes=draw(st.integers(1, 30_000)))
    return RunSpec(method, costs, links(draw, trace_files, seed), links(draw, trace_files, seed),
                   batches_per_epoch=draw(st.integers(1, 40)), epochs=draw(st.integers(1, 3)),
                   uplink_buffer_batches=draw(st.integers(1, 5)), uplink_buffer_policy=draw(st.sampled_from(POLICIES)),
                   edge_has_gpu=draw(st.booleans()), raw_upload=raw_upload, seed=seed,
                   trace_batches=draw(st.integers(0, 8)))


EXAMPLES = int(os.environ.get("ENGINE_EXAMPLES", 300))  # more for a longer search: ENGINE_EXAMPLES=5000 pytest ...
# CI draws the same examples every run (a new bug found by a fresh draw should not fail an
# unrelated change); a run elsewhere draws new ones, which is how the three regressions below were found.
DERANDOMIZE = bool(os.environ.get("CI"))


@settings(max_examples=EXAMPLES, deadline=None, derandomize=DERANDOMIZE,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_random_runs_agree(trace_files, data):
    assert_same(*both(data.draw(run_specs(trace_files))))


@pytest.mark.parametrize("method, raw_upload", METHODS)
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("edge_has_gpu, buffer", [(False, 1), (True, 1), (False, 3), (True, 8)])
@pytest.mark.parametrize("rate_mbps", [0.1, 0.2002, 1.0])  # 1001 bytes: 80 ms, 40 ms (the edge's 36 + 4 prep), 8 ms
def test_round_numbers_agree(method, raw_upload, policy, edge_has_gpu, buffer, rate_mbps):
    """Deterministic links with round durations, where departures and arrivals coincide."""
    spec = RunSpec(method, COSTS, LinkSpec(rate_mbps=rate_mbps, latency_ms=5.0), LinkSpec(rate_mbps=2.0, latency_ms=3.0),
                   batches_per_epoch=30, epochs=2, uplink_buffer_batches=buffer, uplink_buffer_policy=policy,
                   edge_has_gpu=edge_has_gpu, raw_upload=raw_upload, trace_batches=6)
    assert_same(*both(spec))


def test_an_outage_model_past_the_first_horizon():
    """A run far longer than its closed form (a 3G trace at a tenth of its rate, frequent outages):
    the fast engine draws the outage model further and tries again."""
    shape = LinkShape("traces/TMobile-UMTS-driving.up", 0.1, 5.0, (), (3.0, 2.0), 7)
    spec = RunSpec("hierarchical", COSTS, LinkSpec(rate_mbps=10.0, shape=shape), LinkSpec(2.0),
                   batches_per_epoch=200, epochs=2, uplink_buffer_batches=4)
    fast, slow = both(spec)
    assert fast.total_time_s > max(MIN_HORIZON_S, 2 * fast.analytic_time_s)  # past the first horizon
    assert_same(fast, slow)


def test_auto_picks_simpy_where_it_fast_forwards():
    steady = RunSpec("hierarchical", COSTS, LinkSpec(1.0), LinkSpec(1.0), batches_per_epoch=10, epochs=1)
    noisy = dataclasses.replace(steady, uplink=LinkSpec(1.0, jitter_ms=5.0))
    assert chosen_engine(steady) == "simpy" and chosen_engine(noisy) == "fast"
    assert simulate(steady).engine == "simpy" and simulate(noisy).engine == "fast"
    with pytest.raises(ValueError, match="valid: simpy, fast, auto"):
        simulate(steady, "quick")


def test_an_opportunity_just_inside_an_outage_is_skipped(trace_files):
    """An outage ending 1e-16 s after an opportunity (within the trace's float tolerance): both
    engines skip that opportunity instead of looping on it for ever."""
    shape = LinkShape(trace_files["mahimahi"], 1.0, 0.0, ((0.001, 0.0020000000000001),))
    spec = RunSpec("full_cloud", COSTS, LinkSpec(rate_mbps=1.0, shape=shape), LinkSpec(2.0),
                   batches_per_epoch=4, epochs=1)
    fast, slow = both(spec)
    assert_same(fast, slow)
    assert fast.trace[0].end_s > 0.003  # the opportunities at 3 ms fell in the outage



def test_an_outage_of_one_ulp_before_an_opportunity_ends(trace_files):
    """An outage whose start rounds onto an opportunity (2.0 s, 5e-179 s long, the trace offset by
    one ulp) once made both engines loop for ever: that opportunity is usable, before the window."""
    costs = BatchCosts(1, 0.005811676130829314, 0.04, 0.02, 0.001, 0.002, 0.002, 0.001, 0.001, 0.019522753804010563,
                       0.003, 0.001, 0.018133221544632056, 0.006, 0.002, 4715, 644, 305, 1)
    twice = ((2.0, 4.849456673070143e-179), (2.0, 4.849456673070143e-179))
    up = LinkSpec(1.973043262297741, 16.91480080504925, 3.0, 0.16433505276721908, 400, 18.994346196192396,
                  LinkShape(trace_files["mahimahi"], 2.4624623204424254, 2.220446049250313e-16, twice,
                            (2.00001, 0.8158416334113877), 5270))
    down = LinkSpec(13.113135754427603, 1.0, 3.0, 0.0, 1500, 14.008024278302795,
                    LinkShape(trace_files["mahimahi"], 1.2688311714441969, 1.1754943508222875e-38,
                              ((9.67204246919918, 0.9622003228018241),), (2.00001, 0.8158416334113877), 5270))
    spec = RunSpec("full_cloud", costs, up, down, batches_per_epoch=22, epochs=2, uplink_buffer_batches=3,
                   uplink_buffer_policy="drop_newest", seed=5270, trace_batches=8)
    assert_same(*both(spec))


def test_the_worst_stall_is_whole_when_the_model_extends_it_after_the_run():
    """A fixed outage (1-5 s) joined by a drawn one (4.08-5.87 s) is one stall of 1-5.87 s, however
    far the model was drawn during the run (the run ends at 1.07 s)."""
    costs = BatchCosts(1, 0.0, 0.01, 0.02, 0.001, 0.002, 0.002, 0.001, 0.001, 0.0625, 0.003, 0.001, 0.0625, 0.006,
                       0.002, 1, 1, 1, 1)
    up = LinkSpec(1.0, 0.0, 0.0, 0.0, 1500, 0.0, LinkShape(None, 1.0, 0.0, ((1.0, 4.0),), (2.0, 3.0), 1185))
    down = LinkSpec(1.0, 0.0, 0.0, 0.0, 1500, 0.0, LinkShape(None, 1.0, 0.0, (), None, 1185))
    spec = RunSpec("full_cloud", costs, up, down, batches_per_epoch=5, epochs=3, uplink_buffer_batches=1, seed=1185)
    fast, slow = both(spec)
    assert_same(fast, slow)
    assert fast.worst_stall_s == pytest.approx((1.0, 5.865551637036328))


def test_split_learning_past_the_first_horizon_retries(trace_files):
    """A split-learning run that outlives the outage model's first horizon: its half-written put and
    departure times (NaN garbage) were once read for the peak backlog, which looped for ever."""
    costs = BatchCosts(1, 0.002696995068321644, 0.017984803622171017, 0.02, 0.001, 0.002, 0.002, 0.001, 0.001,
                       0.05822678052834275, 0.003, 0.001, 0.001, 0.006, 0.002, 19645, 1752, 3308, 1)
    up = LinkSpec(0.315916689254799, 42.43476522395378, 40.0, 0.04343715418787354, 1500, 9.521491885384568,
                  LinkShape(trace_files["mahimahi"], 0.564408518806347, 0.001, (), (2.00001, 1.0), 427))
    down = LinkSpec(12.06917960989162, 18.587630196598266, 40.0, 0.0, 1500, 6.663644315610153,
                    LinkShape(None, 3.765632570019613, 1.1, (), (21.67859667161792, 0.5298287419818868), 427))
    spec = RunSpec("split_learning", costs, up, down, batches_per_epoch=38, epochs=3, uplink_buffer_batches=3,
                   uplink_buffer_policy="drop_oldest", edge_has_gpu=True, seed=427, trace_batches=4)
    fast, slow = both(spec)
    assert_same(fast, slow)
    assert fast.total_time_s > MIN_HORIZON_S  # it needed a second horizon
