"""What a simulation phase records, and the exact steady-state fast forward.

A *stage* is one kind of work on one resource, e.g. ("uplink", "send") or ("cloud_gpu",
"train"). Every batch passes every stage of its phase once, in batch order, so a stage's
log is a list indexed by batch. The stages are grouped into *segments*, listed upstream
first: stages coupled by finite buffers or by waiting for each other form one segment;
consecutive segments are joined by an unbounded queue (e.g. the batches delivered to the
cloud), so a downstream segment may fall ever further behind an upstream one.

Fast forward (deterministic runs only). Without jitter and loss each segment is a max-plus
linear recurrence in the batch index that looks back at most `lookback_batches` batches (the
uplink buffer) plus the number of stages. If, over a window of W = look-back + stages + 2 batches,
every start and end time of every stage of a segment advanced by one common period
p_seg (to a relative 1e-12 of the time), the next batch is the same max-plus function of
shifted inputs, so it is shifted by p_seg too, and so on for ever. Downstream segments need
p_down >= p_up: if equal, the coupling term shifts alike; if larger, the downstream stage
already waits on itself rather than on arrivals (start >= arrival, and the gap grows by
p_down - p_up per batch). Then batch b of a stage ends at end[last] + (b - last) * p, and
busy time and bytes grow by the constant per-batch amount for each batch not yet simulated.
"""
from dataclasses import dataclass

import simpy

from ..core.names import SEND, Stage

PERIOD_RTOL = 1e-12  # relative to the simulated time: float rounding is ~1e-16 of it


@dataclass(frozen=True)
class TraceEvent:
    """One piece of work of one batch on one resource, in simulated seconds."""

    resource: str  # edge_cpu, edge_gpu, uplink, downlink or cloud_gpu
    what: str  # prep, forward, backward, train, send or propagate
    batch: int
    start_s: float
    end_s: float


class StageLog:
    """Start and end of every batch at one stage, with busy seconds and payload bytes."""

    def __init__(self, recorder: "Recorder", stage: Stage):
        self.recorder = recorder
        self.stage = stage
        self.start_s: list[float] = []
        self.end_s: list[float] = []
        self.busy_s = 0.0
        self.last_busy_s = 0.0
        self.bytes = 0
        self.last_bytes = 0

    def add(self, batch: int, start_s: float, end_s: float, busy_s: float = 0.0, payload_bytes: int = 0) -> None:
        self.start_s.append(start_s)
        self.end_s.append(end_s)
        self.busy_s += busy_s
        self.last_busy_s = busy_s
        self.bytes += payload_bytes
        self.last_bytes = payload_bytes
        if 0 <= batch < self.recorder.trace_batches:  # a negative batch: weights (fleets), never traced
            self.recorder.trace.append(TraceEvent(*self.stage, batch, start_s, end_s))
        if self.stage == self.recorder.final_stage:
            self.recorder.final_batch_done(batch)


