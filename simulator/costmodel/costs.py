"""Per-batch cost model: what one training batch costs each part of the system.

Plain functions of profiles, free of SimPy. The discrete-event simulation (`engine`) and the
closed form (`analytic`) both take every duration and byte count from here, so each formula
exists once. Times are seconds per batch, sizes bytes per batch; a profile's milliseconds are
converted once, in `batch_costs`.

Who does what, per batch of B samples (`split` is the last edge block, `layers[0..split]`):

    full_cloud      cloud: prep + fwd + bwd + step of every block      uplink: B*(raw + label) bytes
    split_learning  edge:  prep + fwd(edge blocks) ... bwd + step      uplink: activations + B*label
                    cloud: fwd + bwd + step(cloud blocks)              downlink: gradient
    hierarchical    edge:  prep + fwd + exit fwd/bwd + bwd + step      uplink: activations + B*label
                    cloud: fwd + bwd + step(cloud blocks)

Activations and gradients have the shape of `layers[split].out_shape` and the same codec.
"""
import math
from dataclasses import dataclass, field

from ..core.names import METHODS
from ..core.wire import encoded_bytes
from ..links.capacity import LinkShape
from ..profiling.schema import Profile

RAW_UPLOADS = ("once", "every_epoch")


def check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")


@dataclass(frozen=True)
class LinkSpec:
    """One direction of the network between edge and cloud.

    A payload of P bytes occupies the link for P*8 / (rate_mbps*1e6) s (serialisation), then
    propagates for latency_ms plus an exponential jitter of mean jitter_ms. It travels as
    ceil(P / mtu_bytes) packets, each lost with probability loss_rate and resent after
    retransmit_timeout_ms of idle wait on the link.
    """

    rate_mbps: float  # line rate, 1 Mbit/s = 1e6 bit/s
    latency_ms: float = 0.0  # one-way propagation delay
    jitter_ms: float = 0.0  # mean of the extra exponential delay per payload; 0 = none
    loss_rate: float = 0.0  # per-packet loss probability, in [0, 1)
    mtu_bytes: int = 1500  # packet size
    retransmit_timeout_ms: float = 0.0  # idle wait before a lost packet is resent
    # a measured trace and/or outages in place of the constant rate (`links.capacity`); rate_mbps
    # is then the trace's mean rate x scale, which only the closed form uses
    shape: LinkShape = field(default_factory=LinkShape)

    def __post_init__(self) -> None:
        if not self.rate_mbps > 0:
            raise ValueError(f"rate_mbps must be positive, got {self.rate_mbps!r}")
        for name in ("latency_ms", "jitter_ms", "retransmit_timeout_ms"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be non-negative, got {getattr(self, name)!r}")
        if not 0 <= self.loss_rate < 1:
            raise ValueError(f"loss_rate must be in [0, 1), got {self.loss_rate!r}")
        if self.mtu_bytes < 1:
            raise ValueError(f"mtu_bytes must be positive, got {self.mtu_bytes!r}")

    @property
    def deterministic(self) -> bool:
        """True when every transfer takes exactly `transfer_time_s` (no jitter, no loss, no trace or outage)."""
        return self.jitter_ms == 0 and self.loss_rate == 0 and not self.shape.varies


def serialisation_time_s(payload_bytes: int, link: LinkSpec) -> float:
    """Time the link is busy putting the payload on the wire: bytes*8 / (rate_mbps*1e6)."""
    return payload_bytes * 8 / (link.rate_mbps * 1e6)


def transfer_time_s(payload_bytes: int, link: LinkSpec) -> float:
    """Send start to arrival without jitter or loss: serialisation + latency_ms/1000."""
    return serialisation_time_s(payload_bytes, link) + link.latency_ms / 1e3


def packet_count(payload_bytes: int, link: LinkSpec) -> int:
    """Packets of one payload: ceil(bytes / mtu_bytes)."""
    return math.ceil(payload_bytes / link.mtu_bytes)


def batches_per_epoch(train_samples: int, batch_size: int) -> int:
    """ceil(train_samples / batch_size): the last, short batch is padded and costs a full batch."""
    return math.ceil(train_samples / batch_size)


@dataclass(frozen=True)
class BatchCosts:
    """Every per-batch term of the three methods, in seconds and bytes, at `batch_size`."""

    batch_size: int
    edge_prep_s: float  # uint8 batch -> normalised float tensor, edge CPU
    edge_fwd_s: float  # blocks layers[0..split] on the edge
    edge_bwd_s: float
    edge_step_s: float
    exit_fwd_s: float  # early exit after the split, on the edge (loss included)
    exit_bwd_s: float
    exit_step_s: float
    cloud_prep_s: float  # input prep on the cloud (full_cloud only)
    cloud_fwd_s: float  # blocks after the split, head included, on the cloud
    cloud_bwd_s: float
    cloud_step_s: float
    full_cloud_fwd_s: float  # every block on the cloud
    full_cloud_bwd_s: float
    full_cloud_step_s: float
    activation_bytes: int  # encoded output of the split block
    gradient_bytes: int  # encoded gradient w.r.t. it, same shape and codec
    raw_batch_bytes: int  # B * (raw_sample_bytes + label_bytes)
    label_bytes_per_batch: int  # B * label_bytes
    part_steps: "PartSteps | None" = None  # whole-part step times measured in one piece; replace the sums


@dataclass(frozen=True)
class PartSteps:
    """Training-step time of each part measured whole (its blocks in one chain, as training runs
    them, codec encoding/decoding included), seconds per batch. The edge's input prep stays a
    separate term (edge_prep_s); full_cloud_s includes the cloud's, as the cloud prepares the raw batch.

    When a BatchCosts carries these, the stage functions below use them instead of the sum of
    per-block times. A block timed alone pays for its own output memory and cold caches, which
    a chain of blocks does not: on this repository's 2-core CPU at one thread, the per-block sum
    over-states VGG-16's (width 0.25) edge step by about 20% (README, "Real runs"). Measured
    by the workers of each `simulate emulate` session (simulator/emulation/part_steps.py).
    """

    hierarchical_edge_s: float  # fwd + exit fwd/bwd + bwd + step + encode (features)
    split_edge_forward_s: float  # fwd + encode (activations)
    split_edge_backward_s: float  # decode (gradient) + bwd + step
    hierarchical_cloud_s: float  # decode + fwd + bwd + step of the cloud blocks
    split_cloud_s: float  # decode + fwd + bwd (with the input gradient) + step + encode (gradient)
    full_cloud_s: float  # decode + input prep + fwd + bwd + step of every block (the raw batch)


def batch_costs(edge: Profile, cloud: Profile, split: str, codec: str) -> BatchCosts:
    """Per-batch costs of a model cut after block `split`, edge part on `edge`, rest on `cloud`.

    Both profiles must describe the same blocks at the same batch size; the early exit after
    `split` comes from the edge profile.
    """
    if edge.layer_names != cloud.layer_names:
        raise ValueError(f"edge and cloud profiles have different blocks: {edge.layer_names} vs {cloud.layer_names}")
    if edge.batch_size != cloud.batch_size:
        raise ValueError(f"edge batch size {edge.batch_size} != cloud batch size {cloud.batch_size}")
    if split not in edge.layer_names[:-1]:
        raise ValueError(f"split {split!r} is not a separation point; valid: {', '.join(edge.layer_names[:-1])}")
    try:
        head = edge.exit_after(split)
    except KeyError:
        raise ValueError(f"edge profile has no early exit after {split!r}") from None
    cut = edge.layer_index(split) + 1
    mine, theirs = edge.layers[:cut], cloud.layers[cut:]
    numel = math.prod(edge.layers[cut - 1].out_shape)
    batch = edge.batch_size
    return BatchCosts(
        batch_size=batch,
        edge_prep_s=edge.input_prep_ms / 1e3,
        edge_fwd_s=sum(layer.fwd_ms for layer in mine) / 1e3,
        edge_bwd_s=sum(layer.bwd_ms for layer in mine) / 1e3,
        edge_step_s=sum(layer.step_ms for layer in mine) / 1e3,
        exit_fwd_s=head.fwd_ms / 1e3,
        exit_bwd_s=head.bwd_ms / 1e3,
        exit_step_s=head.step_ms / 1e3,
        cloud_prep_s=cloud.input_prep_ms / 1e3,
        cloud_fwd_s=sum(layer.fwd_ms for layer in theirs) / 1e3,
        cloud_bwd_s=sum(layer.bwd_ms for layer in theirs) / 1e3,
        cloud_step_s=sum(layer.step_ms for layer in theirs) / 1e3,
        full_cloud_fwd_s=sum(layer.fwd_ms for layer in cloud.layers) / 1e3,
        full_cloud_bwd_s=sum(layer.bwd_ms for layer in cloud.layers) / 1e3,
        full_cloud_step_s=sum(layer.step_ms for layer in cloud.layers) / 1e3,
        activation_bytes=encoded_bytes(codec, numel),
        gradient_bytes=encoded_bytes(codec, numel),
        raw_batch_bytes=batch * (edge.raw_sample_bytes + edge.label_bytes),
        label_bytes_per_batch=batch * edge.label_bytes,
    )


# ---- per-method stage times, shared by the simulation and the closed form -----------------

def hierarchical_edge_train_s(costs: BatchCosts) -> float:
    """Edge compute of one hierarchical batch: fwd + exit fwd + exit bwd + bwd + step (blocks and exit)."""
    if costs.part_steps is not None:
        return costs.part_steps.hierarchical_edge_s
    return (costs.edge_fwd_s + costs.exit_fwd_s + costs.exit_bwd_s + costs.edge_bwd_s
            + costs.edge_step_s + costs.exit_step_s)


def split_edge_forward_s(costs: BatchCosts) -> float:
    """Edge compute before the activations go up (split learning): fwd of the edge blocks."""
    if costs.part_steps is not None:
        return costs.part_steps.split_edge_forward_s
    return costs.edge_fwd_s


def split_edge_backward_s(costs: BatchCosts) -> float:
    """Edge compute after the gradient comes down (split learning): bwd + step of the edge blocks."""
    if costs.part_steps is not None:
        return costs.part_steps.split_edge_backward_s
    return costs.edge_bwd_s + costs.edge_step_s


def cloud_train_s(costs: BatchCosts, method: str) -> float:
    """Cloud GPU time per batch: prep + fwd + bwd + step of all blocks for full_cloud,
    fwd + bwd + step of the blocks after the split otherwise (the measured PartSteps when given)."""
    check_method(method)
    steps = costs.part_steps
    if steps is not None:
        return {"full_cloud": steps.full_cloud_s, "split_learning": steps.split_cloud_s,
                "hierarchical": steps.hierarchical_cloud_s}[method]
    if method == "full_cloud":
        return costs.cloud_prep_s + costs.full_cloud_fwd_s + costs.full_cloud_bwd_s + costs.full_cloud_step_s
    return costs.cloud_fwd_s + costs.cloud_bwd_s + costs.cloud_step_s


def uplink_payload_bytes(costs: BatchCosts, method: str) -> int:
    """Bytes per batch up: the raw batch for full_cloud, activations + labels otherwise."""
    check_method(method)
    if method == "full_cloud":
        return costs.raw_batch_bytes
    return costs.activation_bytes + costs.label_bytes_per_batch


def downlink_payload_bytes(costs: BatchCosts, method: str) -> int:
    """Bytes per batch down: the gradient in split learning, nothing otherwise."""
    check_method(method)
    return costs.gradient_bytes if method == "split_learning" else 0


def edge_stages_s(costs: BatchCosts, method: str, edge_has_gpu: bool) -> tuple[float, ...]:
    """Pipeline stages on the edge for hierarchical and full_cloud (split learning is not a
    pipeline): none for full_cloud; (prep, train) with a GPU, (prep + train,) without one."""
    check_method(method)
    if method == "full_cloud":
        return ()
    if method == "split_learning":
        raise ValueError("split learning runs strictly in turn; use split_learning_batch_s")
    train_s = hierarchical_edge_train_s(costs)
    return (costs.edge_prep_s, train_s) if edge_has_gpu else (costs.edge_prep_s + train_s,)


def split_learning_batch_s(costs: BatchCosts, uplink: LinkSpec, downlink: LinkSpec) -> float:
    """One split-learning batch, strictly in turn (no overlap whether or not the edge has a GPU):
    prep + edge fwd + transfer up + cloud fwd/bwd/step + transfer down + edge bwd + step."""
    method = "split_learning"
    return (costs.edge_prep_s + split_edge_forward_s(costs)
            + transfer_time_s(uplink_payload_bytes(costs, method), uplink)
            + cloud_train_s(costs, method)
            + transfer_time_s(downlink_payload_bytes(costs, method), downlink)
            + split_edge_backward_s(costs))
