"""The per-point table of a scenario: for each model, uplink rate and separation point, the
hierarchical time, edge memory, bytes sent and (where trained) accuracy, and the chosen point.

`split: auto` models get their point from `choose_split.choose` at every rate; a fixed split
is kept and shown as chosen, with the table still listing the other points for comparison.
The chosen point's closed-form time is confirmed by the discrete-event simulation
(`des_time_s`). Written as split_points.csv; `simulate split` prints it.
"""
import math
from dataclasses import dataclass, replace

import pandas as pd

from ..core.errors import UserError
from ..core.names import AUTO
from ..costmodel.analytic import analytic_time_s
from ..costmodel.costs import cloud_train_s, edge_stages_s, serialisation_time_s, uplink_payload_bytes
from ..costmodel.memory import MIB, EdgeMemory, edge_memory
from ..scenario.config import Scenario
from ..sim.engine import simulate
from ..sim.run import RunSpec
from ..training.runs import TrainingResults, TrainingRun, run_settings
from .choose_split import Candidate, Choice, NoFeasiblePoint, accuracy_error, choose, memory_error
from .points import SweepPoint, run_spec

SPLIT_COLUMNS = [
    "model", "uplink_mbps", "split", "chosen", "reason", "hierarchical_time_s", "des_time_s", "bottleneck",
    "edge_batch_s", "uplink_batch_s", "cloud_batch_s", "bytes_up_per_sample", "edge_memory_mib", "memory_budget_mib",
    "fits_memory", "memory_peak_phase", "weights_mib", "optimizer_mib", "activations_mib", "buffer_mib",
    "full_cloud_accuracy", "final_accuracy", "early_exit_accuracy", "accuracy_drop", "within_accuracy",
]


@dataclass
class SplitSearch:
    table: pd.DataFrame  # SPLIT_COLUMNS, one row per model x rate x point
    choices: dict[tuple[str, float], Choice]  # (model, uplink_mbps) -> chosen point

    def split_of(self, model: str, rate_mbps: float) -> str:
        return self.choices[(model, rate_mbps)].split


def hierarchical_specs(scenario: Scenario, model: str, points: list[str]) -> dict[tuple[str, float], RunSpec]:
    """(point, rate) -> the sweep's own hierarchical RunSpec (`points.run_spec`), so the two never differ."""
    return {(p, r): run_spec(scenario, SweepPoint(model, p, "hierarchical", r), 0)
            for p in points for r in scenario.network.uplink_mbps}


def closed_form_s(spec: RunSpec) -> float:
    return analytic_time_s(spec.method, spec.costs, spec.uplink, spec.downlink, spec.batches_per_epoch, spec.epochs,
                           spec.edge_has_gpu)


def model_memory(scenario: Scenario, model: str) -> dict[str, EdgeMemory | None]:
    """Edge memory at every point; None where the profile predates the memory model, which is
    an error only when there is a budget to check (edge.memory_mib)."""
    profile = scenario.edge_profiles[model]
    points = profile.layer_names[:-1]
    try:
        return {point: edge_memory(profile, point, scenario.network.uplink_buffer_batches, scenario.network.codec)
                for point in points}
    except ValueError as exc:
        if scenario.edge.memory_mib is None:
            return dict.fromkeys(points)
        raise UserError(f"{scenario.path}: edge.profiles.{model}: {exc}") from None


class AccuracyOracle:
    """drop(split) = full-cloud final accuracy - hierarchical final accuracy at split, trained on demand."""

    def __init__(self, scenario: Scenario, model: str, training: TrainingResults):
        self.scenario, self.model, self.training = scenario, model, training
        self.settings = run_settings(scenario)

    def run(self, method: str, split: str) -> TrainingRun:
        return TrainingRun.of(self.model, method, split, self.scenario.network.codec, **self.settings)

    def full_cloud(self) -> float:
        return self.training.result(self.run("full_cloud", "")).final.final_accuracy

    def known(self, split: str):
        """The training result at `split` if it was trained (or cached) already, else None."""
        return self.training.known(self.run("hierarchical", split))

    def __call__(self, split: str) -> float:
        return self.full_cloud() - self.training.result(self.run("hierarchical", split)).final.final_accuracy


