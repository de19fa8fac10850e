"""A network link (the uplink or the downlink) as a FIFO server followed by a pure delay.

    sender --send()--> buffer (capacity K batches, the one on the wire included)
           --transmit--> on the wire until the payload has left the link
           --propagate--> delivered (unbounded) --> receiver

Constant rate: a payload of P bytes is on the wire for P*8 / (rate_mbps*1e6) s. A measured
trace or outage windows (`LinkSpec.shape`) replace that by the exact rule of
`links.capacity`: the next unused delivery opportunities (Mahimahi) or the bits the rate
trace carries, none inside an outage. A payload leaves the buffer when it has left the link.
It then propagates for latency_ms plus an exponential jitter draw (mean jitter_ms) while the
link already sends the next one; deliveries stay in order:

    delivery_s = max(previous delivery_s, send_end_s + latency_ms/1000 + jitter_s)

Loss: a payload is ceil(bytes/mtu) packets; the extra packets needed until each got through
is one NegativeBinomial(packets, 1 - loss_rate) draw. The jitter and loss draws are made up
front, per batch (`links.draws`), so the fast engine reads the very same numbers. Each extra packet holds the link for
its serialisation (min(mtu, payload) bytes) plus retransmit_timeout_ms of idle wait. Busy
time counts the seconds the link is held for sending, timeouts excluded; `bytes` counts each
payload once.

When the buffer is full, the sender's `policy` decides (`BUFFER_POLICIES`):

    block        the sender waits for room (the behaviour of every method by default)
    drop_oldest  the oldest payload still waiting (not the one on the wire) is discarded and
                 the new one queued; with none waiting (K = 1), the new one is discarded
    drop_newest  the new payload is discarded

A discarded batch never reaches the receiver; the link lists it in `dropped`.

Fleets (`simulator.fleet`) add three things, all off by default:
- `cell`: a capacity shared with other edges' uplinks (`cell.Cell`, processor sharing);
  a payload's wire time is then the cell's, this link's rate being its cap;
- `receiver`: where a delivered payload goes (default: this link's `delivered` store), so many
  edges' uplinks can feed the cloud's one queue;
- control payloads: a negative batch number (an edge part's weights, handed over or averaged)
  uses no jitter or loss draw and is never dropped by the buffer policy.
"""
import math
from array import array
from collections.abc import Callable

import simpy

from ..core.names import PROPAGATE, SEND
from ..costmodel.costs import LinkSpec, serialisation_time_s
from ..links.capacity import LinkClock
from ..links.draws import LinkDraws
from .cell import Cell
from .recorder import Recorder

BUFFER_POLICIES = ("block", "drop_oldest", "drop_newest")


