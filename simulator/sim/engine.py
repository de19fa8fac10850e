"""Run one training configuration through the discrete-event simulation.

`simulate(RunSpec) -> RunResult`. With `fast_forward` and a deterministic network (no jitter,
no loss on the links the method uses) the simulation stops once the steady state is proven
and extrapolates exactly (see `recorder`); the first `trace_batches` batches are always
simulated event by event, so the trace is the same either way.
"""
import bisect
import math

import simpy

from ..core.names import (
    BACKWARD,
    CLOUD_GPU,
    DOWNLINK,
    EDGE_CPU,
    FULL_CLOUD,
    SPLIT_LEARNING,
    TRAIN,
    UPLINK,
    edge_compute,
)
from ..costmodel.analytic import analytic_time_s
from .methods import CLOUD_TRAIN, phases
from .recorder import Recorder, TraceEvent
from .run import RunResult, RunSpec


def run_phases(spec: RunSpec, starts_s: tuple[float, ...] | None = None) -> tuple[list[Recorder], float]:
    """Simulate `spec`'s phases one after the other: their recorders and when the last ended.
    With `starts_s` (when each phase starts, known from elsewhere), each phase stops once its
    first `trace_batches` batches are done."""
    recorders: list[Recorder] = []
    start_s = 0.0
    for i, phase in enumerate(phases(spec)):
        trace_only = starts_s is not None
        start_s = starts_s[i] if trace_only else start_s
        env = simpy.Environment(initial_time=start_s)
        recorder = Recorder(env, phase.n_batches, phase.segments, phase.lookback_batches, spec.trace_batches,
                            spec.fast_forward and spec.deterministic and not trace_only, trace_only=trace_only)
        phase.start(env, recorder)
        env.run(until=recorder.done)
        recorders.append(recorder)
        if trace_only:
            continue
        start_s = recorder.end_s(recorder.final_stage, phase.n_batches - 1) if not recorder.dropped \
            else recorder.finished_s
    return recorders, start_s


def trace_window(spec: RunSpec, starts_s: tuple[float, ...]) -> tuple[tuple[TraceEvent, ...],
                                                                     tuple[tuple[float, int], ...]]:
    """(trace, backlog_trace) of the first `trace_batches` batches of each of `spec`'s phases, which
    start at `starts_s`, simulated event by event and no further: what the fast engine leaves to SimPy."""
    if spec.trace_batches == 0:
        return (), ()
    recorders, _ = run_phases(spec, starts_s)
    return event_trace(recorders), backlog_trace(recorders)


def event_trace(recorders: list[Recorder]) -> tuple[TraceEvent, ...]:
    return tuple(sorted((event for r in recorders for event in r.trace),
                        key=lambda e: (e.start_s, e.end_s, e.resource, e.what, e.batch)))


def backlog_trace(recorders: list[Recorder]) -> tuple[tuple[float, int], ...]:
    return tuple(sample for r in recorders for sample in r.backlog_trace.get(UPLINK, []))


def simulate(spec: RunSpec) -> RunResult:
    """Simulate `spec`'s phases one after the other and sum up what they recorded."""
    recorders, start_s = run_phases(spec)

    def total(measure) -> float:
        return sum(measure(recorder) for recorder in recorders)

    compute = edge_compute(spec.edge_has_gpu)
    edge_stage = (compute, BACKWARD if spec.method == SPLIT_LEARNING else TRAIN)
    cloud = recorders[-1]
    for recorder in recorders:
        recorder.dropped.sort()  # drops come in batch order; sorted, whatever a policy does
    dropped = [batch for r in recorders for batch in r.dropped]
    bytes_up = total(lambda r: r.bytes_sent(UPLINK))
    return RunResult(
        total_time_s=start_s,
        analytic_time_s=analytic_time_s(spec.method, spec.costs, spec.uplink, spec.downlink, spec.batches_per_epoch,
                                        spec.epochs, spec.edge_has_gpu, spec.raw_upload),
        bytes_up=bytes_up,
        bytes_down=total(lambda r: r.bytes_sent(DOWNLINK)),
        raw_bytes_sent=bytes_up if spec.method == FULL_CLOUD else 0,
        edge_busy_s=total(lambda r: r.busy_s(compute)),
        edge_cpu_busy_s=total(lambda r: r.busy_s(EDGE_CPU)),
        uplink_busy_s=total(lambda r: r.busy_s(UPLINK)),
        downlink_busy_s=total(lambda r: r.busy_s(DOWNLINK)),
        cloud_busy_s=total(lambda r: r.busy_s(CLOUD_GPU)),
        max_uplink_backlog=max(r.peak_backlog(UPLINK) for r in recorders),
        edge_batches_trained=total(lambda r: r.batches_done(edge_stage)),
        cloud_batches_trained=total(lambda r: r.batches_done(CLOUD_TRAIN)),
        batches_dropped=len(dropped),
        dropped_batches=tuple(dropped),
        epoch_end_s=tuple(trained_end_s(cloud, (epoch + 1) * spec.batches_per_epoch - 1)
                          for epoch in range(spec.epochs)),
        trace=event_trace(recorders),
        backlog_trace=backlog_trace(recorders),
        fast_forwarded=any(r.periods_s is not None for r in recorders),
        **worst_stall(recorders, start_s),
    )


def trained_end_s(recorder: Recorder, batch: int) -> float:
    """When the cloud finished the last batch it trained among 0..`batch` (nan if none): with
    drops, the cloud's log skips the dropped batches."""
    if not recorder.dropped:
        return recorder.end_s(CLOUD_TRAIN, batch)
    position = batch + 1 - bisect.bisect_right(recorder.dropped, batch) - 1
    return recorder.end_s(CLOUD_TRAIN, position) if position >= 0 else math.nan


def instants(times_s, levels) -> list[tuple[float, int]]:
    """(time, level) with only the last level of each instant: the link's state between events."""
    return [(t, level) for i, (t, level) in enumerate(zip(times_s, levels))
            if i + 1 == len(times_s) or times_s[i + 1] != t]


STALL_BEFORE_S, STALL_AFTER_S = 20.0, 40.0  # the report's window around the worst stall


def worst_stall(recorders: list[Recorder], end_s: float) -> dict:
    """The longest uplink stall before `end_s`, with the backlog and drops around it."""
    links = [r.links[UPLINK] for r in recorders if UPLINK in r.links and r.links[UPLINK].clock is not None]
    stalls = [(b - a, (a, b), link) for link in links for a, b in link.clock.stalls_until(end_s)]
    if not stalls:
        return {}
    _, (start_s, stop_s), link = max(stalls, key=lambda s: s[0])
    low, high = start_s - STALL_BEFORE_S, stop_s + STALL_AFTER_S
    times = link.backlog_times_s
    first, last = bisect.bisect_left(times, low), bisect.bisect_right(times, high)
    backlog = tuple(instants(times[first:last], link.backlog_levels[first:last]))
    if first > 0:  # the level the window opens with
        backlog = ((low, link.backlog_levels[first - 1]), *backlog)
    return {"worst_stall_s": (start_s, stop_s), "stall_backlog": backlog,
            "stall_drops": tuple((t, b) for t, b in link.dropped if low <= t <= high)}
