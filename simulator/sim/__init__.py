"""The SimPy simulation of full-cloud, split-learning and hierarchical training.

    run       RunSpec (what to simulate) and RunResult (what it took)
    network   Link: the uplink / downlink as a FIFO server plus a delay
    devices   EdgeDevice, CloudServer
    methods   the three methods as SimPy processes, in phases
    recorder  stage logs, trace and the exact steady-state fast forward
    engine    simulate: RunSpec -> RunResult

Every duration and byte count comes from the cost model (`simulator.costmodel`), which the
closed form shares.
"""
from .engine import simulate
from .recorder import TraceEvent
from .run import RunResult, RunSpec

__all__ = ["RunResult", "RunSpec", "TraceEvent", "simulate"]