class Recorder:
    """Logs of one phase, run until its last batch or until the steady state is proven."""

    def __init__(self, env: simpy.Environment, n_batches: int, segments: tuple[tuple[Stage, ...], ...],
                 lookback_batches: int, trace_batches: int, fast_forward: bool, trace_only: bool = False):
        self.n_batches = n_batches
        self.segments = segments
        self.final_stage = segments[-1][-1]
        self.stages = {stage: StageLog(self, stage) for segment in segments for stage in segment}
        self.window = lookback_batches + len(self.stages) + 2
        self.trace_batches = trace_batches
        self.fast_forward = fast_forward
        self.env = env
        self.done = env.event()  # succeeds at the last batch, or once fast-forwarded
        self.periods_s: dict[Stage, float] | None = None  # per stage, once fast-forwarded
        self.trace: list[TraceEvent] = []
        self.backlog_trace: dict[str, list[tuple[float, int]]] = {}
        # the largest backlog a link held, counted after all puts and departures of an instant (the
        # order SimPy gives events at one time is not a state the link is ever in)
        self.max_backlog: dict[str, int] = {}
        self.instant_backlog: dict[str, tuple[float, int]] = {}  # (time, level) of the latest instant
        self.links: dict = {}  # name -> sim.network.Link of this phase (they register themselves)
        self.dropped: list[int] = []  # batches a link discarded (buffer policy drop_*), in increasing order
        self.finished_s: float | None = None  # when every batch was trained or dropped
        # trace_only: stop once the first `trace_batches` batches were trained or dropped (the fast
        # engine computes the rest)
        self.trace_only = trace_only
        self.trace_left = min(trace_batches, n_batches)

    def _finish(self) -> None:
        self.finished_s = self.env.now
        self.done.succeed()

    def _traced(self, batch: int) -> bool:
        """Count `batch` out of the trace window; True once the window is complete (trace_only)."""
        if batch < self.trace_batches:
            self.trace_left -= 1
        if self.trace_only and self.trace_left <= 0 and not self.done.triggered:
            self._finish()
            return True
        return False

    def note_drop(self, batch: int) -> None:
        """A link discarded `batch`: it will never reach the final stage."""
        self.dropped.append(batch)
        if self._traced(batch):
            return
        if not self.done.triggered and len(self.stages[self.final_stage].end_s) + len(self.dropped) == self.n_batches:
            self._finish()

    def log(self, resource: str, what: str) -> StageLog:
        return self.stages[(resource, what)]

    def note_backlog(self, link: str, batch: int, backlog: int) -> None:
        """A link's queue changed to `backlog` batches because of `batch` (sampled in the trace window)."""
        pending = self.instant_backlog.get(link)
        if pending is not None and pending[0] != self.env.now:  # that instant is over: its level counts
            self.max_backlog[link] = max(self.max_backlog.get(link, 0), pending[1])
        self.instant_backlog[link] = (self.env.now, backlog)
        if 0 <= batch < self.trace_batches:
            self.backlog_trace.setdefault(link, []).append((self.env.now, backlog))

    def peak_backlog(self, link: str) -> int:
        """The largest backlog `link` held at the end of an instant (0 if it never held one)."""
        pending = self.instant_backlog.get(link)
        return max(self.max_backlog.get(link, 0), pending[1] if pending is not None else 0)

    def final_batch_done(self, batch: int) -> None:
        if self.done.triggered or self._traced(batch):  # a zero-length stage may finish again before the run stops
            return
        if len(self.stages[self.final_stage].end_s) + len(self.dropped) == self.n_batches:
            self._finish()
        elif self.fast_forward and not self.dropped and batch >= max(self.trace_batches, self.window):
            self.periods_s = self._steady_periods(batch)
            if self.periods_s is not None:
                self._finish()

    def _steady_periods(self, last: int) -> dict[Stage, float] | None:
        """Per-stage period if batches last-W .. last prove the steady state, else None."""
        first = last - self.window
        tol = PERIOD_RTOL * abs(self.stages[self.final_stage].end_s[last])  # the latest time of these batches
        periods: dict[Stage, float] = {}
        upstream_s = None
        for segment in self.segments:
            segment_s = None
            for stage in segment:
                log = self.stages[stage]
                for times in (log.start_s, log.end_s):
                    period = (times[last] - times[first]) / self.window
                    segment_s = period if segment_s is None else segment_s
                    if abs(period - segment_s) > tol or any(
                            abs(times[i] - times[i - 1] - period) > tol for i in range(first + 1, last + 1)):
                        return None
                periods[stage] = period
            if upstream_s is not None and segment_s < upstream_s - tol:
                return None
            upstream_s = segment_s
        return periods

    # ---- totals over the whole phase (extrapolated when fast-forwarded) -----------------------
    def end_s(self, stage: Stage, batch: int) -> float:
        """When `batch` finished `stage`."""
        ends = self.stages[stage].end_s
        if batch < len(ends):
            return ends[batch]
        return ends[-1] + (batch - len(ends) + 1) * self.periods_s[stage]

    def _remaining(self, log: StageLog) -> int:
        """Batches of this stage left to the fast forward (none after a full run)."""
        return 0 if self.periods_s is None else self.n_batches - len(log.end_s)

    def batches_done(self, stage: Stage) -> int:
        log = self.stages.get(stage)
        return 0 if log is None else len(log.end_s) + self._remaining(log)

    def busy_s(self, resource: str) -> float:
        """Busy seconds of `resource` over the phase: logged + remaining batches x per-batch busy."""
        return sum(log.busy_s + self._remaining(log) * log.last_busy_s
                   for (name, _), log in self.stages.items() if name == resource)

    def bytes_sent(self, link: str) -> int:
        log = self.stages.get((link, SEND))
        return 0 if log is None else log.bytes + self._remaining(log) * log.last_bytes