class Link:
    """One direction of the network, named "uplink" or "downlink"; runs `transmit` and `propagate`."""

    def __init__(self, env: simpy.Environment, name: str, spec: LinkSpec, draws: LinkDraws,
                 recorder: Recorder, buffer_batches: float = math.inf, policy: str = "block",
                 keep_backlog: bool = False, cell: Cell | None = None, receiver: Callable[[int], None] | None = None):
        if policy not in BUFFER_POLICIES:
            raise ValueError(f"unknown buffer policy {policy!r}; valid: {', '.join(BUFFER_POLICIES)}")
        self.env = env
        self.name = name
        self.spec = spec
        self.draws = draws
        self.recorder = recorder
        self.policy = policy
        self.capacity = buffer_batches
        self.buffer = simpy.Container(env, capacity=buffer_batches)  # blocks the sender when full
        self.backlog = 0  # batches queued or on the wire (the buffer's level, counted where it changes)
        self.queue = simpy.Store(env)  # (batch, payload_bytes) waiting for the wire, FIFO
        self.in_flight = simpy.Store(env)  # (batch, send_end_s, delivery_s), in delivery order
        self.delivered = simpy.Store(env)  # batch numbers that reached the receiver
        self.last_delivery_s = env.now
        self.clock = LinkClock(spec.rate_mbps, spec.shape) if spec.shape.varies else None
        if cell is not None and self.clock is not None:
            raise ValueError("a link in a shared cell needs a constant rate (no trace, no outages)")
        self.cell = cell  # cell.Cell shared with other uplinks, or None
        self.cell_wait_s = 0.0  # seconds on the wire beyond what this link alone would take (the cell's share)
        self.receiver = receiver or self.delivered.put
        self.dropped: list[tuple[float, int]] = []  # (time_s, batch) of every discarded payload
        # every backlog change over the whole run, for the report's worst-outage figure
        self.keep_backlog = keep_backlog
        self.backlog_times_s, self.backlog_levels = array("d"), array("l")
        recorder.links[name] = self
        self.send_log = recorder.log(name, SEND)
        self.propagate_log = recorder.log(name, PROPAGATE)
        env.process(self.transmit())
        env.process(self.propagate())

    def _note_backlog(self, batch: int) -> None:
        self.recorder.note_backlog(self.name, batch, self.backlog)
        if self.keep_backlog:
            self.backlog_times_s.append(self.env.now)
            self.backlog_levels.append(self.backlog)

    def _drop(self, batch: int) -> None:
        self.dropped.append((self.env.now, batch))
        self.recorder.note_drop(batch)

    def send(self, batch: int, payload_bytes: int):
        """Sender side (use with `yield from`): queue the payload, waiting for room or dropping
        a payload by the policy when the buffer is full."""
        if self.policy != "block" and self.backlog >= self.capacity and batch >= 0:
            if self.policy == "drop_newest" or not self.queue.items:
                self._drop(batch)
                return
            waiting = [i for i, (b, _) in enumerate(self.queue.items) if b >= 0]  # weights are never dropped
            if not waiting:
                self._drop(batch)
                return
            oldest, _ = self.queue.items.pop(waiting[0])  # still waiting: never on the wire
            self._drop(oldest)
            self.queue.put((batch, payload_bytes))
            return
        yield self.buffer.put(1)
        self.backlog += 1
        self._note_backlog(batch)
        self.queue.put((batch, payload_bytes))

    def wire_time_s(self, payload_bytes: int, extra: int) -> tuple[float, float]:
        """(seconds the link is held, seconds of bits on the wire) for one payload at the constant
        rate, `extra` resent packets included."""
        wire_s = serialisation_time_s(payload_bytes, self.spec)
        if extra == 0:
            return wire_s, wire_s
        resend_s = extra * serialisation_time_s(min(self.spec.mtu_bytes, payload_bytes), self.spec)
        return wire_s + resend_s + extra * self.spec.retransmit_timeout_ms / 1e3, wire_s + resend_s

    def transmit(self):
        """Put queued payloads on the wire one at a time, in order."""
        while True:
            batch, payload_bytes = yield self.queue.get()
            start_s = self.env.now
            extra = self.draws.extra(batch) if batch >= 0 else 0
            resent_bytes = extra * min(self.spec.mtu_bytes, payload_bytes)
            if self.cell is not None:
                yield from self.cell.transfer((payload_bytes + resent_bytes) * 8, self.spec.rate_mbps * 1e6)
                busy_s = self.env.now - start_s
                alone_s = serialisation_time_s(payload_bytes + resent_bytes, self.spec)  # this link alone
                if busy_s - alone_s > 1e-9 * busy_s:  # more than float rounding: the cell held it back
                    self.cell_wait_s += busy_s - alone_s
                held_s = extra * self.spec.retransmit_timeout_ms / 1e3
            elif self.clock is None:
                held_s, busy_s = self.wire_time_s(payload_bytes, extra)
            else:
                # >= 0: an opportunity within 1e-9 s before the start counts as at it (float rounding)
                busy_s = max(0.0, self.clock.send_end_s(start_s, payload_bytes, resent_bytes) - start_s)
                held_s = busy_s + extra * self.spec.retransmit_timeout_ms / 1e3
            yield self.env.timeout(held_s)
            self.backlog -= 1
            self._note_backlog(batch)
            yield self.buffer.get(1)  # room for the sender
            self.send_log.add(batch, start_s, self.env.now, busy_s, payload_bytes)
            jitter_s = self.draws.jitter(batch) if batch >= 0 else 0.0
            arrival_s = self.env.now + self.spec.latency_ms / 1e3 + jitter_s
            self.last_delivery_s = max(self.last_delivery_s, arrival_s)
            self.in_flight.put((batch, self.env.now, self.last_delivery_s))

    def propagate(self):
        """Hand each payload to the receiver at its delivery time."""
        while True:
            batch, sent_s, delivery_s = yield self.in_flight.get()
            yield self.env.timeout(max(0.0, delivery_s - self.env.now))  # >= 0 despite rounding
            self.propagate_log.add(batch, sent_s, delivery_s)
            self.receiver(batch)
