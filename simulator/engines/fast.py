"""The fast engine: a RunSpec's totals from the compiled recurrences of `engines.kernels`.

Why compiled (Numba) rather than NumPy across runs: each batch waits on the one before it (the
buffer, the link, the cloud), so the loop over batches is sequential in every run; NumPy could only
vectorise across the runs of a sweep, which leaves a Python loop of ~150,000 steps with ~30 array
operations each (about 5 s per sweep of any size), and the varying links (opportunity counting,
outage windows) branch per run. Compiled, one batch costs ~0.1 us, whatever the sweep.

The fast engine reads the same per-batch draws as SimPy (`sim.methods.link_draws`), computes the
same start and end times operation for operation, and leaves the event trace of the first
`trace_batches` batches to SimPy (`sim.engine.trace_window`), which stays the engine of record.
"""
import functools
import math

import numpy as np

from ..core.names import FULL_CLOUD, HIERARCHICAL, SPLIT_LEARNING
from ..costmodel.analytic import analytic_time_s
from ..costmodel.costs import (
    BatchCosts,
    LinkSpec,
    cloud_train_s,
    downlink_payload_bytes,
    hierarchical_edge_train_s,
    serialisation_time_s,
    split_edge_backward_s,
    split_edge_forward_s,
    uplink_payload_bytes,
)
from ..links.capacity import LinkClock
from ..links.draws import LinkDraws
from ..links.outages import OutageSchedule, merge
from ..links.traces import PACKET_BYTES, PacketTrace, load_trace
from ..sim.engine import STALL_AFTER_S, STALL_BEFORE_S, trace_window
from ..sim.methods import link_draws
from ..sim.run import RunResult, RunSpec
from . import kernels as k

HORIZON_GROWTH = 4.0  # the outage model's drawn horizon grows by this factor when a run outlives it
MIN_HORIZON_S = 60.0


@functools.lru_cache(maxsize=32)
def trace_arrays(path: str) -> tuple:
    """(kind, opportunities per period, opportunity times ms, rate starts s, Mbit/s, cumulative bits,
    period ms, period s) of a trace file, as arrays for the kernels."""
    trace = load_trace(path)
    empty = np.empty(0)
    if isinstance(trace, PacketTrace):
        times = np.asarray(trace.times_ms, dtype=np.float64)
        return k.PACKET_TRACE, len(times), times, empty, empty, empty, float(trace.period_ms), trace.period_s
    return (k.RATE_TRACE, 1, empty, np.asarray(trace.starts_s, dtype=np.float64),
            np.asarray(trace.mbps, dtype=np.float64), np.asarray(trace.cumulative_bits, dtype=np.float64),
            0.0, trace.period_s)


def outage_windows(spec: LinkSpec, horizon_s: float) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of the link's merged outage windows, the model drawn past `horizon_s`; the
    window the model's next draws could still reach ends at +inf (the kernels stop there)."""
    shape = spec.shape
    mean_up_s, mean_down_s = shape.outage_model or (None, None)
    schedule = OutageSchedule(shape.outages, mean_up_s, mean_down_s, shape.outage_seed)
    windows, known_until_s = schedule.known_windows(horizon_s)
    if known_until_s < math.inf:  # past it, the model's next draws may add an outage: stop there
        windows.append((known_until_s, math.inf))
    windows = merge(sorted(windows))
    return (np.array([w[0] for w in windows], dtype=np.float64),
            np.array([w[1] for w in windows], dtype=np.float64))


