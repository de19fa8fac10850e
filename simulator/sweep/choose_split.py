"""Choosing the separation point (README, "Choosing the separation point").

For one model, one method that cuts the network (hierarchical training or split learning),
every separation point p and every uplink rate r:

    time(p, r)    the method's training time, closed form (`costmodel.analytic`), no jitter or loss
    memory(p)     the method's peak edge memory (`memory.edge_memory`)
    drop(p)       full-cloud final accuracy - the method's final accuracy at p (real training;
                  0 for split learning over fp32, which computes what full-cloud computes)

The choice at rate r is the fastest point with memory(p) <= edge.memory_mib and
drop(p) <= split_search.max_accuracy_drop; ties go to the smaller memory, then the earlier
point. Accuracy is expensive (a real training run per point), so the search walks the points
that fit in memory from fastest to slowest and trains a point only when it is reached: the
first one within the tolerance is the choice. That is the brute-force answer (`brute_force`)
with only the points faster than the choice, and the choice itself, trained.

This module is pure: the accuracy comes in as a function, so a test can give a table.
"""
from collections.abc import Callable
from dataclasses import dataclass

from ..core.errors import UserError


@dataclass(frozen=True)
class Candidate:
    """One separation point of a model, with what the choice needs."""

    split: str
    memory_bytes: int
    time_s: dict[float, float]  # uplink_mbps -> hierarchical training time, closed form


@dataclass(frozen=True)
class Choice:
    split: str
    reason: str


AccuracyDrop = Callable[[str], float]  # split -> full-cloud accuracy minus hierarchical accuracy


def order_key(candidate: Candidate, rate: float, index: int) -> tuple:
    return candidate.time_s[rate], candidate.memory_bytes, index


def brute_force(candidates: list[Candidate], rate: float, budget_bytes: float, drop: AccuracyDrop | None,
                max_drop: float) -> str | None:
    """The definition: the fastest feasible point, every point's accuracy known. None if none is."""
    feasible = [(order_key(c, rate, i), c.split) for i, c in enumerate(candidates)
                if c.memory_bytes <= budget_bytes and (drop is None or drop(c.split) <= max_drop)]
    return min(feasible)[1] if feasible else None


def choose(candidates: list[Candidate], rate: float, budget_bytes: float, drop: AccuracyDrop | None,
           max_drop: float) -> Choice:
    """The fastest point within memory and accuracy at `rate`, asking `drop` only for the points
    it must (fastest first), with the reason it won. Raises `NoFeasiblePoint` when none is."""
    order = sorted(range(len(candidates)), key=lambda i: order_key(candidates[i], rate, i))
    ranked = [candidates[i] for i in order]
    fits = [c for c in ranked if c.memory_bytes <= budget_bytes]
    if not fits:
        raise NoFeasiblePoint("memory")
    rejected: list[str] = []
    for position, candidate in enumerate(fits):
        loss = drop(candidate.split) if drop is not None else None
        if loss is not None and loss > max_drop:
            rejected.append(f"{candidate.split} loses {100 * loss:.1f}")
            continue
        parts = [f"fastest of {len(candidates)} points within the limits"]
        too_big = [c.split for c in ranked[:ranked.index(candidate)] if c.memory_bytes > budget_bytes]
        if too_big:
            parts.append(f"faster {', '.join(too_big)} over the memory budget")
        if rejected:
            parts.append(f"faster {', '.join(rejected)} accuracy points (over {100 * max_drop:.1f})")
        if getattr(drop, "exact", False):
            parts.append("accuracy full-cloud's (fp32 codec: the same computation)")
        elif loss is None:
            parts.append("accuracy not checked")
        else:
            parts.append(f"accuracy {100 * abs(loss):.1f} points {'below' if loss >= 0 else 'above'} full-cloud")
        if position + 1 < len(fits):
            runner_up = fits[position + 1]
            margin = runner_up.time_s[rate] / candidate.time_s[rate] - 1
            lighter = "less" if runner_up.memory_bytes > candidate.memory_bytes else "as much"
            parts.append(f"next, {runner_up.split}, {100 * margin:.1f}% slower" if margin >= 5e-4 else
                         f"as fast as {runner_up.split}, with {lighter} edge memory")
        return Choice(candidate.split, "; ".join(parts))
    raise NoFeasiblePoint("accuracy")


class NoFeasiblePoint(Exception):
    """No separation point meets the limit named by `args[0]` ("memory" or "accuracy")."""


def memory_error(file: str, model: str, method: str, budget_mib: float, candidates: list[Candidate],
                 mib: float) -> UserError:
    lightest = min(candidates, key=lambda c: c.memory_bytes)
    return UserError(f"{file}: edge.memory_mib {budget_mib:g} is too small to train {model} by {method} at any "
                     f"separation point; the smallest feasible budget is {lightest.memory_bytes / mib:.1f} MiB "
                     f"(split after {lightest.split})")


def accuracy_error(file: str, model: str, method: str, max_drop: float, candidates: list[Candidate],
                   budget_bytes: float, drop: AccuracyDrop) -> UserError:
    fits = [c for c in candidates if c.memory_bytes <= budget_bytes]
    best = min(fits, key=lambda c: drop(c.split))
    return UserError(f"{file}: split_search.max_accuracy_drop {max_drop:g}: no separation point of {model} that fits "
                     f"in memory stays within it for {method}; the smallest drop is {drop(best.split):.4f} "
                     f"(at {best.split}), "
                     f"so the smallest feasible max_accuracy_drop is {drop(best.split):.4f}")
