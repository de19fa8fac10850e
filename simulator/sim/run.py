"""One run of the simulation: what to simulate (`RunSpec`) and what it took (`RunResult`).

Shared by the engine, which turns one into the other, and the method processes, which read
the spec; kept apart so neither imports the other.
"""
from dataclasses import dataclass

from ..core.names import METHODS, SPLIT_LEARNING
from ..costmodel.costs import RAW_UPLOADS, BatchCosts, LinkSpec
from .recorder import TraceEvent


@dataclass(frozen=True)
class RunSpec:
    """One run: a method, its per-batch costs, the network and the length of training."""

    method: str  # full_cloud, split_learning or hierarchical
    costs: BatchCosts
    uplink: LinkSpec
    downlink: LinkSpec
    batches_per_epoch: int  # ceil(train_samples / batch_size); see costs.batches_per_epoch
    epochs: int
    uplink_buffer_batches: int = 1  # edge-side uplink queue, the batch on the wire included
    edge_has_gpu: bool = False
    raw_upload: str = "once"  # full_cloud: upload the training set "once" or "every_epoch"
    seed: int = 0  # jitter and loss draws
    fast_forward: bool = True
    trace_batches: int = 20  # batches kept in the trace and backlog trace

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; valid: {', '.join(METHODS)}")
        if self.raw_upload not in RAW_UPLOADS:
            raise ValueError(f"unknown raw_upload {self.raw_upload!r}; valid: {', '.join(RAW_UPLOADS)}")
        for name in ("batches_per_epoch", "epochs", "uplink_buffer_batches"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.trace_batches < 0:
            raise ValueError(f"trace_batches must be non-negative, got {self.trace_batches!r}")

    @property
    def deterministic(self) -> bool:
        """No jitter and no loss on the links this method uses."""
        return self.uplink.deterministic and (self.method != SPLIT_LEARNING or self.downlink.deterministic)


@dataclass(frozen=True)
class RunResult:
    """What one run took: times in simulated seconds, traffic in bytes, work in batches."""

    total_time_s: float  # until the last batch is fully trained
    analytic_time_s: float  # closed form without jitter and loss (`analytic`)
    bytes_up: int  # payloads on the uplink, each counted once (retransmissions excluded)
    bytes_down: int
    raw_bytes_sent: int  # raw training data uploaded (full_cloud only)
    edge_busy_s: float  # edge GPU when it has one, else edge CPU
    edge_cpu_busy_s: float
    uplink_busy_s: float  # bits on the wire, retransmissions included
    downlink_busy_s: float
    cloud_busy_s: float
    max_uplink_backlog: int  # batches in the uplink buffer, the one on the wire included
    edge_batches_trained: int  # every batch once per epoch; 0 for full_cloud
    cloud_batches_trained: int
    epoch_end_s: tuple[float, ...]  # when the cloud finished each epoch's last batch
    trace: tuple[TraceEvent, ...]  # first `trace_batches` batches, by start time
    backlog_trace: tuple[tuple[float, int], ...]  # (time_s, uplink backlog) in the trace window
    fast_forwarded: bool

    def _fraction(self, busy_s: float) -> float:
        return busy_s / self.total_time_s if self.total_time_s > 0 else 0.0

    @property
    def edge_busy_frac(self) -> float:
        return self._fraction(self.edge_busy_s)

    @property
    def uplink_busy_frac(self) -> float:
        return self._fraction(self.uplink_busy_s)

    @property
    def downlink_busy_frac(self) -> float:
        return self._fraction(self.downlink_busy_s)

    @property
    def cloud_busy_frac(self) -> float:
        return self._fraction(self.cloud_busy_s)
