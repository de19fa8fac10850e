"""Application-level pacing of one link direction, mirroring the simulator's `Link` exactly.

    sender --send()--> buffer (capacity K batches, the one on the wire included)
           --transmit--> sleeps until the payload has left the link (below)
           --propagate--> holds each payload until send_end + latency_ms/1000, in order,
                          then hands it to the real gloo send

with delivery_s = max(previous delivery_s, send_end_s + latency_s), as in `sim/network.py`.
A payload that starts on the wire at `start_s` has left it at

    constant rate     start_s + charged_bytes*8 / (rate_mbps*1e6)
    trace or outages  clock.send_end_s(start_s - run_start_s, charged_bytes) + run_start_s

where `clock` is the `links.capacity.LinkClock` of the run's own `LinkSpec` (the simulated
run's trace, scale, offset and outage windows; `link_clock`) and `run_start_s` the run's
t = 0 on this process's clock (`start`): the very rule the simulation follows, opportunity
by opportunity. The serialisation is charged for the bytes the simulator charges
(`costs.uplink_payload_bytes`), whatever the frame header adds. Times are kept on a virtual
timeline in this process's clock (`time.perf_counter`): a payload starts on the wire at
max(when it was queued, when the previous one left the wire), so a thread that wakes late
does not stretch the link. The receiver learns each arrival when gloo hands it the frame, on
its own clock, so this also works across two machines whose clocks are not synchronised;
the real wire time (on loopback about 0.2 ms per frame) comes on top and is measured as `late_s`.

When the buffer is full, `policy` decides, as `sim.network.Link.send` does:

    block        the sender waits for room
    drop_oldest  the oldest payload still waiting (not the one on the wire) is discarded and
                 the new one queued; with none waiting, the new one is discarded
    drop_newest  the new payload is discarded

so under drop_* the sender never waits; `dropped` counts the discarded payloads (their batch
numbers in `dropped_batches`).

If the real send fails (the peer died or the network dropped), the link goes down: it
records why, discards what is queued (`lost`), and `send` stops blocking, so a hierarchical
edge goes on training.
"""
import collections
import math
import threading
import time
from collections.abc import Callable

from ..costmodel.costs import LinkSpec
from ..links.capacity import LinkClock
from ..sim.network import BUFFER_POLICIES
from .channel import Frame, LinkLost


def sleep_until(deadline_s: float) -> None:
    """Sleep until time.perf_counter() reaches `deadline_s` (returns at once if it has)."""
    left_s = deadline_s - time.perf_counter()
    if left_s > 0:
        time.sleep(left_s)


def link_clock(spec: LinkSpec) -> LinkClock | None:
    """The transfer-end rule of a link that follows a trace or has outages (None at a constant
    rate without outages: the plain formula then, as in the simulator)."""
    return LinkClock(spec.rate_mbps, spec.shape) if spec.shape.varies else None


def stall_allowance_s(specs: list[LinkSpec], horizon_s: float) -> float:
    """Seconds the links carry nothing in [0, horizon_s): outages, and trace gaps > 1 s (sum over
    the links). A receiver's wait for the next payload is bounded by its timeout plus this."""
    clocks = [clock for clock in map(link_clock, specs) if clock is not None]
    return sum(end - start for clock in clocks for start, end in clock.stalls_until(horizon_s))


