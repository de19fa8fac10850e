"""The cost model: what training costs each part of the system, free of torch and SimPy.

    costs     LinkSpec, BatchCosts, batch_costs and the per-method stage times
    analytic  the closed-form training time of each method, from the same functions
    memory    the edge's peak training memory at a separation point

The simulation (`simulator.sim`) and the closed form take every duration and byte count
from here, so each formula exists once.
"""
from .analytic import analytic_time_s, pipeline_time_s
from .costs import BatchCosts, LinkSpec, batch_costs, batches_per_epoch

__all__ = ["BatchCosts", "LinkSpec", "analytic_time_s", "batch_costs", "batches_per_epoch", "pipeline_time_s"]
