"""The engines that turn a RunSpec into a RunResult, and the choice between them.

    simpy   the SimPy processes of `simulator.sim`: the engine of record, event by event
    fast    `engines.fast`: the same per-batch times from each method's max-plus recurrences,
            compiled; SimPy still plays the trace window (the first batches)
    auto    simpy where it fast-forwards (a deterministic run), else fast

`simulate(spec, engine)` returns the result with `engine` naming the one that produced it.
"""
from .select import ENGINES, simulate

__all__ = ["ENGINES", "simulate"]
