"""The runs of a scenario: every model x uplink rate x method (`SweepPoint`) and the
simulation spec of each (`run_spec`), shared by the sweep and the separation-point table so
the two never build a run differently.
"""
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..core.names import AUTO
from ..costmodel.costs import LinkSpec, batch_costs
from ..scenario.config import Scenario
from ..sim.run import RunSpec


@dataclass(frozen=True)
class SweepPoint:
    model: str
    split: str
    method: str
    uplink_mbps: float


def sweep_points(scenario: Scenario, split_of: Callable[[str, str, float], str] | None = None) -> list[SweepPoint]:
    """Every model x uplink rate x method, at the point `split_of(model, method, rate)` gives
    (default: the scenario's fixed splits)."""
    split_of = split_of or (lambda model, method, _rate: fixed_split(scenario, model, method))
    return [SweepPoint(m.name, split_of(m.name, method, rate), method, rate)
            for m in scenario.workload.models for rate in scenario.network.uplink_mbps for method in scenario.methods]


def fixed_split(scenario: Scenario, model: str, method: str) -> str:
    """`method`'s fixed point for `model` ("" for full_cloud)."""
    split = next(m for m in scenario.workload.models if m.name == model).split_for(method)
    if split == AUTO:
        raise ValueError(f"{model} has split: auto; choose its points first (sweep.split_table.search_splits)")
    return split


def run_seed(scenario: Scenario, point: SweepPoint) -> int:
    """Independent, reproducible random stream per run, drawn from what the run is (model,
    method, rate), not from its place in the list: the same run in another scenario (a target's
    stand-alone rerun, a sweep setting written out) draws the same numbers."""
    identity = f"{point.model}/{point.method}/{point.uplink_mbps!r}".encode()
    return int(np.random.SeedSequence([scenario.seed, zlib.crc32(identity)]).generate_state(1)[0])


def link(scenario: Scenario, rate_mbps: float) -> LinkSpec:
    n = scenario.network
    return LinkSpec(rate_mbps=rate_mbps, latency_ms=n.latency_ms, jitter_ms=n.jitter_ms, loss_rate=n.loss_rate,
                    mtu_bytes=n.mtu_bytes, retransmit_timeout_ms=n.retransmit_timeout_ms)


def run_spec(scenario: Scenario, point: SweepPoint) -> RunSpec:
    edge = scenario.edge_profiles[point.model]
    cut = point.split or edge.layer_names[0]  # full_cloud's costs do not depend on the cut
    costs = batch_costs(edge, scenario.cloud_profiles[point.model], cut, scenario.network.codec)
    return RunSpec(method=point.method, costs=costs, uplink=link(scenario, point.uplink_mbps),
                   downlink=link(scenario, scenario.downlink_mbps(point.uplink_mbps)),
                   batches_per_epoch=scenario.batches_per_epoch, epochs=scenario.workload.epochs,
                   uplink_buffer_batches=scenario.network.uplink_buffer_batches,
                   edge_has_gpu=scenario.edge.compute == "gpu", raw_upload=scenario.full_cloud.raw_upload,
                   seed=run_seed(scenario, point))
