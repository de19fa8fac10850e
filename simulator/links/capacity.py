"""When a payload has left a link whose capacity varies: a measured trace, outages, or both.

The rule, exact and shared by the simulation (`sim.network.Link`) and the emulation's paced
channel, for a payload of B bytes that starts at time t (simulated seconds since the run began;
trace time is t + offset_s):

- Mahimahi trace, scaled by s: each delivery opportunity carries s x 1500 bytes. The payload
  uses the next ceil(B / (s x 1500)) *unused* opportunities at or after t - each carries at
  most one packet, so the ones a payload used are gone for the next - skipping those inside an
  outage window. It has left the link at the last of them.
- Rate trace (CSV) or constant rate r, scaled by s: a fluid; the payload's 8B bits flow at
  s x r(t), nothing inside an outage window; it has left when the last bit has.

It arrives latency_ms later (plus jitter, as for any link). With loss, the extra packets are
sent after the payload's own (further opportunities, or further bits), and the link then
idles extra x retransmit_timeout_ms, as for a constant-rate link.
"""
import itertools
import math
from dataclasses import dataclass

import numpy as np

from .outages import OutageSchedule, merge
from .traces import PACKET_BYTES, PacketTrace, RateTrace, load_trace

STALL_MIN_S = 1.0  # a gap between a trace's opportunities longer than this counts as an outage


@dataclass(frozen=True)
class LinkShape:
    """How one link's capacity varies: a trace file (None: the constant rate), its scale, where
    in the trace the run starts, and outage windows (shared by both links of a run)."""

    trace: str | None = None  # path of a Mahimahi or time_s,mbps trace
    scale: float = 1.0  # multiplies the trace's capacity
    offset_s: float = 0.0  # trace time at the run's t = 0
    outages: tuple[tuple[float, float], ...] = ()  # (start_s, duration_s), simulated time
    outage_model: tuple[float, float] | None = None  # (mean_up_s, mean_down_s), Gilbert-Elliott
    outage_seed: int = 0

    @property
    def varies(self) -> bool:
        return self.trace is not None or bool(self.outages) or self.outage_model is not None