class PacedLink:
    """One direction (uplink or downlink) between the workers, paced at `rate_mbps` (or by
    `clock`) with a one-way `latency_ms`, a FIFO buffer of `buffer_batches` (None: unbounded,
    as the simulator's downlink) under `policy`, delivering through `deliver(frame)` (the real send)."""

    def __init__(self, name: str, deliver: Callable[[Frame], None], rate_mbps: float, latency_ms: float,
                 buffer_batches: int | None, clock: LinkClock | None = None, policy: str = "block"):
        if not rate_mbps > 0:
            raise ValueError(f"rate_mbps must be positive, got {rate_mbps!r}")
        if policy not in BUFFER_POLICIES:
            raise ValueError(f"unknown buffer policy {policy!r}; valid: {', '.join(BUFFER_POLICIES)}")
        self.name, self.deliver = name, deliver
        self.rate_bps, self.latency_s = rate_mbps * 1e6, latency_ms / 1e3
        self.clock, self.policy = clock, policy
        self.run_start_s = time.perf_counter()  # the clock's t = 0; `start` sets the run's
        self.capacity = buffer_batches if buffer_batches is not None else math.inf
        blocking = buffer_batches is not None and policy == "block"
        self.slots = threading.Semaphore(buffer_batches) if blocking else None
        self.waiting: collections.deque = collections.deque()  # (frame, charged_bytes, queued_s), not yet on the wire
        self.delay_line: collections.deque = collections.deque()  # (frame, delivery_s) propagating, in order
        self.lock = threading.Condition()  # guards the counters and both deques; notified when either grows
        self.error: str | None = None  # why the link went down
        self.backlog = self.max_backlog = 0  # batches in the buffer, the one on the wire included
        self.wire_end_s = math.inf  # when the payload on the wire leaves it (inf: none on it)
        self.delivered = self.dropped = self.lost = 0  # dropped: by the policy; lost: the link was down
        self.dropped_batches: list[int] = []
        self.bytes_charged = 0
        self.late_s = 0.0  # sum over deliveries of (real hand-over end - scheduled delivery)
        self.threads = [threading.Thread(target=self.transmit, daemon=True, name=f"{name}-transmit"),
                        threading.Thread(target=self.propagate, daemon=True, name=f"{name}-propagate")]
        for thread in self.threads:
            thread.start()

    @property
    def down(self) -> bool:
        return self.error is not None

    def start(self, run_start_s: float) -> None:
        """The run begins at `run_start_s` (time.perf_counter()): t = 0 of the trace and outages."""
        self.run_start_s = run_start_s

    def send(self, frame: Frame, charged_bytes: int) -> bool:
        """Queue a payload; under `block`, wait for room in the buffer while the link is up.
        False if the payload was not queued: the link is down (counted in `lost`), or the
        buffer was full under drop_newest (counted in `dropped`)."""
        if self.slots is not None:
            while not self.slots.acquire(timeout=0.05):
                if self.down:
                    break
        with self.lock:
            if self.down:
                self.lost += 1
                return False
            # On the virtual timeline the transmit thread may be behind: the payload on the wire may
            # have left it already, and then (or with none on it) the first waiting one is on the wire.
            on_wire = self.backlog - len(self.waiting)  # 0 or 1 taken by the transmit thread
            left = on_wire == 1 and time.perf_counter() >= self.wire_end_s
            first = 1 if left or (on_wire == 0 and self.waiting) else 0  # the oldest one really waiting
            if self.backlog - left >= self.capacity:  # full: only under drop_* (block waited for room)
                if self.policy == "drop_newest" or len(self.waiting) <= first:
                    self._drop(frame)
                    return False
                oldest = self.waiting[first][0]
                del self.waiting[first]
                self._drop(oldest)
            else:
                self.backlog += 1
                self.max_backlog = max(self.max_backlog, self.backlog - left)
            self.waiting.append((frame, charged_bytes, time.perf_counter()))
            self.lock.notify_all()
        return True

    def _drop(self, frame: Frame) -> None:
        self.dropped += 1
        self.dropped_batches.append(frame.batch)

    def _take(self, line: collections.deque):
        with self.lock:
            while not line:
                self.lock.wait()
            return line.popleft()

    def send_end_s(self, start_s: float, charged_bytes: int) -> float:
        """When a payload that starts on the wire at `start_s` (time.perf_counter()) has left it."""
        if self.clock is None:
            return start_s + charged_bytes * 8 / self.rate_bps
        return self.clock.send_end_s(start_s - self.run_start_s, charged_bytes) + self.run_start_s

    def transmit(self) -> None:
        """Serialise queued payloads one at a time, in order, on the virtual timeline."""
        wire_free_s, last_delivery_s = -math.inf, -math.inf
        while (item := self._take(self.waiting)) is not None:
            frame, charged_bytes, queued_s = item
            end_s = self.send_end_s(max(queued_s, wire_free_s), charged_bytes)
            with self.lock:
                self.wire_end_s = end_s
            sleep_until(end_s)
            wire_free_s = end_s
            with self.lock:
                self.backlog -= 1
                self.wire_end_s = math.inf
                self.bytes_charged += charged_bytes
            if self.slots is not None:
                self.slots.release()  # room for the sender
            last_delivery_s = max(last_delivery_s, end_s + self.latency_s)
            with self.lock:
                self.delay_line.append((frame, last_delivery_s))
                self.lock.notify_all()
        with self.lock:
            self.delay_line.append(None)
            self.lock.notify_all()

    def propagate(self) -> None:
        """Hold each payload until its delivery time, then really send it."""
        while (item := self._take(self.delay_line)) is not None:
            frame, delivery_s = item
            if self.down:
                with self.lock:
                    self.lost += 1
                continue
            sleep_until(delivery_s)
            try:
                self.deliver(frame)
            except LinkLost as exc:
                with self.lock:
                    self.error, self.lost = f"{self.name} lost: {exc}", self.lost + 1
                continue
            with self.lock:
                self.delivered += 1
                self.late_s += time.perf_counter() - delivery_s

    def close(self, timeout_s: float) -> bool:
        """Deliver everything queued, then stop; True if all of it got through within `timeout_s`."""
        with self.lock:
            self.waiting.append(None)
            self.lock.notify_all()
        deadline = time.monotonic() + timeout_s
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        finished = not any(thread.is_alive() for thread in self.threads)
        if not finished and self.error is None:
            self.error = f"{self.name}: not delivered within {timeout_s:g} s"
        return finished and not self.down
