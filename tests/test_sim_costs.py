"""Exact values of the per-batch cost model and the closed form on tiny hand-written profiles."""
import dataclasses

import pytest
from hand_profiles import tiny_costs, tiny_profile

from simulator.costmodel import (
    LinkSpec,
    analytic_time_s,
    batch_costs,
    batches_per_epoch,
    pipeline_time_s,
)
from simulator.costmodel.costs import (
    cloud_train_s,
    downlink_payload_bytes,
    edge_stages_s,
    hierarchical_edge_train_s,
    packet_count,
    serialisation_time_s,
    split_edge_backward_s,
    split_edge_forward_s,
    split_learning_batch_s,
    transfer_time_s,
    uplink_payload_bytes,
)

MS = 1e-3
LINK = LinkSpec(rate_mbps=1.0, latency_ms=5.0)  # 1000 bytes -> 8 ms on the wire


def test_batch_costs_sum_the_blocks_on_each_side_of_the_split():
    costs = tiny_costs(split="b", codec="fp32")
    assert costs.edge_fwd_s == pytest.approx(20 * MS)  # a + b
    assert costs.edge_bwd_s == pytest.approx(40 * MS)
    assert costs.edge_step_s == pytest.approx(2 * MS)
    assert (costs.exit_fwd_s, costs.exit_bwd_s, costs.exit_step_s) == pytest.approx((3 * MS, 3 * MS, 1 * MS))
    assert (costs.cloud_fwd_s, costs.cloud_bwd_s, costs.cloud_step_s) == pytest.approx((1 * MS, 1 * MS, 0.5 * MS))
    assert (costs.full_cloud_fwd_s, costs.full_cloud_bwd_s, costs.full_cloud_step_s) == pytest.approx(
        (5 * MS, 6 * MS, 2 * MS))
    assert costs.activation_bytes == costs.gradient_bytes == 100 * 4  # block b outputs [1, 100] fp32


def test_payloads_follow_codec_batch_and_labels():
    costs = tiny_costs(split="a", codec="int8", batch_size=4, label_bytes=1, raw_sample_bytes=3072)
    assert costs.activation_bytes == 4 * 250 + 8  # 1 byte per element + int8 header
    assert costs.label_bytes_per_batch == 4
    assert costs.raw_batch_bytes == 4 * (3072 + 1)
    assert uplink_payload_bytes(costs, "hierarchical") == uplink_payload_bytes(costs, "split_learning") == 1012
    assert uplink_payload_bytes(costs, "full_cloud") == 4 * 3073
    assert downlink_payload_bytes(costs, "split_learning") == 1008
    assert downlink_payload_bytes(costs, "hierarchical") == downlink_payload_bytes(costs, "full_cloud") == 0
    assert tiny_costs(codec="fp16").activation_bytes == 500


def test_stage_times():
    costs = tiny_costs()
    assert hierarchical_edge_train_s(costs) == pytest.approx(36 * MS)
    assert split_edge_forward_s(costs) == pytest.approx(10 * MS)
    assert split_edge_backward_s(costs) == pytest.approx(21 * MS)
    assert cloud_train_s(costs, "hierarchical") == cloud_train_s(costs, "split_learning") == pytest.approx(7 * MS)
    assert cloud_train_s(costs, "full_cloud") == pytest.approx(14 * MS)
    assert edge_stages_s(costs, "hierarchical", edge_has_gpu=True) == pytest.approx((1 * MS, 36 * MS))
    assert edge_stages_s(costs, "hierarchical", edge_has_gpu=False) == pytest.approx((37 * MS,))
    assert edge_stages_s(costs, "full_cloud", edge_has_gpu=True) == ()


def test_link_times_and_packets():
    assert serialisation_time_s(1000, LINK) == pytest.approx(8 * MS)
    assert transfer_time_s(1000, LINK) == pytest.approx(13 * MS)
    assert serialisation_time_s(125_000, LinkSpec(rate_mbps=100.0)) == pytest.approx(10 * MS)
    assert packet_count(1500, LINK) == 1 and packet_count(1501, LINK) == 2 and packet_count(0, LINK) == 0


def test_batches_per_epoch_pads_the_last_batch():
    assert batches_per_epoch(50_000, 32) == 1563
    assert batches_per_epoch(64, 32) == 2


def test_closed_forms_by_hand():
    costs = tiny_costs()
    # split learning: 1 + 10 + (8 + 5) + 7 + (8 + 5) + 21 = 65 ms per batch
    assert split_learning_batch_s(costs, LINK, LINK) == pytest.approx(65 * MS)
    assert analytic_time_s("split_learning", costs, LINK, LINK, 3, 2) == pytest.approx(6 * 65 * MS)
    # hierarchical, edge GPU: 1 + 36 + 8 + 5 + 7 + 2 * 36 = 129 ms; no GPU: 37 + 8 + 5 + 7 + 2 * 37 = 131 ms
    assert analytic_time_s("hierarchical", costs, LINK, LINK, 3, 1, edge_has_gpu=True) == pytest.approx(129 * MS)
    assert analytic_time_s("hierarchical", costs, LINK, LINK, 3, 1) == pytest.approx(131 * MS)
    # full cloud: streamed 8 + 5 + 14 + 2 * 14 = 55 ms; once (3 batches, 2 epochs) 3 * 8 + 5 + 6 * 14 = 113 ms
    assert analytic_time_s("full_cloud", costs, LINK, LINK, 3, 1, raw_upload="every_epoch") == pytest.approx(55 * MS)
    assert analytic_time_s("full_cloud", costs, LINK, LINK, 3, 2, raw_upload="once") == pytest.approx(113 * MS)
    assert pipeline_time_s((1.0, 4.0, 2.0), 0.5, 10) == pytest.approx(7.5 + 9 * 4.0)


def test_invalid_inputs_raise_value_error():
    edge = tiny_profile()
    with pytest.raises(ValueError, match="separation point"):
        batch_costs(edge, edge, "head", "fp32")
    with pytest.raises(ValueError, match="batch size"):
        batch_costs(edge, tiny_profile(batch_size=2), "a", "fp32")
    with pytest.raises(ValueError, match="early exit"):
        batch_costs(dataclasses.replace(edge, exits=[]), edge, "a", "fp32")
    with pytest.raises(ValueError, match="rate_mbps"):
        LinkSpec(rate_mbps=0)
    with pytest.raises(ValueError, match="loss_rate"):
        LinkSpec(rate_mbps=1, loss_rate=1.0)
    with pytest.raises(ValueError, match="method"):
        cloud_train_s(tiny_costs(), "federated")
    with pytest.raises(ValueError, match="raw_upload"):
        analytic_time_s("full_cloud", tiny_costs(), LINK, LINK, 1, 1, raw_upload="never")
