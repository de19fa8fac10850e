"""`simulate(spec, engine)`: run one RunSpec through the chosen engine."""
from dataclasses import replace

from ..sim.engine import simulate as simulate_simpy
from ..sim.run import RunResult, RunSpec

ENGINES = ("simpy", "fast", "auto")


def simulate(spec: RunSpec, engine: str = "auto") -> RunResult:
    """`spec` through `engine` (simpy, fast or auto); the result names the engine that produced it."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; valid: {', '.join(ENGINES)}")
    return replace(simulate_simpy(spec), engine="simpy")