def search_splits(scenario: Scenario, training: TrainingResults | None, confirm: bool = True) -> SplitSearch:
    """Choose (or keep) every model's point at every rate and build the per-point table.
    `training` None: accuracy is not checked (`--no-train`, or accuracy disabled). `confirm`:
    run the DES at each chosen point (a scenario run fills des_time_s from its own sweep)."""
    rows, choices = [], {}
    budget_mib = scenario.edge.memory_mib
    budget_bytes = math.inf if budget_mib is None else budget_mib * MIB
    max_drop = scenario.split_search.max_accuracy_drop
    for index, model_config in enumerate(scenario.workload.models):
        model = model_config.name
        memory = model_memory(scenario, model)
        points = list(memory)
        specs = hierarchical_specs(scenario, model, points)
        candidates = [Candidate(p, memory[p].peak_bytes if memory[p] else 0, {r: closed_form_s(specs[(p, r)])
                                                          for r in scenario.network.uplink_mbps}) for p in points]
        oracle = AccuracyOracle(scenario, model, training) if training is not None else None
        for rate in scenario.network.uplink_mbps:
            if model_config.split != AUTO:
                choices[(model, rate)] = Choice(model_config.split, f"set in the scenario "
                                                f"(workload.models[{index}].split)")
                continue
            try:
                choices[(model, rate)] = choose(candidates, rate, budget_bytes, oracle, max_drop)
            except NoFeasiblePoint as exc:
                if exc.args[0] == "memory":
                    raise memory_error(scenario.path, model, budget_mib, candidates, MIB) from None
                raise accuracy_error(scenario.path, model, max_drop, candidates, budget_bytes, oracle) from None
        for rate in scenario.network.uplink_mbps:
            chosen = choices[(model, rate)].split
            for candidate in candidates:
                point = candidate.split
                row = point_row(scenario, specs[(point, rate)], model, point, memory[point],
                                candidate.time_s[rate], budget_mib, oracle, max_drop)
                if point == chosen:
                    row.update(chosen=True, reason=choices[(model, rate)].reason)
                    if confirm:
                        row["des_time_s"] = simulate(replace(specs[(point, rate)], trace_batches=0)).total_time_s
                rows.append(row)
    return SplitSearch(pd.DataFrame(rows).reindex(columns=SPLIT_COLUMNS), choices)


def point_row(scenario: Scenario, spec: RunSpec, model: str, split: str, memory: EdgeMemory | None, time_s: float,
              budget_mib: float | None, oracle: AccuracyOracle | None, max_drop: float) -> dict:
    costs, rate, uplink = spec.costs, spec.uplink.rate_mbps, spec.uplink
    # per-batch stage times; with a GPU, prep (CPU) and training (GPU) overlap and the slower paces the edge
    stages = {"edge": max(edge_stages_s(costs, "hierarchical", scenario.edge.compute == "gpu")),
              "uplink": serialisation_time_s(uplink_payload_bytes(costs, "hierarchical"), uplink),
              "cloud": cloud_train_s(costs, "hierarchical")}
    row = {"model": model, "uplink_mbps": rate, "split": split, "chosen": False, "reason": "",
           "hierarchical_time_s": time_s, "bottleneck": max(stages, key=stages.get),
           "edge_batch_s": stages["edge"], "uplink_batch_s": stages["uplink"], "cloud_batch_s": stages["cloud"],
           "bytes_up_per_sample": uplink_payload_bytes(costs, "hierarchical") / costs.batch_size,
           "memory_budget_mib": budget_mib}
    if memory is not None:
        row.update(edge_memory_mib=memory.peak_mib, fits_memory=budget_mib is None or memory.peak_mib <= budget_mib,
                   memory_peak_phase=memory.peak_phase, weights_mib=memory.weights_bytes / MIB,
                   optimizer_mib=memory.optimizer_bytes / MIB, activations_mib=memory.activations_bytes / MIB,
                   buffer_mib=memory.buffer_bytes / MIB)
    result = oracle.known(split) if oracle is not None else None
    if result is not None:
        full_cloud = oracle.full_cloud()
        drop = full_cloud - result.final.final_accuracy
        row.update(full_cloud_accuracy=full_cloud, final_accuracy=result.final.final_accuracy,
                   early_exit_accuracy=result.final.early_exit_accuracy, accuracy_drop=drop,
                   within_accuracy=drop <= max_drop)
    return row
