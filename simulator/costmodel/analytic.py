"""Closed-form training time of each method, without jitter or loss.

Built from the same per-batch functions as the simulation (`costs`). With n = epochs x
batches_per_epoch batches, u = uplink serialisation and L = latency_ms/1000 of the link:

    split_learning          n * (prep + edge fwd + u + L_up + cloud + d + L_down + edge bwd/step)
    hierarchical            pipeline(edge stages + (u, cloud), L_up, n)
    full_cloud every_epoch  pipeline((u, cloud), L_up, n)
    full_cloud once         batches_per_epoch * u + L_up + n * cloud

where pipeline(stages, L, n) = sum(stages) + L + (n - 1) * max(stages): the first batch goes
through every stage and the pure delay, then one batch leaves per bottleneck period. This is
exact for constant stage times whatever the buffer sizes: upstream of the bottleneck a batch
is always ready for it, downstream stages are faster and never hold it up, and a latency is
an infinite server that only shifts deliveries. In `once` the uplink sends the training set
back to back and the last batch's latency is paid once, before training starts.
"""
from collections.abc import Sequence

from .costs import (
    RAW_UPLOADS,
    BatchCosts,
    LinkSpec,
    check_method,
    cloud_train_s,
    edge_stages_s,
    serialisation_time_s,
    split_learning_batch_s,
    uplink_payload_bytes,
)


def pipeline_time_s(stages_s: Sequence[float], latency_s: float, n_batches: int) -> float:
    """sum(stages_s) + latency_s + (n_batches - 1) * max(stages_s), seconds."""
    return sum(stages_s) + latency_s + (n_batches - 1) * max(stages_s)


def analytic_time_s(method: str, costs: BatchCosts, uplink: LinkSpec, downlink: LinkSpec, batches_per_epoch: int,
                    epochs: int, edge_has_gpu: bool = False, raw_upload: str = "once") -> float:
    """Total training time in seconds of `epochs` epochs of `batches_per_epoch` batches (formulas above)."""
    check_method(method)
    if raw_upload not in RAW_UPLOADS:
        raise ValueError(f"unknown raw_upload {raw_upload!r}; valid: {', '.join(RAW_UPLOADS)}")
    n_batches = epochs * batches_per_epoch
    if method == "split_learning":
        return n_batches * split_learning_batch_s(costs, uplink, downlink)
    send_s = serialisation_time_s(uplink_payload_bytes(costs, method), uplink)
    latency_s = uplink.latency_ms / 1e3
    cloud_s = cloud_train_s(costs, method)
    if method == "full_cloud" and raw_upload == "once":
        return batches_per_epoch * send_s + latency_s + n_batches * cloud_s
    stages_s = edge_stages_s(costs, method, edge_has_gpu) + (send_s, cloud_s)
    return pipeline_time_s(stages_s, latency_s, n_batches)
