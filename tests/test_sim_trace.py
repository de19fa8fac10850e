"""Event-trace tests: 3-batch runs of each method with round numbers, exact expected timelines.

Costs (see simprofiles): edge prep 1 ms, hierarchical edge train 36 ms, split-learning edge
forward 10 ms and backward + step 21 ms, cloud 7 ms (14 ms for the whole model with prep);
every payload is 1000 bytes = 8 ms at 1 Mbit/s; latency 5 ms each way.
"""
import pytest
from hand_profiles import tiny_costs

from simulator.costmodel import LinkSpec
from simulator.sim import RunResult, RunSpec, simulate

LINK = LinkSpec(rate_mbps=1.0, latency_ms=5.0)
SLOW_LINK = LinkSpec(rate_mbps=0.2, latency_ms=5.0)  # 40 ms per payload


def run(method: str, uplink: LinkSpec = LINK, **kwargs) -> RunResult:
    kwargs = {"batches_per_epoch": 3, "epochs": 1, **kwargs}
    return simulate(RunSpec(method, tiny_costs(), uplink, LINK, **kwargs))


def rows(result: RunResult) -> list[tuple[str, str, int, float, float]]:
    """The trace in milliseconds, rounded to a nanosecond, in a canonical order."""
    return sorted((e.resource, e.what, e.batch, round(e.start_s * 1e3, 6), round(e.end_s * 1e3, 6))
                  for e in result.trace)


def in_ms(samples) -> list[tuple[float, int]]:
    return [(round(time_s * 1e3, 6), backlog) for time_s, backlog in samples]


@pytest.mark.parametrize("edge_has_gpu", [False, True])
def test_split_learning_runs_strictly_in_turn(edge_has_gpu):
    result = run("split_learning", edge_has_gpu=edge_has_gpu)
    gpu = "edge_gpu" if edge_has_gpu else "edge_cpu"
    expected = []
    for batch in range(3):
        t = 65.0 * batch
        expected += [("edge_cpu", "prep", batch, t, t + 1), (gpu, "forward", batch, t + 1, t + 11),
                     ("uplink", "send", batch, t + 11, t + 19), ("uplink", "propagate", batch, t + 19, t + 24),
                     ("cloud_gpu", "train", batch, t + 24, t + 31), ("downlink", "send", batch, t + 31, t + 39),
                     ("downlink", "propagate", batch, t + 39, t + 44), (gpu, "backward", batch, t + 44, t + 65)]
    assert rows(result) == sorted(expected)
    assert result.total_time_s == pytest.approx(0.195)
    assert result.epoch_end_s == pytest.approx((0.161,))


def test_hierarchical_edge_gpu_prefetches_one_batch():
    result = run("hierarchical", edge_has_gpu=True)
    assert rows(result) == sorted([
        ("edge_cpu", "prep", 0, 0, 1), ("edge_gpu", "train", 0, 1, 37),
        ("edge_cpu", "prep", 1, 1, 2), ("edge_gpu", "train", 1, 37, 73),
        ("edge_cpu", "prep", 2, 37, 38), ("edge_gpu", "train", 2, 73, 109),
        ("uplink", "send", 0, 37, 45), ("uplink", "propagate", 0, 45, 50), ("cloud_gpu", "train", 0, 50, 57),
        ("uplink", "send", 1, 73, 81), ("uplink", "propagate", 1, 81, 86), ("cloud_gpu", "train", 1, 86, 93),
        ("uplink", "send", 2, 109, 117), ("uplink", "propagate", 2, 117, 122), ("cloud_gpu", "train", 2, 122, 129),
    ])
    assert result.total_time_s == pytest.approx(0.129) == result.analytic_time_s


