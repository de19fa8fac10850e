"""The steady-state fast forward gives the event-by-event result, field by field."""
import dataclasses
import itertools

import pytest
from hand_profiles import tiny_costs

from simulator.costmodel import LinkSpec
from simulator.costmodel.costs import split_edge_backward_s, transfer_time_s
from simulator.sim import RunResult, RunSpec, simulate

COSTS = tiny_costs(label_bytes=1)  # edge train 36 ms (37 with prep on one CPU), cloud 7 ms / 14 ms full
SLOW_CLOUD = dataclasses.replace(COSTS, cloud_fwd_s=0.1, full_cloud_fwd_s=0.1)  # cloud ~104 / ~109 ms
BOTTLENECKS = {  # (costs, uplink Mbit/s): 1001 bytes take 8 ms at 1 Mbit/s, 80 ms at 0.1 Mbit/s
    "edge": (COSTS, 1.0),
    "uplink": (COSTS, 0.1),
    "cloud": (SLOW_CLOUD, 1.0),
}
METHODS = [("full_cloud", "once"), ("full_cloud", "every_epoch"), ("split_learning", "once"), ("hierarchical", "once")]


def assert_same(fast: RunResult, slow: RunResult) -> None:
    """Every field equal: counts exactly, times to a relative 1e-9."""
    for field in dataclasses.fields(RunResult):
        a, b = getattr(fast, field.name), getattr(slow, field.name)
        if field.name in ("fast_forwarded", "engine"):
            continue
        if field.name == "trace":
            assert [(e.resource, e.what, e.batch) for e in a] == [(e.resource, e.what, e.batch) for e in b]
            assert [t for e in a for t in (e.start_s, e.end_s)] == pytest.approx(
                [t for e in b for t in (e.start_s, e.end_s)], rel=1e-9)
        elif field.name == "backlog_trace":
            assert [n for _, n in a] == [n for _, n in b]
            assert [t for t, _ in a] == pytest.approx([t for t, _ in b], rel=1e-9)
        elif isinstance(a, int) or a is None or field.name in ("dropped_batches", "stall_backlog", "stall_drops"):
            assert a == b, field.name
        else:
            assert a == pytest.approx(b, rel=1e-9), field.name


@pytest.mark.parametrize("bottleneck", BOTTLENECKS)
@pytest.mark.parametrize("method, raw_upload", METHODS)
@pytest.mark.parametrize("edge_has_gpu, buffer", [(False, 1), (True, 1), (False, 8), (True, 8)])
def test_fast_forward_equals_event_by_event(bottleneck, method, raw_upload, edge_has_gpu, buffer):
    costs, rate_mbps = BOTTLENECKS[bottleneck]
    link = LinkSpec(rate_mbps=rate_mbps, latency_ms=5.0)
    spec = RunSpec(method, costs, link, LinkSpec(rate_mbps=2.0, latency_ms=3.0), batches_per_epoch=40, epochs=3,
                   uplink_buffer_batches=buffer, edge_has_gpu=edge_has_gpu, raw_upload=raw_upload,
                   trace_batches=5, fast_forward=True)
    fast, slow = simulate(spec), simulate(dataclasses.replace(spec, fast_forward=False))
    assert fast.fast_forwarded and not slow.fast_forwarded
    assert_same(fast, slow)
    assert slow.total_time_s == pytest.approx(slow.analytic_time_s, rel=1e-12)


def test_near_tie_waits_for_the_buffer_to_fill():
    """Edge 36 ms vs uplink 36.4 ms: the edge runs ahead until the 8-batch buffer fills
    (~8 / (1 - 36/36.4) = 728 batches); only then is the run periodic."""
    spec = RunSpec("hierarchical", COSTS, LinkSpec(rate_mbps=1001 * 8 / 36.4e3, latency_ms=5.0), LinkSpec(1.0),
                   batches_per_epoch=500, epochs=3, uplink_buffer_batches=8, edge_has_gpu=True, trace_batches=5)
    fast, slow = simulate(spec), simulate(dataclasses.replace(spec, fast_forward=False))
    assert fast.fast_forwarded and fast.max_uplink_backlog == 8
    assert_same(fast, slow)


def test_noisy_links_are_never_fast_forwarded():
    spec = RunSpec("hierarchical", COSTS, LinkSpec(rate_mbps=1.0, jitter_ms=1.0), LinkSpec(1.0),
                   batches_per_epoch=40, epochs=2)
    assert not simulate(spec).fast_forwarded


@pytest.mark.parametrize("method, raw_upload", METHODS)
@pytest.mark.parametrize("bottleneck", BOTTLENECKS)
def test_paper_scale_run_matches_the_closed_form(method, raw_upload, bottleneck):
    costs, rate_mbps = BOTTLENECKS[bottleneck]
    spec = RunSpec(method, costs, LinkSpec(rate_mbps=rate_mbps, latency_ms=5.0), LinkSpec(rate_mbps=2.0),
                   batches_per_epoch=1563, epochs=100, uplink_buffer_batches=4, edge_has_gpu=True,
                   raw_upload=raw_upload)
    result = simulate(spec)
    assert result.fast_forwarded
    assert result.total_time_s == pytest.approx(result.analytic_time_s, rel=1e-9)
    assert result.cloud_batches_trained == 156_300
    after_cloud_s = 0.0  # split learning: gradient down, then edge backward + step
    if method == "split_learning":
        after_cloud_s = transfer_time_s(costs.gradient_bytes, spec.downlink) + split_edge_backward_s(costs)
    assert result.epoch_end_s[-1] == pytest.approx(result.total_time_s - after_cloud_s, rel=1e-9)
    assert list(itertools.accumulate(result.epoch_end_s, max)) == list(result.epoch_end_s)
