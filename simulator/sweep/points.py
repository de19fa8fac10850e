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
from ..links.capacity import LinkShape
from ..links.traces import load_trace
from ..scenario.config import Scenario
from ..sim.run import RunSpec


@dataclass(frozen=True)
class SweepPoint:
    model: str
    split: str
    method: str
    uplink_mbps: float
    replication: int = 0  # 0 .. replications - 1; a deterministic scenario runs replication 0 only


def replications(scenario: Scenario) -> int:
    """How many times each run is repeated: `replications` when runs draw random numbers, else 1."""
    return scenario.replications if scenario.stochastic else 1


def sweep_points(scenario: Scenario, split_of: Callable[[str, str, float], str] | None = None) -> list[SweepPoint]:
    """Every model x uplink rate x method, at the point `split_of(model, method, rate)` gives
    (default: the scenario's fixed splits)."""
    split_of = split_of or (lambda model, method, _rate: fixed_split(scenario, model, method))
    return [SweepPoint(m.name, split_of(m.name, method, rate), method, rate, replication)
            for m in scenario.workload.models for rate in scenario.network.uplink_mbps
            for replication in range(replications(scenario)) for method in scenario.methods]


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
    identity = f"{point.model}/{point.method}/{point.uplink_mbps!r}" + (f"/{point.replication}"
                                                                          if point.replication else "")
    return seed_of(scenario, identity)


def network_seed(scenario: Scenario, point: SweepPoint) -> int:
    """The seed of the network's own randomness (outage draws, a random trace offset): one per rate
    and replication, shared by every model and method, so the methods compared in one replication
    meet the same outages at the same trace position (common random numbers). Rates (trace scales)
    draw their own, so a curve over rates mixes the rate's effect with the trace position."""
    return seed_of(scenario, f"network/{point.uplink_mbps!r}/{point.replication}")


def seed_of(scenario: Scenario, identity: str) -> int:
    return int(np.random.SeedSequence([scenario.seed, zlib.crc32(identity.encode())]).generate_state(1)[0])


def trace_offset_s(scenario: Scenario, point: SweepPoint) -> float:
    """Where in the traces the run starts: network.trace_offset_s, or uniform over the uplink
    trace's period (else the downlink's) from the network seed when it is `random`."""
    n = scenario.network
    if n.trace_offset_s != "random":
        return float(n.trace_offset_s)
    trace = n.uplink_trace or n.downlink_trace
    if trace is None:
        return 0.0
    return float(np.random.default_rng(network_seed(scenario, point)).uniform(0.0, load_trace(trace).period_s))


def link(scenario: Scenario, rate_mbps: float, point: SweepPoint | None = None, trace: str | None = None) -> LinkSpec:
    """One direction of `point`'s network at `rate_mbps`, following `trace` and the outages."""
    n = scenario.network
    shape = LinkShape()
    if point is not None and (trace is not None or n.outages or n.outage_model is not None):
        shape = LinkShape(trace=trace, scale=scenario.trace_scale(point.uplink_mbps),
                          offset_s=trace_offset_s(scenario, point),
                          outages=tuple((w.start_s, w.duration_s) for w in n.outages),
                          outage_model=(n.outage_model.mean_up_s, n.outage_model.mean_down_s) if n.outage_model else None,
                          outage_seed=network_seed(scenario, point))
    return LinkSpec(rate_mbps=rate_mbps, latency_ms=n.latency_ms, jitter_ms=n.jitter_ms, loss_rate=n.loss_rate,
                    mtu_bytes=n.mtu_bytes, retransmit_timeout_ms=n.retransmit_timeout_ms, shape=shape)


def run_spec(scenario: Scenario, point: SweepPoint) -> RunSpec:
    edge = scenario.edge_profiles[point.model]
    cut = point.split or edge.layer_names[0]  # full_cloud's costs do not depend on the cut
    costs = batch_costs(edge, scenario.cloud_profiles[point.model], cut, scenario.network.codec)
    n = scenario.network
    return RunSpec(method=point.method, costs=costs, uplink=link(scenario, point.uplink_mbps, point, n.uplink_trace),
                   downlink=link(scenario, scenario.downlink_mbps(point.uplink_mbps), point, n.downlink_trace),
                   batches_per_epoch=scenario.batches_per_epoch, epochs=scenario.workload.epochs,
                   uplink_buffer_batches=n.uplink_buffer_batches, uplink_buffer_policy=n.uplink_buffer_policy,
                   edge_has_gpu=scenario.edge.compute == "gpu", raw_upload=scenario.full_cloud.raw_upload,
                   seed=run_seed(scenario, point))
