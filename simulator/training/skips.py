"""The batches the cloud never trains on in hierarchical training, and their text form.

Under an uplink buffer policy (`drop_oldest` / `drop_newest`) the edge discards feature batches
that do not fit in the uplink buffer; the cloud never trains on them. Real training reproduces
this with a skip list: `skips[e][i]` is True when the cloud skips the proxy's training batch `i`
of epoch `e` (both 0-based).

Text form (`TrainingRun.cloud_skip`, part of the cache key), one bitmap per epoch:

    "" means that no batch is skipped (so a run without drops keeps the key of a plain run).
    Otherwise one field per epoch, fields joined by ".". A field is the epoch's P = batches per
    epoch bits read left to right (batch 0 first), 1 = skipped, zero-padded on the right to a
    multiple of 4 and written as ceil(P / 4) lowercase hex digits.

    P = 6, skips [[F, T, F, F, F, T], [F, F, F, F, F, F]] -> bits 010001|00, 000000|00 -> "44.00"

The text for a given skip list is unique: `encode_skips` writes "" when nothing is skipped,
lowercase digits and zero padding, and `canonical_skips` / `decode_skips` reject anything else
(except that an all-zero text means "" as well).

Proxy mapping (`proxy_skips`): a nearest-position mapping of the simulated run onto the proxy's
batches. The proxy trains E epochs of P batches where the simulation ran S epochs of B batches,
so the mapping goes by position in the run, not by epoch number, and keeps the drop fraction
when the proxy is shorter than the simulation:

    proxy step (e, i), k = e * P + i, sits at run fraction f = k / (E * P) and is skipped
    iff simulated batch floor(f * S * B) = (k * S * B) // (E * P) was dropped.

Simulated batch b (0-based over the whole run) is in simulated epoch b // B. It is a proxy: with
fewer proxy steps than simulated batches it samples one simulated batch per proxy step, so the
skipped fraction matches the dropped fraction on average, not exactly.
"""
from collections.abc import Iterable

import numpy as np

FIELD_SEPARATOR = "."
HEX_DIGITS = frozenset("0123456789abcdef")
BITS_PER_DIGIT = 4


def _digits(batches_per_epoch: int) -> int:
    return -(-batches_per_epoch // BITS_PER_DIGIT)


def _fields(text: str, epochs: int) -> list[str]:
    """The text's per-epoch fields, checked for syntax: `epochs` fields of lowercase hex digits, all
    of one width."""
    fields = text.split(FIELD_SEPARATOR)
    if len(fields) != epochs:
        raise ValueError(f"cloud skip text has {len(fields)} epoch fields separated by {FIELD_SEPARATOR!r}, "
                         f"expected {epochs} (one per epoch)")
    for e, field in enumerate(fields):
        if not field or not set(field) <= HEX_DIGITS:
            raise ValueError(f"cloud skip text epoch {e}: {field[:40]!r} is not a non-empty run of "
                             "lowercase hex digits")
        if len(field) != len(fields[0]):
            raise ValueError(f"cloud skip text epoch {e} has {len(field)} hex digits, epoch 0 has {len(fields[0])}; "
                             "every epoch has the same number of batches")
    return fields


def encode_skips(skips: list[list[bool]]) -> str:
    """The text form of `skips` (one list per epoch, one flag per batch): "" when nothing is skipped."""
    if not skips or not skips[0]:
        raise ValueError("skips need at least one epoch of at least one batch")
    if any(len(epoch) != len(skips[0]) for epoch in skips):
        raise ValueError(f"skips have epochs of {sorted({len(epoch) for epoch in skips})} batches; "
                         "every epoch has the same number of batches")
    if not any(any(epoch) for epoch in skips):
        return ""
    fields = []
    for epoch in skips:
        bits = "".join("1" if skipped else "0" for skipped in epoch)
        bits += "0" * (_digits(len(bits)) * BITS_PER_DIGIT - len(bits))
        fields.append("".join(f"{int(bits[j:j + BITS_PER_DIGIT], 2):x}" for j in range(0, len(bits), BITS_PER_DIGIT)))
    return FIELD_SEPARATOR.join(fields)


def decode_skips(text: str, epochs: int, batches_per_epoch: int) -> list[list[bool]]:
    """`skips[e][i]` for `epochs` epochs of `batches_per_epoch` batches, from `encode_skips`' text."""
    if epochs < 1 or batches_per_epoch < 1:
        raise ValueError(f"cannot decode skips for {epochs} epochs of {batches_per_epoch} batches")
    if text == "":
        return [[False] * batches_per_epoch for _ in range(epochs)]
    fields = _fields(text, epochs)
    if len(fields[0]) != _digits(batches_per_epoch):
        raise ValueError(f"cloud skip text has {len(fields[0])} hex digits per epoch; {batches_per_epoch} batches "
                         f"per epoch need {_digits(batches_per_epoch)}")
    skips = []
    for e, field in enumerate(fields):
        bits = "".join(f"{int(digit, 16):04b}" for digit in field)
        if "1" in bits[batches_per_epoch:]:
            raise ValueError(f"cloud skip text epoch {e} marks a batch past the last of {batches_per_epoch}")
        skips.append([bit == "1" for bit in bits[:batches_per_epoch]])
    return skips


def canonical_skips(text: str, epochs: int) -> str:
    """`text` checked for syntax against `epochs` epochs, with an all-zero text (nothing skipped) made ""."""
    if text == "":
        return ""
    fields = _fields(text, epochs)
    return "" if all(set(field) == {"0"} for field in fields) else text


def proxy_skips(dropped: Iterable[int], sim_epochs: int, sim_batches_per_epoch: int, proxy_epochs: int,
                proxy_batches_per_epoch: int) -> list[list[bool]]:
    """The proxy batches the cloud skips, given the simulation's dropped batch numbers (0-based over the
    whole run), by the nearest-position mapping of the module docstring. O(proxy steps + drops), in numpy."""
    for name, value in [("sim_epochs", sim_epochs), ("sim_batches_per_epoch", sim_batches_per_epoch),
                        ("proxy_epochs", proxy_epochs), ("proxy_batches_per_epoch", proxy_batches_per_epoch)]:
        if value < 1:
            raise ValueError(f"{name} is {value}; it must be at least 1")
    sim_batches, proxy_steps = sim_epochs * sim_batches_per_epoch, proxy_epochs * proxy_batches_per_epoch
    drops = np.unique(np.fromiter(dropped, dtype=np.int64))
    if drops.size and (drops[0] < 0 or drops[-1] >= sim_batches):
        bad = drops[0] if drops[0] < 0 else drops[-1]
        raise ValueError(f"dropped batch {bad} is outside the simulated run's {sim_batches} batches "
                         f"({sim_epochs} epochs x {sim_batches_per_epoch})")
    # (k * N) // M without overflow: with N = q * M + r, it is k * q + (k * r) // M, and k * r < M^2
    q, r = divmod(sim_batches, proxy_steps)
    k = np.arange(proxy_steps, dtype=np.int64)
    sim_batch = k * q + (k * r) // proxy_steps
    skipped = np.isin(sim_batch, drops).reshape(proxy_epochs, proxy_batches_per_epoch)
    return skipped.tolist()


def skip_fraction(skips: list[list[bool]]) -> float:
    """The fraction of all the proxy's training batches that the cloud skips (nan for no batches)."""
    total = sum(len(epoch) for epoch in skips)
    return sum(sum(epoch) for epoch in skips) / total if total else float("nan")
