"""Discrete-event simulation of full-cloud, split-learning and hierarchical training.

    costs     per-batch cost model (no SimPy): LinkSpec, BatchCosts, batch_costs, stage times
    analytic  closed-form training time from the same cost functions
    network   Link: the uplink / downlink as a FIFO server plus a delay
    devices   EdgeDevice, CloudServer
    methods   the three methods as SimPy processes, in phases
    recorder  stage logs, trace and the exact steady-state fast forward
    engine    RunSpec -> simulate -> RunResult
"""
from .analytic import analytic_time_s, pipeline_time_s
from .costs import METHODS, RAW_UPLOADS, BatchCosts, LinkSpec, batch_costs, batches_per_epoch
from .engine import RunResult, RunSpec, simulate
from .recorder import TraceEvent

__all__ = ["METHODS", "RAW_UPLOADS", "BatchCosts", "LinkSpec", "RunResult", "RunSpec", "TraceEvent",
           "analytic_time_s", "batch_costs", "batches_per_epoch", "pipeline_time_s", "simulate"]
