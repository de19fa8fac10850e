"""The Link on its own: FIFO serialisation, pure-delay latency, in-order jitter, loss."""
import numpy as np
import pytest
import simpy

from simulator.costmodel import LinkSpec
from simulator.costmodel.costs import packet_count
from simulator.links.draws import draw_link
from simulator.sim.network import Link
from simulator.sim.recorder import Recorder

SEND, PROPAGATE = ("uplink", "send"), ("uplink", "propagate")


def send_all(spec: LinkSpec, payloads: list[int], seed: int = 0, buffer_batches: int = 1) -> Recorder:
    """Queue `payloads` on an uplink as fast as its buffer allows; return what it recorded."""
    env = simpy.Environment()
    recorder = Recorder(env, len(payloads), ((SEND, PROPAGATE),), buffer_batches, trace_batches=len(payloads),
                        fast_forward=False)
    draws = draw_link(packet_count(payloads[0], spec), spec.loss_rate, spec.jitter_ms, len(payloads),
                      np.random.default_rng(seed))  # every payload as many packets as the first
    link = Link(env, "uplink", spec, draws, recorder, buffer_batches)

    def sender():
        for batch, payload_bytes in enumerate(payloads):
            yield from link.send(batch, payload_bytes)

    env.process(sender())
    env.run(until=recorder.done)
    return recorder


def test_serialises_back_to_back_and_propagates_in_parallel():
    recorder = send_all(LinkSpec(rate_mbps=1.0, latency_ms=50.0), [1000, 2000, 500])
    sends, hops = recorder.stages[SEND], recorder.stages[PROPAGATE]
    assert sends.start_s == pytest.approx([0.0, 0.008, 0.024])
    assert sends.end_s == pytest.approx([0.008, 0.024, 0.028])
    assert hops.end_s == pytest.approx([0.058, 0.074, 0.078])  # the link sends on while payloads travel
    assert recorder.bytes_sent("uplink") == 3500
    assert recorder.busy_s("uplink") == pytest.approx(0.028)


def test_jitter_is_exponential_and_deliveries_stay_in_order():
    spec = LinkSpec(rate_mbps=10.0, latency_ms=5.0, jitter_ms=20.0)  # 1000 bytes: 0.8 ms, much less than the jitter
    recorder = send_all(spec, [1000] * 50, seed=7)
    send_end_s = np.array(recorder.stages[SEND].end_s)
    draws_s = np.random.default_rng(7).exponential(0.020, size=50)  # the link's own draws, in send order
    expected_s = np.maximum.accumulate(send_end_s + 0.005 + draws_s)
    assert recorder.stages[PROPAGATE].end_s == pytest.approx(list(expected_s))
    assert np.any(expected_s > send_end_s + 0.005 + draws_s)  # some payload waited for an earlier one


def test_lost_packets_are_resent_after_the_timeout():
    spec = LinkSpec(rate_mbps=1.0, loss_rate=0.3, mtu_bytes=100, retransmit_timeout_ms=10.0)
    recorder = send_all(spec, [1000, 1000, 1000], seed=3)
    extra = np.random.default_rng(3).negative_binomial(10, 0.7, size=3)  # 10 packets per payload
    assert extra.sum() > 0
    held_s = 0.008 + extra * (0.0008 + 0.010)  # each resent 100-byte packet: 0.8 ms + 10 ms idle
    sends = recorder.stages[SEND]
    assert np.diff([0.0] + sends.end_s) == pytest.approx(held_s)
    assert recorder.busy_s("uplink") == pytest.approx(3 * 0.008 + extra.sum() * 0.0008)  # bits on the wire only
    assert recorder.bytes_sent("uplink") == 3000  # each payload once


def test_buffer_limits_the_backlog():
    recorder = send_all(LinkSpec(rate_mbps=1.0), [1000] * 6, buffer_batches=3)
    assert recorder.max_backlog["uplink"] == 3
    assert recorder.backlog_trace["uplink"][:3] == [(0.0, 1), (0.0, 2), (0.0, 3)]
