"""The per-point table of a scenario: for each model, uplink rate and separation point, the
hierarchical time, edge memory, bytes sent (beside the raw sample full-cloud would send instead)
and (where trained) accuracy, and the chosen point;
then split learning's time, edge memory and choice at the same point (`split_learning_*`).

Each method that cuts the network is chosen on its own: `split: auto` gives hierarchical
training and split learning each its own point from `choose_split.choose` at every rate (split
learning on its own closed-form time and edge memory; over fp32 its accuracy is full-cloud's,
over a lossy codec the same max_accuracy_drop applies). A fixed split is kept and shown as
chosen, with the table still listing the other points for comparison.
The chosen point's closed-form time is confirmed by the discrete-event simulation
(`des_time_s`). Written as split_points.csv; `simulate split` prints it.
"""
import math
from dataclasses import dataclass, replace

import pandas as pd

from ..core.errors import UserError
from ..core.names import AUTO, HIERARCHICAL, SPLIT_LEARNING
from ..costmodel.analytic import analytic_time_s
from ..costmodel.costs import (
    cloud_train_s,
    edge_stages_s,
    serialisation_time_s,
    uplink_payload_bytes,
)
from ..costmodel.memory import MIB, EdgeMemory, edge_memory
from ..engines import simulate
from ..scenario.config import SPLIT_METHODS, Scenario
from ..sim.run import RunSpec
from ..training.runs import TrainingResults, TrainingRun, run_settings
from .choose_split import (
    Candidate,
    Choice,
    NoFeasiblePoint,
    accuracy_error,
    choose,
    memory_error,
)
from .points import SweepPoint, run_spec

SPLIT_COLUMNS = [
    "model", "uplink_mbps", "split", "chosen", "reason", "hierarchical_time_s", "des_time_s", "bottleneck",
    "edge_batch_s", "uplink_batch_s", "cloud_batch_s", "bytes_up_per_sample", "raw_bytes_per_sample", "edge_memory_mib",
    "memory_budget_mib", "fits_memory", "memory_peak_phase", "weights_mib", "optimizer_mib", "activations_mib",
    "buffer_mib", "full_cloud_accuracy", "final_accuracy", "early_exit_accuracy", "accuracy_drop", "within_accuracy",
    "split_learning_time_s", "split_learning_chosen", "split_learning_reason", "split_learning_edge_memory_mib",
    "split_learning_accuracy_drop",
]


@dataclass
class SplitSearch:
    table: pd.DataFrame  # SPLIT_COLUMNS, one row per model x rate x point
    choices: dict[tuple[str, str, float], Choice]  # (model, method, uplink_mbps) -> chosen point

    def split_of(self, model: str, method: str, rate_mbps: float) -> str:
        """The point `method` trains `model` at, at `rate_mbps`; "" for full_cloud."""
        return self.choices[(model, method, rate_mbps)].split if method in SPLIT_METHODS else ""


def method_specs(scenario: Scenario, model: str, method: str, points: list[str]) -> dict[tuple[str, float], RunSpec]:
    """(point, rate) -> the sweep's own RunSpec of `method` (`points.run_spec`), so the two never differ."""
    return {(p, r): run_spec(scenario, SweepPoint(model, p, method, r))
            for p in points for r in scenario.network.uplink_mbps}


def closed_form_s(spec: RunSpec) -> float:
    return analytic_time_s(spec.method, spec.costs, spec.uplink, spec.downlink, spec.batches_per_epoch, spec.epochs,
                           spec.edge_has_gpu)


def model_memory(scenario: Scenario, model: str, method: str = HIERARCHICAL) -> dict[str, EdgeMemory | None]:
    """Edge memory of `method` at every point; None where the profile predates the memory
    model, which is an error only when there is a budget to check (edge.memory_mib). Split
    learning's edge has no early exit and holds one batch in flight."""
    profile = scenario.edge_profiles[model]
    points = profile.layer_names[:-1]
    hierarchical = method == HIERARCHICAL
    buffer = scenario.network.uplink_buffer_batches if hierarchical else 1
    try:
        return {point: edge_memory(profile, point, buffer, scenario.network.codec, early_exit=hierarchical)
                for point in points}
    except ValueError as exc:
        if scenario.edge.memory_mib is None:
            return dict.fromkeys(points)
        raise UserError(f"{scenario.path}: edge.profiles.{model}: {exc}") from None


class AccuracyOracle:
    """drop(split) = full-cloud final accuracy - `method`'s final accuracy at split, trained on
    demand. Split learning over the fp32 codec computes what full-cloud computes: its drop is 0
    without training (`TrainingRun.of` gives both the same run)."""

    def __init__(self, scenario: Scenario, model: str, training: TrainingResults | None, method: str = HIERARCHICAL):
        self.scenario, self.model, self.training, self.method = scenario, model, training, method
        self.settings = run_settings(scenario)

    @property
    def exact(self) -> bool:
        return self.method == SPLIT_LEARNING and self.scenario.network.codec == "fp32"

    def run(self, method: str, split: str) -> TrainingRun:
        return TrainingRun.of(self.model, method, split, self.scenario.network.codec, **self.settings)

    def full_cloud(self) -> float:
        return self.training.result(self.run("full_cloud", "")).final.final_accuracy

    def known(self, split: str):
        """The training result at `split` if it was trained (or cached) already, else None."""
        if self.training is None:
            return None
        return self.training.known(self.run(self.method, split))

    def __call__(self, split: str) -> float:
        if self.exact:
            return 0.0
        return self.full_cloud() - self.training.result(self.run(self.method, split)).final.final_accuracy


