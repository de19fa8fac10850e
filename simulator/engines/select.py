"""`simulate(spec, engine)`: run one RunSpec through the chosen engine.

    simpy   event by event (fast-forwarded once periodic, when the run is deterministic)
    fast    the compiled recurrences (`engines.fast`); SimPy plays the trace window
    auto    simpy for a deterministic run (its fast forward is exact and takes milliseconds),
            fast for one with jitter, loss, a trace, outages or drops, which never repeats
"""
from dataclasses import replace

from ..sim.engine import simulate as simulate_simpy
from ..sim.run import RunResult, RunSpec

ENGINES = ("simpy", "fast", "auto")


def chosen_engine(spec: RunSpec, engine: str = "auto") -> str:
    """simpy or fast: what `engine` means for `spec`."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; valid: {', '.join(ENGINES)}")
    if engine == "auto":
        return "simpy" if spec.deterministic and spec.fast_forward else "fast"
    return engine


def simulate(spec: RunSpec, engine: str = "auto") -> RunResult:
    """`spec` through `engine` (simpy, fast or auto); the result names the engine that produced it."""
    if chosen_engine(spec, engine) == "simpy":
        return replace(simulate_simpy(spec), engine="simpy")
    from .fast import simulate_fast  # compiles on first use (Numba); cached on disk after that

    return simulate_fast(spec)
