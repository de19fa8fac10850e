"""A network link (the uplink or the downlink) as a FIFO server followed by a pure delay.

    sender --send()--> buffer (capacity K batches, the one on the wire included)
           --transmit--> serialisation: bytes*8 / (rate_mbps*1e6) s, plus retransmissions
           --propagate--> delivered (unbounded) --> receiver

A payload leaves the buffer when its last bit is on the wire. It then propagates for
latency_ms plus an exponential jitter draw (mean jitter_ms) while the link already sends
the next one; deliveries stay in order:

    delivery_s = max(previous delivery_s, send_end_s + latency_ms/1000 + jitter_s)

Loss: a payload is ceil(bytes/mtu) packets; the extra packets needed until each got through
is one NegativeBinomial(packets, 1 - loss_rate) draw. Each extra packet holds the link for
its serialisation (min(mtu, payload) bytes) plus retransmit_timeout_ms of idle wait. Busy
time counts bits on the wire only; `bytes` counts each payload once.
"""
import math

import numpy as np
import simpy

from ..core.names import PROPAGATE, SEND
from ..costmodel.costs import LinkSpec, packet_count, serialisation_time_s
from .recorder import Recorder


class Link:
    """One direction of the network, named "uplink" or "downlink"; runs `transmit` and `propagate`."""

    def __init__(self, env: simpy.Environment, name: str, spec: LinkSpec, rng: np.random.Generator,
                 recorder: Recorder, buffer_batches: float = math.inf):
        self.env = env
        self.name = name
        self.spec = spec
        self.rng = rng
        self.recorder = recorder
        self.buffer = simpy.Container(env, capacity=buffer_batches)  # blocks the sender when full
        self.backlog = 0  # batches queued or on the wire (the buffer's level, counted where it changes)
        self.queue = simpy.Store(env)  # (batch, payload_bytes) waiting for the wire, FIFO
        self.in_flight = simpy.Store(env)  # (batch, send_end_s, delivery_s), in delivery order
        self.delivered = simpy.Store(env)  # batch numbers that reached the receiver
        self.last_delivery_s = env.now
        self.send_log = recorder.log(name, SEND)
        self.propagate_log = recorder.log(name, PROPAGATE)
        env.process(self.transmit())
        env.process(self.propagate())

    def send(self, batch: int, payload_bytes: int):
        """Sender side (use with `yield from`): wait for room in the buffer, then queue the payload."""
        yield self.buffer.put(1)
        self.backlog += 1
        self.recorder.note_backlog(self.name, batch, self.backlog)
        self.queue.put((batch, payload_bytes))

    def wire_time_s(self, payload_bytes: int) -> tuple[float, float]:
        """(seconds the link is held, seconds of bits on the wire) for one payload, loss included."""
        wire_s = serialisation_time_s(payload_bytes, self.spec)
        if self.spec.loss_rate == 0 or payload_bytes == 0:
            return wire_s, wire_s
        extra = int(self.rng.negative_binomial(packet_count(payload_bytes, self.spec), 1 - self.spec.loss_rate))
        resend_s = extra * serialisation_time_s(min(self.spec.mtu_bytes, payload_bytes), self.spec)
        return wire_s + resend_s + extra * self.spec.retransmit_timeout_ms / 1e3, wire_s + resend_s

    def transmit(self):
        """Serialise queued payloads one at a time, in order."""
        while True:
            batch, payload_bytes = yield self.queue.get()
            start_s = self.env.now
            held_s, busy_s = self.wire_time_s(payload_bytes)
            yield self.env.timeout(held_s)
            self.backlog -= 1
            self.recorder.note_backlog(self.name, batch, self.backlog)
            yield self.buffer.get(1)  # room for the sender
            self.send_log.add(batch, start_s, self.env.now, busy_s, payload_bytes)
            jitter_s = self.rng.exponential(self.spec.jitter_ms / 1e3) if self.spec.jitter_ms > 0 else 0.0
            arrival_s = self.env.now + self.spec.latency_ms / 1e3 + jitter_s
            self.last_delivery_s = max(self.last_delivery_s, arrival_s)
            self.in_flight.put((batch, self.env.now, self.last_delivery_s))

    def propagate(self):
        """Hand each payload to the receiver at its delivery time."""
        while True:
            batch, sent_s, delivery_s = yield self.in_flight.get()
            yield self.env.timeout(max(0.0, delivery_s - self.env.now))  # >= 0 despite rounding
            self.propagate_log.add(batch, sent_s, delivery_s)
            self.delivered.put(batch)
