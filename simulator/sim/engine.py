"""Run one training configuration through the discrete-event simulation.

`simulate(RunSpec) -> RunResult`. With `fast_forward` and a deterministic network (no jitter,
no loss on the links the method uses) the simulation stops once the steady state is proven
and extrapolates exactly (see `recorder`); the first `trace_batches` batches are always
simulated event by event, so the trace is the same either way.
"""
from dataclasses import dataclass

import simpy

from .analytic import analytic_time_s
from .costs import METHODS, RAW_UPLOADS, BatchCosts, LinkSpec
from .methods import CLOUD, phases
from .recorder import Recorder, TraceEvent


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
        return self.uplink.deterministic and (self.method != "split_learning" or self.downlink.deterministic)


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


def simulate(spec: RunSpec) -> RunResult:
    """Simulate `spec`'s phases one after the other and sum up what they recorded."""
    recorders: list[Recorder] = []
    start_s = 0.0
    for phase in phases(spec):
        env = simpy.Environment(initial_time=start_s)
        recorder = Recorder(env, phase.n_batches, phase.segments, phase.memory_batches, spec.trace_batches,
                            spec.fast_forward and spec.deterministic)
        phase.start(env, recorder)
        env.run(until=recorder.done)
        start_s = recorder.end_s(recorder.final_stage, phase.n_batches - 1)
        recorders.append(recorder)

    def total(measure) -> float:
        return sum(measure(recorder) for recorder in recorders)

    gpu = "edge_gpu" if spec.edge_has_gpu else "edge_cpu"
    edge_stage = (gpu, "backward" if spec.method == "split_learning" else "train")
    cloud = recorders[-1]
    bytes_up = total(lambda r: r.bytes_sent("uplink"))
    return RunResult(
        total_time_s=start_s,
        analytic_time_s=analytic_time_s(spec.method, spec.costs, spec.uplink, spec.downlink, spec.batches_per_epoch,
                                        spec.epochs, spec.edge_has_gpu, spec.raw_upload),
        bytes_up=bytes_up,
        bytes_down=total(lambda r: r.bytes_sent("downlink")),
        raw_bytes_sent=bytes_up if spec.method == "full_cloud" else 0,
        edge_busy_s=total(lambda r: r.busy_s(gpu)),
        edge_cpu_busy_s=total(lambda r: r.busy_s("edge_cpu")),
        uplink_busy_s=total(lambda r: r.busy_s("uplink")),
        downlink_busy_s=total(lambda r: r.busy_s("downlink")),
        cloud_busy_s=total(lambda r: r.busy_s("cloud_gpu")),
        max_uplink_backlog=max(r.max_backlog.get("uplink", 0) for r in recorders),
        edge_batches_trained=total(lambda r: r.batches_done(edge_stage)),
        cloud_batches_trained=total(lambda r: r.batches_done(CLOUD[0])),
        epoch_end_s=tuple(cloud.end_s(CLOUD[0], (epoch + 1) * spec.batches_per_epoch - 1)
                          for epoch in range(spec.epochs)),
        trace=tuple(sorted((event for r in recorders for event in r.trace),
                           key=lambda e: (e.start_s, e.end_s, e.resource, e.what, e.batch))),
        backlog_trace=tuple(sample for r in recorders for sample in r.backlog_trace.get("uplink", [])),
        fast_forwarded=any(r.periods_s is not None for r in recorders),
    )
