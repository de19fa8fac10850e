"""The simulator's prediction for an emulated run.

    predicted_s  the discrete-event simulation of the same scenario, model, method and rates,
                 for one epoch of `batches` batches (`sweep.points.run_spec` with
                 batches_per_epoch = batches, epochs = 1), from the profiles the scenario names

With part steps measured (`part_steps`), compute per batch comes from them instead of the
sum of per-block profile times.
"""
import json
import math
from dataclasses import fields, replace
from pathlib import Path

from ..costmodel.costs import (
    BatchCosts,
    PartSteps,
    cloud_train_s,
    hierarchical_edge_train_s,
    split_edge_backward_s,
    split_edge_forward_s,
)
from ..scenario.config import Scenario, resolve_path
from ..sim.engine import simulate
from ..sim.run import RunResult, RunSpec
from ..sweep.points import SweepPoint, fixed_split, run_spec


def steps_path(scenario: Scenario, model: str) -> Path:
    """Where the part steps of `model` at the scenario's split and codec live: beside the edge profile."""
    profile = resolve_path(scenario.edge.profiles[model], Path(scenario.path).resolve().parent)
    split = fixed_split(scenario, model)
    return profile.with_name(f"{profile.stem}.steps-{split}-{scenario.network.codec}.json")


def load_part_steps(scenario: Scenario, model: str) -> PartSteps | None:
    """The measured part steps of `model`, or None when none were measured."""
    path = steps_path(scenario, model)
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return PartSteps(**{f.name: data["steps_ms"][f.name.removesuffix("_s") + "_ms"] / 1e3 for f in fields(PartSteps)})


def emulated_spec(scenario: Scenario, model: str, method: str, uplink_mbps: float, batches: int) -> RunSpec:
    """The scenario's run of `model` and `method` at `uplink_mbps`, as one epoch of `batches` batches."""
    split = fixed_split(scenario, model)
    spec = run_spec(scenario, SweepPoint(model, split, method, uplink_mbps), 0)
    steps = load_part_steps(scenario, model)
    costs = spec.costs if steps is None else replace(spec.costs, part_steps=steps)
    return replace(spec, costs=costs, batches_per_epoch=batches, epochs=1)


def predict(scenario: Scenario, model: str, method: str, uplink_mbps: float, batches: int) -> RunResult:
    """The simulation of one emulated run."""
    return simulate(emulated_spec(scenario, model, method, uplink_mbps, batches))


def predicted_compute_ms(costs: BatchCosts, method: str) -> tuple[float, float]:
    """(edge, cloud) compute per batch the simulator charges, ms (edge: nan for full_cloud)."""
    if method == "full_cloud":
        edge_s = math.nan
    elif method == "hierarchical":
        edge_s = costs.edge_prep_s + hierarchical_edge_train_s(costs)
    else:
        edge_s = costs.edge_prep_s + split_edge_forward_s(costs) + split_edge_backward_s(costs)
    return 1e3 * edge_s, 1e3 * cloud_train_s(costs, method)