class LinkClock:
    """Transfer end times of one link, payload after payload (it remembers the opportunities used)."""

    def __init__(self, rate_mbps: float, shape: LinkShape):
        self.rate_bps = rate_mbps * 1e6  # the constant rate when there is no trace
        self.shape = shape
        self.trace = load_trace(shape.trace) if shape.trace else None
        self.offset_s = shape.offset_s
        self.scale = shape.scale
        mean_up_s, mean_down_s = shape.outage_model or (None, None)
        self.outages = OutageSchedule(shape.outages, mean_up_s, mean_down_s, shape.outage_seed)
        self.next_index = 0  # first unused opportunity (Mahimahi)

    def send_end_s(self, start_s: float, payload_bytes: int, extra_bytes: int = 0) -> float:
        """When a payload that starts at `start_s` has left the link (`extra_bytes`: resent packets)."""
        if isinstance(self.trace, PacketTrace):
            opportunity_bytes = PACKET_BYTES * self.scale
            packets = math.ceil(payload_bytes / opportunity_bytes) + math.ceil(extra_bytes / opportunity_bytes)
            return self._packets_end_s(start_s, packets)
        return self._fluid_end_s(start_s, 8.0 * (payload_bytes + extra_bytes))

    # ---- Mahimahi: count opportunities ---------------------------------------------------------
    def _index_at(self, time_s: float) -> int:
        return self.trace.first_at_or_after((time_s + self.offset_s) * 1e3)

    def _time_s(self, index: int) -> float:
        return self.trace.time_ms(index) / 1e3 - self.offset_s

    def _packets_end_s(self, start_s: float, packets: int) -> float:
        if packets <= 0:
            return start_s
        index = max(self.next_index, self._index_at(start_s))
        while True:
            at_s = self._time_s(index)
            window = self.outages.next_window(at_s)
            if window is not None and window[0] <= at_s:  # this opportunity falls in an outage: skip it
                index = max(index + 1, self._index_at(window[1]))  # +1: one within 1e-9 s of the end
                continue
            # this opportunity precedes the outage, so it is usable even where rounding puts the
            # outage's first index at or before it (a window start within an ulp of the opportunity)
            usable = math.inf if window is None else max(1, self._index_at(window[0]) - index)
            if usable >= packets:
                last = index + packets - 1
                self.next_index = last + 1
                return self._time_s(last)
            packets -= usable
            index = max(index + usable, self._index_at(window[1]))

    # ---- fluid: constant rate or rate trace -----------------------------------------------------
    def _bits_until(self, time_s: float) -> float:
        return self.scale * self.trace.bits_until(time_s + self.offset_s)

    def _time_of_bits(self, bits: float) -> float:
        return self.trace.time_of_bits(bits / self.scale) - self.offset_s

    def _fluid_end_s(self, start_s: float, bits: float) -> float:
        time_s = start_s
        while True:
            if bits <= 0:
                return time_s
            window = self.outages.next_window(time_s)
            if window is not None and window[0] <= time_s:
                time_s = window[1]
                continue
            if self.trace is None:  # constant rate: written so that no outage gives t + bits / rate exactly
                end_s = time_s + bits / self.rate_bps
                if window is None or end_s <= window[0]:
                    return end_s
                bits -= (window[0] - time_s) * self.rate_bps
            else:
                target = self._bits_until(time_s) + bits
                end_s = self._time_of_bits(target)
                if window is None or end_s <= window[0]:
                    return end_s
                bits = target - self._bits_until(window[0])
            time_s = window[1]

    # ---- what a report shows ---------------------------------------------------------------------
    def stalls_until(self, until_s: float) -> list[tuple[float, float]]:
        """Windows of simulated time in [0, until_s) with no capacity: outages, and a trace's gaps
        longer than STALL_MIN_S, sorted; overlapping ones merged (two gaps around a single
        opportunity stay two)."""
        windows = list(self.outages.windows_until(until_s))
        if self.trace is not None:
            windows += [(start, end) for start, end in trace_gaps(self.trace, self.offset_s, until_s)]
        windows.sort()
        return list(merge(windows, touching=False))


def trace_gaps(trace: PacketTrace | RateTrace, offset_s: float, until_s: float,
               min_gap_s: float = STALL_MIN_S) -> list[tuple[float, float]]:
    """The trace's gaps (no opportunity, or rate 0) longer than `min_gap_s`, in simulated time [0, until_s)."""
    if isinstance(trace, PacketTrace):
        times_s = [t / 1e3 for t in trace.times_ms]
        one_period = [(a, b) for a, b in itertools.pairwise(times_s) if b - a > min_gap_s]
        wrap = trace.period_s + times_s[0] - times_s[-1]  # from the last opportunity to the next period's first
        if wrap > min_gap_s:
            one_period.append((times_s[-1], trace.period_s + times_s[0]))
    else:
        one_period, start = [], None
        ends = (*trace.starts_s[1:], trace.period_s)
        for begin, end, rate in zip(trace.starts_s, ends, trace.mbps):
            if rate == 0 and start is None:
                start = begin
            if rate > 0 and start is not None:
                one_period.append((start, begin))
                start = None
        if start is not None:
            one_period.append((start, trace.period_s))
        one_period = [(a, b) for a, b in one_period if b - a > min_gap_s]
    if not one_period:
        return []
    starts, ends = (np.array(column) for column in zip(*one_period))
    first = math.floor(offset_s / trace.period_s) - 1
    cycles = np.arange(first, max(first + 1, math.ceil((until_s + offset_s) / trace.period_s) + 1), dtype=np.float64)
    starts = (cycles[:, None] * trace.period_s + starts[None, :] - offset_s).ravel()
    ends = (cycles[:, None] * trace.period_s + ends[None, :] - offset_s).ravel()
    keep = (ends > 0) & (starts < until_s)
    return list(zip(np.maximum(starts[keep], 0.0).tolist(), ends[keep].tolist()))
