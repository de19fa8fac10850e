"""A cell's uplink capacity shared by the edges that transmit at once (processor sharing).

`network.cell_uplink_mbps` = C bit/s is split among the active transmitters by max-min
fairness (water-filling): each gets the same share L, except a transmitter whose own link rate
r_i is below L, which sends at r_i and leaves the rest to the others:

    rate_i = min(r_i, L),  with L such that  sum_i min(r_i, L) = C   (or L = inf if sum_i r_i <= C)

With every own rate at or above C/N, N active edges each send at exactly C/N. A payload of b
bits that starts at t0 ends when the integral of its rate from t0 reaches b; rates change only
when a transfer starts or ends.

Transfers with the same own rate always have the same rate, so each such *class* keeps one
virtual clock V_c (bits a transfer of the class has sent since the class's time origin) and a
heap of the V_c at which its transfers end: an event costs O(classes x log transfers), flat in
the number of edges for a fleet of a few groups.
"""
import heapq
import itertools
import math

import simpy

FINISH_RTOL = 1e-12  # a transfer within this fraction of its bits of its end counts as ended (float rounding)


class _RateClass:
    """The active transfers whose own link rate is `cap_bps`."""

    def __init__(self, cap_bps: float):
        self.cap_bps = cap_bps
        self.virtual_bits = 0.0  # bits each transfer of the class has sent since the class began
        self.rate_bps = 0.0
        self.ends: list[tuple[float, int, simpy.Event]] = []  # (virtual_bits at its end, order, done)


class Cell:
    """Shared uplink capacity `capacity_bps`; `transfer` is one payload's time on it."""

    def __init__(self, env: simpy.Environment, capacity_bps: float):
        if not capacity_bps > 0:
            raise ValueError(f"the cell's capacity must be positive, got {capacity_bps!r} bit/s")
        self.env = env
        self.capacity_bps = capacity_bps
        self.classes: dict[float, _RateClass] = {}
        self.updated_s = env.now
        self.version = 0  # bumps at every change; a wake-up scheduled before it is stale
        self.order = itertools.count()

    def transfer(self, bits: float, cap_bps: float):
        """Send `bits` at most at `cap_bps` (this edge's own link), sharing the cell (use with
        `yield from`); returns when the last bit has left."""
        if bits <= 0:
            return
        self._advance()
        rate_class = self.classes.get(cap_bps)
        if rate_class is None:
            rate_class = self.classes[cap_bps] = _RateClass(cap_bps)
        done = self.env.event()
        heapq.heappush(rate_class.ends, (rate_class.virtual_bits + bits, next(self.order), done))
        self._reschedule()
        yield done

    def _advance(self) -> None:
        """Move every class's virtual clock to now at its current rate."""
        now = self.env.now
        elapsed_s = now - self.updated_s
        if elapsed_s > 0:
            for rate_class in self.classes.values():
                rate_class.virtual_bits += rate_class.rate_bps * elapsed_s
        self.updated_s = now

    def _share(self) -> None:
        """Water-filling: every active class's rate, min(cap, L)."""
        active = sorted((c for c in self.classes.values() if c.ends), key=lambda c: c.cap_bps)
        left_bps, left_n = self.capacity_bps, sum(len(c.ends) for c in active)
        for rate_class in active:
            level_bps = left_bps / left_n
            rate_class.rate_bps = min(rate_class.cap_bps, level_bps)
            left_bps -= rate_class.rate_bps * len(rate_class.ends)
            left_n -= len(rate_class.ends)

    def _ended(self, rate_class: _RateClass) -> bool:
        """Whether the class's next transfer has ended: its bits are sent to a float's rounding, or
        what is left would take less time than the clock can tell from now (late in a long run a
        wake-up of 1e-13 s would leave env.now where it is, and come round again for ever)."""
        end_bits = rate_class.ends[0][0]
        left_bits = end_bits - rate_class.virtual_bits
        now = self.env.now
        return left_bits <= FINISH_RTOL * max(1.0, end_bits) or \
            (rate_class.rate_bps > 0 and now + left_bits / rate_class.rate_bps <= now)

    def _reschedule(self) -> None:
        """Finish the transfers that have ended, share the capacity anew (until no other transfer
        has ended at the new rates) and wake at the next end."""
        ended = True
        while ended:
            ended = False
            for rate_class in list(self.classes.values()):
                while rate_class.ends and self._ended(rate_class):
                    heapq.heappop(rate_class.ends)[2].succeed()
                    ended = True
                if not rate_class.ends:
                    del self.classes[rate_class.cap_bps]  # its virtual clock restarts with its next transfer
            self._share()
        self.version += 1
        next_s = min((max(0.0, (c.ends[0][0] - c.virtual_bits) / c.rate_bps) for c in self.classes.values()),
                     default=math.inf)
        if next_s < math.inf:
            version = self.version
            self.env.timeout(next_s).callbacks.append(lambda _event: self._wake(version))

    def _wake(self, version: int) -> None:
        if version != self.version:
            return  # something started or ended since: a newer wake-up is scheduled
        self._advance()
        self._reschedule()