def link_arrays(spec: LinkSpec, payload_bytes: int, draws: LinkDraws, horizon_s: float) -> tuple:
    """One link as the kernels read it (see `engines.kernels`)."""
    shape = spec.shape
    empty = np.empty(0)
    unit_bytes = min(spec.mtu_bytes, payload_bytes)
    if shape.trace is not None:
        kind, per_period, times, starts, mbps, cum, period_ms, period_s = trace_arrays(shape.trace)
    else:
        kind = k.CONSTANT_OUTAGES if shape.varies else k.CONSTANT
        per_period, times, starts, mbps, cum, period_ms, period_s = 1, empty, empty, empty, empty, 0.0, 0.0
    floats = np.zeros(12)
    floats[k.RATE_BPS] = spec.rate_mbps * 1e6
    floats[k.SER_PAYLOAD_S] = serialisation_time_s(payload_bytes, spec)
    floats[k.SER_UNIT_S] = serialisation_time_s(unit_bytes, spec)
    floats[k.RTO_MS] = spec.retransmit_timeout_ms
    floats[k.LATENCY_S] = spec.latency_ms / 1e3
    floats[k.SCALE] = shape.scale
    floats[k.OFFSET_S] = shape.offset_s
    floats[k.PERIOD_MS] = period_ms
    floats[k.PERIOD_S] = period_s
    floats[k.PAYLOAD_BYTES] = payload_bytes
    floats[k.UNIT_BYTES] = unit_bytes
    floats[k.OPPORTUNITY_BYTES] = PACKET_BYTES * shape.scale
    ws, we = outage_windows(spec, horizon_s) if shape.varies else (empty, empty)
    ints = np.array([kind, 0, per_period], dtype=np.int64)
    return ints, floats, times, starts, mbps, cum, ws, we, draws.extra_packets, draws.jitter_s


def simulate_fast(spec: RunSpec) -> RunResult:
    """`spec` through the compiled recurrences; the trace window through SimPy."""
    analytic_s = analytic_time_s(spec.method, spec.costs, spec.uplink, spec.downlink, spec.batches_per_epoch,
                                 spec.epochs, spec.edge_has_gpu, spec.raw_upload)
    horizon_s = max(MIN_HORIZON_S, 2.0 * analytic_s)
    draws = link_draws(spec)
    while True:
        result = _run(spec, draws, horizon_s, analytic_s)
        if result is not None:
            return result
        horizon_s *= HORIZON_GROWTH


def _run(spec: RunSpec, draws: tuple[LinkDraws, LinkDraws | None], horizon_s: float,
         analytic_s: float) -> RunResult | None:
    """One try with the outages drawn to `horizon_s`; None if the run outlived it."""
    costs, method = spec.costs, spec.method
    n = spec.epochs * spec.batches_per_epoch
    up_bytes, down_bytes = uplink_payload_bytes(costs, method), downlink_payload_bytes(costs, method)
    up = link_arrays(spec.uplink, up_bytes, draws[0], horizon_s)
    prep_s, cloud_s = costs.edge_prep_s, cloud_train_s(costs, method)
    edge = k.EDGE_GPU if spec.edge_has_gpu else k.EDGE_CPU
    dropped, dropped_s = np.empty(0, dtype=np.int64), np.empty(0)
    busy_down, n_up, n_down, starts_s = 0.0, n, 0, (0.0,)
    if method == SPLIT_LEARNING:
        down = link_arrays(spec.downlink, down_bytes, draws[1], horizon_s)
        status, end_s, cloud_end, busy_up, busy_down, puts, departures = k.split(
            n, prep_s, split_edge_forward_s(costs), split_edge_backward_s(costs), cloud_s, up, down)
        # only a finished run's put and departure times are all written (np.empty's garbage may hold NaN)
        max_backlog, n_down = (k.peak_level(puts, departures) if status == k.OK else 0), n
        edge_s = (split_edge_forward_s(costs) + split_edge_backward_s(costs)) * n
    elif method == HIERARCHICAL and spec.drop_policy is not None:
        status, end_s, cloud_end, busy_up, max_backlog, puts, departures, dropped, dropped_s = k.drop(
            n, spec.uplink_buffer_batches, spec.drop_policy == "drop_newest", edge, prep_s,
            hierarchical_edge_train_s(costs), cloud_s, up)
        n_up = n - len(dropped)
        edge_s = hierarchical_edge_train_s(costs) * n
    elif method == HIERARCHICAL or spec.raw_upload == "every_epoch":
        hierarchical = method == HIERARCHICAL
        train_s = hierarchical_edge_train_s(costs) if hierarchical else 0.0
        status, end_s, cloud_end, busy_up, max_backlog, puts, departures = k.block(
            n, spec.uplink_buffer_batches, edge if hierarchical else k.EDGE_NONE, prep_s, train_s, cloud_s, True,
            up)
        edge_s = train_s * n
    else:  # full_cloud uploading once, then training from storage
        n_up = spec.batches_per_epoch
        status, upload_end_s, _, busy_up, max_backlog, puts, departures = k.block(
            n_up, spec.uplink_buffer_batches, k.EDGE_NONE, 0.0, 0.0, 0.0, False, up)
        cloud_end = k.stored(n, upload_end_s, cloud_s) if status == k.OK else None
        starts_s = (0.0, upload_end_s)
        end_s = cloud_end[-1] if status == k.OK else 0.0
        edge_s = 0.0
    if status == k.NEED_HORIZON:
        return None
    if method == FULL_CLOUD:
        prep_total_s = edge_s = 0.0
    else:
        prep_total_s = prep_s * n
        edge_s += 0.0 if spec.edge_has_gpu else prep_total_s
    trace, backlog = trace_window(spec, starts_s)
    bytes_up = n_up * up_bytes
    return RunResult(
        total_time_s=float(end_s),
        analytic_time_s=analytic_s,
        bytes_up=bytes_up,
        bytes_down=n_down * down_bytes,
        raw_bytes_sent=bytes_up if method == FULL_CLOUD else 0,
        edge_busy_s=edge_s,
        edge_cpu_busy_s=prep_total_s if spec.edge_has_gpu else edge_s,
        uplink_busy_s=float(busy_up),
        downlink_busy_s=float(busy_down),
        cloud_busy_s=cloud_s * len(cloud_end),
        max_uplink_backlog=int(max_backlog),
        edge_batches_trained=0 if method == FULL_CLOUD else n,
        cloud_batches_trained=len(cloud_end),
        batches_dropped=len(dropped),
        dropped_batches=tuple(sorted(int(b) for b in dropped)),
        epoch_end_s=epoch_ends(cloud_end, np.sort(dropped), spec),
        trace=trace,
        backlog_trace=backlog,
        fast_forwarded=False,
        engine="fast",
        **worst_stall(spec, float(end_s), puts, departures, dropped, dropped_s),
    )