def oracle_for(scenario: Scenario, model: str, method: str, training: TrainingResults | None) -> AccuracyOracle | None:
    """The accuracy check of `method`'s choice: None (unchecked) without training, and for
    split learning when the scenario does not run it (nothing to train it for)."""
    oracle = AccuracyOracle(scenario, model, training, method)
    if oracle.exact:
        return oracle
    if training is None or method not in scenario.methods:
        return None
    return oracle


def search_splits(scenario: Scenario, training: TrainingResults | None, confirm: bool = True,
                  engine: str = "auto") -> SplitSearch:
    """Choose (or keep) every model's point for each method at every rate and build the
    per-point table. `training` None: accuracy is not checked (`--no-train`, or accuracy
    disabled). `confirm`: run the DES (`engine`) at hierarchical's chosen points (a scenario
    run fills des_time_s from its own sweep)."""
    rows, choices = [], {}
    budget_mib = scenario.edge.memory_mib
    budget_bytes = math.inf if budget_mib is None else budget_mib * MIB
    max_drop = scenario.split_search.max_accuracy_drop
    rates = scenario.network.uplink_mbps
    for index, model_config in enumerate(scenario.workload.models):
        model = model_config.name
        memory = {method: model_memory(scenario, model, method) for method in SPLIT_METHODS}
        points = list(memory[HIERARCHICAL])
        specs = {method: method_specs(scenario, model, method, points) for method in SPLIT_METHODS}
        candidates = {method: [Candidate(p, memory[method][p].peak_bytes if memory[method][p] else 0,
                                         {r: closed_form_s(specs[method][(p, r)]) for r in rates}) for p in points]
                      for method in SPLIT_METHODS}
        oracles = {method: oracle_for(scenario, model, method, training) for method in SPLIT_METHODS}
        for method in (HIERARCHICAL, SPLIT_LEARNING):
            fixed = model_config.split_for(method)
            key = f"workload.models[{index}].split" + ("" if isinstance(model_config.split, str) else f".{method}")
            for rate in rates:
                if fixed != AUTO:
                    choices[(model, method, rate)] = Choice(fixed, f"set in the scenario ({key})")
                    continue
                try:
                    choices[(model, method, rate)] = choose(candidates[method], rate, budget_bytes, oracles[method],
                                                            max_drop)
                except NoFeasiblePoint as exc:
                    if method not in scenario.methods:  # shown in the table only
                        choices[(model, method, rate)] = Choice("", f"no point within the {exc.args[0]} limit")
                        continue
                    if exc.args[0] == "memory":
                        raise memory_error(scenario.path, model, method, budget_mib, candidates[method], MIB) from None
                    raise accuracy_error(scenario.path, model, method, max_drop, candidates[method], budget_bytes,
                                         oracles[method]) from None
        for rate in rates:
            chosen = {method: choices[(model, method, rate)] for method in SPLIT_METHODS}
            for position, point in enumerate(points):
                spec = specs[HIERARCHICAL][(point, rate)]
                row = point_row(scenario, spec, model, point, memory[HIERARCHICAL][point],
                                candidates[HIERARCHICAL][position].time_s[rate], budget_mib, oracles[HIERARCHICAL],
                                max_drop)
                row.update(split_learning_columns(memory[SPLIT_LEARNING][point],
                                                  candidates[SPLIT_LEARNING][position].time_s[rate],
                                                  oracles[SPLIT_LEARNING], point, chosen[SPLIT_LEARNING]))
                if point == chosen[HIERARCHICAL].split:
                    row.update(chosen=True, reason=chosen[HIERARCHICAL].reason)
                    if confirm:
                        row["des_time_s"] = simulate(replace(spec, trace_batches=0), engine).total_time_s
                rows.append(row)
    return SplitSearch(pd.DataFrame(rows).reindex(columns=SPLIT_COLUMNS), choices)


def split_learning_columns(memory: EdgeMemory | None, time_s: float, oracle: AccuracyOracle | None, point: str,
                           chosen: Choice) -> dict:
    """Split learning at this point: its time, edge memory, accuracy drop where known, and whether it is its choice."""
    columns = {"split_learning_time_s": time_s, "split_learning_chosen": point == chosen.split,
               "split_learning_reason": chosen.reason if point == chosen.split else "",
               "split_learning_edge_memory_mib": memory.peak_mib if memory is not None else math.nan}
    if oracle is not None and oracle.exact:
        columns["split_learning_accuracy_drop"] = 0.0
    elif oracle is not None and (result := oracle.known(point)) is not None:
        columns["split_learning_accuracy_drop"] = oracle.full_cloud() - result.final.final_accuracy
    return columns


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
           "raw_bytes_per_sample": uplink_payload_bytes(costs, "full_cloud") / costs.batch_size,
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