def test_hierarchical_edge_blocks_while_the_uplink_buffer_is_full():
    result = run("hierarchical", uplink=SLOW_LINK, uplink_buffer_batches=1)
    assert rows(result) == sorted([
        ("edge_cpu", "prep", 0, 0, 1), ("edge_cpu", "train", 0, 1, 37),
        ("edge_cpu", "prep", 1, 37, 38), ("edge_cpu", "train", 1, 38, 74),  # then waits for send 0 to end
        ("edge_cpu", "prep", 2, 77, 78), ("edge_cpu", "train", 2, 78, 114),  # waits for send 1
        ("uplink", "send", 0, 37, 77), ("uplink", "propagate", 0, 77, 82), ("cloud_gpu", "train", 0, 82, 89),
        ("uplink", "send", 1, 77, 117), ("uplink", "propagate", 1, 117, 122), ("cloud_gpu", "train", 1, 122, 129),
        ("uplink", "send", 2, 117, 157), ("uplink", "propagate", 2, 157, 162), ("cloud_gpu", "train", 2, 162, 169),
    ])
    assert in_ms(result.backlog_trace) == [(37, 1), (77, 0), (77, 1), (117, 0), (117, 1), (157, 0)]
    assert result.max_uplink_backlog == 1
    assert result.total_time_s == pytest.approx(0.169) == result.analytic_time_s


def test_hierarchical_larger_buffer_lets_the_edge_run_ahead():
    result = run("hierarchical", uplink=SLOW_LINK, uplink_buffer_batches=2)
    edge = [row for row in rows(result) if row[0] == "edge_cpu"]
    assert edge == sorted([("edge_cpu", "prep", 0, 0, 1), ("edge_cpu", "train", 0, 1, 37),
                           ("edge_cpu", "prep", 1, 37, 38), ("edge_cpu", "train", 1, 38, 74),
                           ("edge_cpu", "prep", 2, 74, 75), ("edge_cpu", "train", 2, 75, 111)])
    assert in_ms(result.backlog_trace) == [(37, 1), (74, 2), (77, 1), (111, 2), (117, 1), (157, 0)]
    assert result.max_uplink_backlog == 2
    assert result.total_time_s == pytest.approx(0.169)


def test_full_cloud_every_epoch_trains_each_batch_on_arrival():
    result = run("full_cloud", raw_upload="every_epoch")
    assert rows(result) == sorted([
        ("uplink", "send", 0, 0, 8), ("uplink", "propagate", 0, 8, 13), ("cloud_gpu", "train", 0, 13, 27),
        ("uplink", "send", 1, 8, 16), ("uplink", "propagate", 1, 16, 21), ("cloud_gpu", "train", 1, 27, 41),
        ("uplink", "send", 2, 16, 24), ("uplink", "propagate", 2, 24, 29), ("cloud_gpu", "train", 2, 41, 55),
    ])
    assert in_ms(result.backlog_trace) == [(0, 1), (8, 0), (8, 1), (16, 0), (16, 1), (24, 0)]
    assert result.total_time_s == pytest.approx(0.055)


def test_full_cloud_once_uploads_then_trains_all_epochs():
    result = run("full_cloud", raw_upload="once", epochs=2)
    assert rows(result) == sorted([
        ("uplink", "send", 0, 0, 8), ("uplink", "propagate", 0, 8, 13),
        ("uplink", "send", 1, 8, 16), ("uplink", "propagate", 1, 16, 21),
        ("uplink", "send", 2, 16, 24), ("uplink", "propagate", 2, 24, 29),
        ("cloud_gpu", "train", 0, 29, 43), ("cloud_gpu", "train", 1, 43, 57), ("cloud_gpu", "train", 2, 57, 71),
        ("cloud_gpu", "train", 3, 71, 85), ("cloud_gpu", "train", 4, 85, 99), ("cloud_gpu", "train", 5, 99, 113),
    ])
    assert result.epoch_end_s == pytest.approx((0.071, 0.113))
    assert result.total_time_s == pytest.approx(0.113) == result.analytic_time_s


def test_trace_keeps_only_the_first_batches():
    result = run("hierarchical", batches_per_epoch=10, trace_batches=2, fast_forward=False)
    assert {event.batch for event in result.trace} == {0, 1}
    assert len(result.trace) == 2 * 5  # prep, train, send, propagate, cloud train
    assert all(0 <= batch_s <= result.total_time_s for batch_s, _ in result.backlog_trace)
    assert len(result.backlog_trace) == 4
