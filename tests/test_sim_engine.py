"""Whole runs: conservation of batches, exact traffic and busy time, randomness, monotonicity."""
import dataclasses
import statistics

import pytest
from hand_profiles import tiny_costs

from simulator.costmodel import LinkSpec
from simulator.sim import RunSpec, simulate

LINK = LinkSpec(rate_mbps=1.0, latency_ms=5.0)
COSTS = tiny_costs(label_bytes=1)  # payloads: activations 1000 + 1 label byte; raw 1001
CONFIGS = [("full_cloud", "once"), ("full_cloud", "every_epoch"), ("split_learning", "once"), ("hierarchical", "once")]


def spec(method: str, raw_upload: str = "once", **kwargs) -> RunSpec:
    kwargs = {"batches_per_epoch": 7, "epochs": 3, "uplink_buffer_batches": 2, "fast_forward": False, **kwargs}
    return RunSpec(method, COSTS, kwargs.pop("uplink", LINK), kwargs.pop("downlink", LINK), raw_upload=raw_upload,
                   **kwargs)


@pytest.mark.parametrize("method, raw_upload", CONFIGS)
@pytest.mark.parametrize("edge_has_gpu", [False, True])
def test_every_part_trains_every_batch_once_per_epoch(method, raw_upload, edge_has_gpu):
    result = simulate(spec(method, raw_upload, edge_has_gpu=edge_has_gpu, trace_batches=100))
    assert result.cloud_batches_trained == 21
    assert result.edge_batches_trained == (0 if method == "full_cloud" else 21)
    trained = [(e.resource, e.batch) for e in result.trace if e.what in ("train", "backward")]
    assert len(trained) == len(set(trained))  # no batch trained twice on one machine
    assert {batch for resource, batch in trained if resource == "cloud_gpu"} == set(range(21))
    assert len(result.epoch_end_s) == 3 and list(result.epoch_end_s) == sorted(result.epoch_end_s)
    assert result.epoch_end_s[-1] <= result.total_time_s


def test_bytes_are_exact_per_method():
    split, hierarchical, once, streamed = (simulate(spec(method, raw_upload)) for method, raw_upload in
                                           [("split_learning", "once"), ("hierarchical", "once"),
                                            ("full_cloud", "once"), ("full_cloud", "every_epoch")])
    assert (split.bytes_up, split.bytes_down, split.raw_bytes_sent) == (21 * 1001, 21 * 1000, 0)
    assert (hierarchical.bytes_up, hierarchical.bytes_down, hierarchical.raw_bytes_sent) == (21 * 1001, 0, 0)
    assert (once.bytes_up, once.bytes_down, once.raw_bytes_sent) == (7 * 1001, 0, 7 * 1001)  # training set once
    assert (streamed.bytes_up, streamed.bytes_down, streamed.raw_bytes_sent) == (21 * 1001, 0, 21 * 1001)


def test_busy_times_are_per_batch_costs_times_batches():
    result = simulate(spec("hierarchical", edge_has_gpu=True))
    # By hand (hand_profiles): edge train 36 ms, prep 1 ms, 1001 bytes at 1 Mbit/s = 8.008 ms, cloud 7 ms.
    assert result.edge_busy_s == pytest.approx(21 * 36e-3)
    assert result.edge_cpu_busy_s == pytest.approx(21 * 1e-3)
    assert result.uplink_busy_s == pytest.approx(21 * 8.008e-3)
    assert result.cloud_busy_s == pytest.approx(21 * 7e-3)
    assert result.edge_busy_frac == pytest.approx(result.edge_busy_s / result.total_time_s)
    assert 0 < result.uplink_busy_frac < result.edge_busy_frac < 1  # the edge is the bottleneck
    assert result.downlink_busy_s == 0 and result.downlink_busy_frac == 0


@pytest.mark.parametrize("method, raw_upload", CONFIGS)
def test_same_seed_same_result_and_seed_matters(method, raw_upload):
    noisy = LinkSpec(rate_mbps=1.0, latency_ms=5.0, jitter_ms=3.0, loss_rate=0.01, retransmit_timeout_ms=2.0,
                     mtu_bytes=100)
    first = simulate(spec(method, raw_upload, uplink=noisy, downlink=noisy, seed=5))
    assert simulate(spec(method, raw_upload, uplink=noisy, downlink=noisy, seed=5)) == first
    assert simulate(spec(method, raw_upload, uplink=noisy, downlink=noisy, seed=6)).total_time_s != first.total_time_s


@pytest.mark.parametrize("method, raw_upload", CONFIGS)
@pytest.mark.parametrize("noise", [{"jitter_ms": 4.0}, {"loss_rate": 0.02, "mtu_bytes": 200,
                                                        "retransmit_timeout_ms": 3.0}])
def test_jitter_and_loss_never_beat_the_clean_network(method, raw_upload, noise):
    clean = simulate(spec(method, raw_upload))
    noisy = dataclasses.replace(LINK, **noise)
    totals = [simulate(spec(method, raw_upload, uplink=noisy, downlink=noisy, seed=seed)).total_time_s
              for seed in range(8)]
    assert min(totals) >= clean.analytic_time_s * (1 - 1e-12)
    assert statistics.mean(totals) > clean.total_time_s


@pytest.mark.parametrize("method, raw_upload", CONFIGS)
@pytest.mark.parametrize("edge_has_gpu", [False, True])
def test_faster_uplink_is_never_slower(method, raw_upload, edge_has_gpu):
    totals = [simulate(spec(method, raw_upload, uplink=LinkSpec(rate_mbps=rate, latency_ms=5.0),
                            edge_has_gpu=edge_has_gpu)).total_time_s
              for rate in (0.05, 0.1, 0.2, 0.22, 0.25, 0.3, 0.5, 1.0, 10.0, 1000.0)]
    assert all(later <= earlier * (1 + 1e-12) for earlier, later in zip(totals, totals[1:]))
    assert totals[-1] < totals[0]


def test_invalid_run_specs_raise_value_error():
    with pytest.raises(ValueError, match="method"):
        spec("federated")
    with pytest.raises(ValueError, match="raw_upload"):
        spec("full_cloud", "sometimes")
    with pytest.raises(ValueError, match="uplink_buffer_batches"):
        spec("hierarchical", uplink_buffer_batches=0)
    with pytest.raises(ValueError, match="epochs"):
        spec("hierarchical", epochs=0)
