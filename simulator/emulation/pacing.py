"""Application-level pacing of one link direction, mirroring the simulator's `Link` exactly.

    sender --send()--> buffer (capacity K batches, the one on the wire included; blocks when full)
           --transmit--> sleeps the serialisation: charged_bytes*8 / (rate_mbps*1e6) s
           --propagate--> holds each payload until send_end + latency_ms/1000, in order,
                          then hands it to the real gloo send

with delivery_s = max(previous delivery_s, send_end_s + latency_s), as in `sim/network.py`.
The serialisation is charged for the bytes the simulator charges (`costs.uplink_payload_bytes`),
whatever the frame header adds. Times are kept on a virtual timeline in this process's
clock (`time.perf_counter`): a payload starts serialising at max(when it was queued, when
the previous one left the wire), so a thread that wakes late does not stretch the link.
The receiver learns each arrival when gloo hands it the frame, on its own clock, so this
also works across two machines whose clocks are not synchronised; the real wire time (on
loopback about 0.2 ms per frame) comes on top and is measured as `late_s`.

If the real send fails (the peer died or the network dropped), the link goes down: it
records why, drops what is queued, and `send` stops blocking, so a hierarchical edge goes
on training.
"""
import math
import queue
import threading
import time
from collections.abc import Callable

from .channel import Frame, LinkLost


def sleep_until(deadline_s: float) -> None:
    """Sleep until time.perf_counter() reaches `deadline_s` (returns at once if it has)."""
    left_s = deadline_s - time.perf_counter()
    if left_s > 0:
        time.sleep(left_s)


class PacedLink:
    """One direction (uplink or downlink) between the workers, paced at `rate_mbps` with a
    one-way `latency_ms`, a FIFO buffer of `buffer_batches` (None: unbounded, as the
    simulator's downlink), delivering through `deliver(frame)` (the real send)."""

    def __init__(self, name: str, deliver: Callable[[Frame], None], rate_mbps: float, latency_ms: float,
                 buffer_batches: int | None):
        if not rate_mbps > 0:
            raise ValueError(f"rate_mbps must be positive, got {rate_mbps!r}")
        self.name, self.deliver = name, deliver
        self.rate_bps, self.latency_s = rate_mbps * 1e6, latency_ms / 1e3
        self.slots = threading.Semaphore(buffer_batches) if buffer_batches is not None else None
        self.queue: queue.Queue = queue.Queue()  # (frame, charged_bytes, queued_s) waiting for the wire
        self.delay_line: queue.Queue = queue.Queue()  # (frame, delivery_s) propagating, in order
        self.lock = threading.Lock()
        self.error: str | None = None  # why the link went down
        self.backlog = self.max_backlog = 0  # batches in the buffer, the one on the wire included
        self.delivered = self.dropped = 0
        self.bytes_charged = 0
        self.late_s = 0.0  # sum over deliveries of (real hand-over end - scheduled delivery)
        self.threads = [threading.Thread(target=self.transmit, daemon=True, name=f"{name}-transmit"),
                        threading.Thread(target=self.propagate, daemon=True, name=f"{name}-propagate")]
        for thread in self.threads:
            thread.start()

    @property
    def down(self) -> bool:
        return self.error is not None

    def send(self, frame: Frame, charged_bytes: int) -> bool:
        """Queue a payload; wait for room in the buffer while the link is up. False if the link
        is down (the payload is dropped and counted)."""
        if self.slots is not None:
            while not self.slots.acquire(timeout=0.05):
                if self.down:
                    break
        with self.lock:
            if self.down:
                self.dropped += 1
                return False
            self.backlog += 1
            self.max_backlog = max(self.max_backlog, self.backlog)
        self.queue.put((frame, charged_bytes, time.perf_counter()))
        return True

    def transmit(self) -> None:
        """Serialise queued payloads one at a time, in order, on the virtual timeline."""
        wire_free_s, last_delivery_s = -math.inf, -math.inf
        while (item := self.queue.get()) is not None:
            frame, charged_bytes, queued_s = item
            end_s = max(queued_s, wire_free_s) + charged_bytes * 8 / self.rate_bps
            sleep_until(end_s)
            wire_free_s = end_s
            with self.lock:
                self.backlog -= 1
                self.bytes_charged += charged_bytes
            if self.slots is not None:
                self.slots.release()  # room for the sender
            last_delivery_s = max(last_delivery_s, end_s + self.latency_s)
            self.delay_line.put((frame, last_delivery_s))
        self.delay_line.put(None)

    def propagate(self) -> None:
        """Hold each payload until its delivery time, then really send it."""
        while (item := self.delay_line.get()) is not None:
            frame, delivery_s = item
            if self.down:
                with self.lock:
                    self.dropped += 1
                continue
            sleep_until(delivery_s)
            try:
                self.deliver(frame)
            except LinkLost as exc:
                with self.lock:
                    self.error, self.dropped = f"{self.name} lost: {exc}", self.dropped + 1
                continue
            with self.lock:
                self.delivered += 1
                self.late_s += time.perf_counter() - delivery_s

    def close(self, timeout_s: float) -> bool:
        """Deliver everything queued, then stop; True if all of it got through within `timeout_s`."""
        self.queue.put(None)
        deadline = time.monotonic() + timeout_s
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        finished = not any(thread.is_alive() for thread in self.threads)
        if not finished and self.error is None:
            self.error = f"{self.name}: not delivered within {timeout_s:g} s"
        return finished and not self.down
