"""The random draws of one link over one phase, drawn up front and indexed by batch.

Both engines (`sim.network.Link` and `engines.fast`) read the same arrays, so a run's jitter
and loss are common random numbers: the two engines can be compared run for run, and a batch
that is dropped before it reaches the wire simply leaves its draws unused.

From the link's generator, in this order:

    extra_packets[b]  NegativeBinomial(ceil(payload_bytes / mtu_bytes), 1 - loss_rate): the packets
                      resent until each of batch b's got through (all 0 without loss)
    jitter_s[b]       Exponential(mean jitter_ms / 1000): batch b's extra propagation delay
                      (empty without jitter: every batch 0)
"""
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class LinkDraws:
    """Per-batch draws of one link: `extra_packets` (int64) and `jitter_s` (float64), n_batches each,
    or empty where the link has no loss or no jitter (a deterministic run of 10^11 batches needs none)."""

    extra_packets: np.ndarray
    jitter_s: np.ndarray

    @classmethod
    def empty(cls) -> "LinkDraws":
        """No draws: every payload 0 extra packets and 0 jitter (a link without loss or jitter)."""
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0))

    def extra(self, batch: int) -> int:
        return int(self.extra_packets[batch]) if self.extra_packets.size else 0

    def jitter(self, batch: int) -> float:
        return float(self.jitter_s[batch]) if self.jitter_s.size else 0.0


def draw_link(packets: int, loss_rate: float, jitter_ms: float, n_batches: int,
              rng: np.random.Generator) -> LinkDraws:
    """The loss and jitter draws of `n_batches` payloads of `packets` packets each."""
    if loss_rate > 0 and packets > 0:
        extra = rng.negative_binomial(packets, 1 - loss_rate, size=n_batches)
    else:
        extra = np.zeros(0, dtype=np.int64)
    if jitter_ms > 0:
        jitter = rng.exponential(jitter_ms / 1e3, size=n_batches)
    else:
        jitter = np.zeros(0)
    return LinkDraws(extra.astype(np.int64, copy=False), jitter)


def link_rngs(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """The uplink's and the downlink's generators of a run with `seed`."""
    uplink, downlink = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    return uplink, downlink
