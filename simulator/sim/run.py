"""One run of the simulation: what to simulate (`RunSpec`) and what it took (`RunResult`).

Shared by the engine, which turns one into the other, and the method processes, which read
the spec; kept apart so neither imports the other.
"""
from dataclasses import dataclass

from ..core.names import HIERARCHICAL, METHODS, SPLIT_LEARNING
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
    # when that queue is full: block (wait), drop_oldest or drop_newest (`network.BUFFER_POLICIES`);
    # only hierarchical training drops: split learning waits by nature, full_cloud's raw data waits
    uplink_buffer_policy: str = "block"
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
        if self.uplink_buffer_policy not in ("block", "drop_oldest", "drop_newest"):
            raise ValueError(f"unknown uplink_buffer_policy {self.uplink_buffer_policy!r}; "
                             "valid: block, drop_oldest, drop_newest")
        if self.trace_batches < 0:
            raise ValueError(f"trace_batches must be non-negative, got {self.trace_batches!r}")

    @property
    def deterministic(self) -> bool:
        """No jitter, loss, trace or outage on the links this method uses, and no dropping."""
        return (self.uplink.deterministic and (self.method != SPLIT_LEARNING or self.downlink.deterministic)
                and self.drop_policy is None)

    @property
    def drop_policy(self) -> str | None:
        """The uplink's dropping policy where this method drops (hierarchical only), else None."""
        return self.uplink_buffer_policy if self.method == HIERARCHICAL and self.uplink_buffer_policy != "block" \
            else None


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
    cloud_batches_trained: int  # fewer than the edge's when the uplink dropped batches
    batches_dropped: int  # feature batches the uplink discarded (hierarchical under drop_*)
    dropped_batches: tuple[int, ...]  # which ones (0-based over the run), for training the cloud without them
    epoch_end_s: tuple[float, ...]  # when the cloud finished each epoch's last batch
    trace: tuple[TraceEvent, ...]  # first `trace_batches` batches, by start time
    backlog_trace: tuple[tuple[float, int], ...]  # (time_s, uplink backlog) in the trace window
    fast_forwarded: bool
    # the longest uplink stall (outage, or trace gap > 1 s) while the run lasted, and the uplink's
    # backlog and drops from 20 s before it to 40 s after it (empty on a link that never stalls)
    worst_stall_s: tuple[float, float] | None = None
    stall_backlog: tuple[tuple[float, int], ...] = ()
    stall_drops: tuple[tuple[float, int], ...] = ()
    engine: str = "simpy"  # the engine that produced the totals (`simulator.engines`)

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