def epoch_ends(cloud_end: np.ndarray, dropped: np.ndarray, spec: RunSpec) -> tuple[float, ...]:
    """When the cloud finished the last batch it trained of each epoch (nan if none), as
    `sim.engine.trained_end_s`."""
    last = (np.arange(spec.epochs) + 1) * spec.batches_per_epoch - 1
    position = last - np.searchsorted(dropped, last, side="right")
    return tuple(float(cloud_end[p]) if p >= 0 else math.nan for p in position)


def worst_stall(spec: RunSpec, end_s: float, puts: np.ndarray, departures: np.ndarray, dropped: np.ndarray,
                dropped_s: np.ndarray) -> dict:
    """The uplink's longest stall before `end_s`, with the backlog and drops around it, as
    `sim.engine.worst_stall` reports them (`puts`, `departures`: the sorted times the backlog rose
    and fell; the level at each instant counts all of that instant's events)."""
    if not spec.uplink.shape.varies:
        return {}
    stalls = LinkClock(spec.uplink.rate_mbps, spec.uplink.shape).stalls_until(end_s)
    if not stalls:
        return {}
    start_s, stop_s = max(stalls, key=lambda s: s[1] - s[0])
    low, high = start_s - STALL_BEFORE_S, stop_s + STALL_AFTER_S

    def level(times: np.ndarray, side: str) -> np.ndarray:
        return np.searchsorted(puts, times, side) - np.searchsorted(departures, times, side)

    window = [a[(a >= low) & (a <= high)] for a in (puts, departures)]
    times = np.unique(np.concatenate(window))
    backlog = tuple(zip(times.tolist(), level(times, "right").tolist()))
    if (puts.size and puts[0] < low) or (departures.size and departures[0] < low):  # the level it opens with
        backlog = ((low, int(level(np.array([low]), "left")[0])), *backlog)
    drops = tuple((float(t), int(b)) for t, b in zip(dropped_s, dropped) if low <= t <= high)
    return {"worst_stall_s": (start_s, stop_s), "stall_backlog": backlog, "stall_drops": drops}


def compile_kernels() -> None:
    """Compile every kernel, or load it from Numba's on-disk cache (`engines/__pycache__`): once in
    the parent before worker processes start, so that they do not each compile (~20 s here)."""
    costs = BatchCosts(1, *([0.001] * 14), 1000, 1000, 1000, 1)
    link = LinkSpec(1.0)
    for method, policy in (("hierarchical", "block"), ("hierarchical", "drop_oldest"), ("split_learning", "block"),
                           ("full_cloud", "block")):
        simulate_fast(RunSpec(method, costs, link, link, 2, 1, uplink_buffer_policy=policy, trace_batches=0))
