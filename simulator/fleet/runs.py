"""A fleet scenario's runs: every setting x model x rate x method as a `FleetSpec`, and the rows
of results.csv and edges.csv from what each took (README, "Fleets", "Output files").
"""
import math
from dataclasses import replace

from ..core.names import HIERARCHICAL
from ..costmodel.memory import edge_weight_bytes
from ..profiling.schema import Profile
from ..scenario.config import Scenario
from ..scenario.fleet import follows_axis
from ..sweep.points import SweepPoint, run_spec
from .spec import EdgeGroupSpec, FleetResult, FleetSpec

FLEET_RESULT_COLUMNS = [
    "scenario", "model", "dataset", "method", "fleet_mode", "split", "codec", "uplink_mbps", "replication",
    "cell_uplink_mbps", "edges", "groups", "cloud_gpus", "epochs", "total_time_s", "time_per_epoch_s",
    "cloud_busy_s", "cloud_utilisation", "cloud_offered_load", "bytes_up", "bytes_down", "sync_bytes",
    "batches_trained", "batches_dropped", "mean_wait_cloud_s", "mean_wait_cell_s",
    "final_accuracy", "early_exit_accuracy", "accuracy_partition", "accuracy_proxy",
]
EDGE_COLUMNS = [
    "method", "group", "edge", "total_time_s", "wait_cloud_s", "wait_cell_s", "bytes_up", "bytes_down",
    "batches_trained", "batches_dropped",
    "model", "fleet_mode", "split", "uplink_mbps", "replication", "sync_bytes", "fleet_edges",
    "final_accuracy", "early_exit_accuracy",
]


def rate_axis(scenario: Scenario) -> list[float]:
    """The scenario's rates; [nan] when every group sets its own."""
    return list(scenario.network.uplink_mbps) or [math.nan]


def replications(scenario: Scenario) -> int:
    """`replications` when any group's runs draw random numbers, else 1."""
    return scenario.replications if any(g.stochastic for g in scenario.groups) else 1


def fleet_points(scenario: Scenario) -> list[SweepPoint]:
    """Every model x rate of the axis (nan: every group has its own) x replication x method."""
    return [SweepPoint(m.name, m.split_for(method), method, rate, replication)
            for m in scenario.workload.models for rate in rate_axis(scenario)
            for replication in range(replications(scenario)) for method in scenario.methods]


def weight_bytes(profile: Profile, split: str, method: str) -> int:
    """What a hand-over or an averaging round sends each way: the edge part's fp32 parameters
    (hierarchical: with its early exit); 0 for full_cloud (no edge part)."""
    return edge_weight_bytes(profile, split, early_exit=method == HIERARCHICAL) if split else 0


def fleet_spec(scenario: Scenario, point: SweepPoint) -> FleetSpec:
    """The FleetSpec of `point`: each group's edge as its one-edge scenario would run it."""
    groups = []
    for config, group in zip(scenario.edges, scenario.groups, strict=True):
        rate = point.uplink_mbps if follows_axis(config.network) else group.network.uplink_mbps[0]
        run = run_spec(group, replace(point, uplink_mbps=rate))
        run = replace(run, trace_batches=0, fast_forward=False)
        groups.append(EdgeGroupSpec(config.name, config.count, run,
                                    weight_bytes(group.edge_profiles[point.model], point.split, point.method),
                                    random_trace_offset=group.network.trace_offset_s == "random"))
    f = scenario.fleet
    return FleetSpec(point.method, tuple(groups), scenario.cloud.gpus, scenario.network.cell_uplink_mbps,
                     f.split_learning, f.cloud_order, f.edge_sync)


def result_row(scenario: Scenario, point: SweepPoint, spec: FleetSpec, result: FleetResult) -> dict:
    n = scenario.network
    edges = len(result.edges)
    return {
        "scenario": scenario.name, "model": point.model, "dataset": scenario.workload.dataset,
        "method": point.method, "fleet_mode": spec.mode, "split": point.split, "codec": n.codec,
        "uplink_mbps": point.uplink_mbps, "replication": point.replication,
        "cell_uplink_mbps": n.cell_uplink_mbps if n.cell_uplink_mbps is not None else math.nan,
        "edges": edges, "groups": len(spec.groups), "cloud_gpus": spec.cloud_gpus, "epochs": spec.epochs,
        "total_time_s": result.total_time_s, "time_per_epoch_s": result.total_time_s / spec.epochs,
        "cloud_busy_s": result.cloud_busy_s, "cloud_utilisation": result.cloud_utilisation,
        "cloud_offered_load": result.cloud_offered_load,
        "bytes_up": result.total("bytes_up"), "bytes_down": result.total("bytes_down"),
        "sync_bytes": result.total("sync_bytes"), "batches_trained": result.total("batches_trained"),
        "batches_dropped": result.total("batches_dropped"),
        "mean_wait_cloud_s": result.total("wait_cloud_s") / edges, "mean_wait_cell_s": result.total("wait_cell_s") / edges,
    }


def edge_rows(point: SweepPoint, spec: FleetSpec, result: FleetResult) -> list[dict]:
    return [{"method": point.method, "group": e.group, "edge": e.edge, "total_time_s": e.total_time_s,
             "wait_cloud_s": e.wait_cloud_s, "wait_cell_s": e.wait_cell_s, "bytes_up": e.bytes_up,
             "bytes_down": e.bytes_down, "batches_trained": e.batches_trained, "batches_dropped": e.batches_dropped,
             "model": point.model, "fleet_mode": spec.mode, "split": point.split, "uplink_mbps": point.uplink_mbps,
             "replication": point.replication, "fleet_edges": len(result.edges), "sync_bytes": e.sync_bytes}
            for e in result.edges]
