"""Each fleet run's accuracy from real training (`training.fleet`), at proxy scale: fleets of up
to MAX_TRAINED_EDGES edges; larger fleets leave the accuracy columns empty.

A fleet's training run is named by what it trains (the scenario's `accuracy` section, the model,
method and split, each edge's share, the data split and the fleet's mode), not by its network,
so a sweep over rates, cells or GPUs trains each fleet once; the cache keeps it across runs.
full_cloud trains the pooled data, whatever the fleet: one run (training.csv: 1 edge) for every
fleet size and data split.
"""
import math

import pandas as pd

from ..core.executors import Executor
from ..core.names import FULL_CLOUD, HIERARCHICAL, SPLIT_LEARNING
from ..scenario.config import Scenario
from ..training.fleet import MAX_TRAINED_EDGES, FleetTrainingRun, fleet_accuracy
from ..training.runs import TrainingRun, model_settings, run_settings

FLEET_TRAINING_COLUMNS = ["model", "method", "fleet_mode", "edges", "partition", "split", "codec", "dataset", "width",
                          "epoch", "train_loss", "exit_train_loss", "final_accuracy", "early_exit_accuracy",
                          "wall_time_s", "device", "cache_key"]


def partition_text(alpha: float | None) -> str:
    return "iid" if alpha is None else f"dirichlet {alpha:g}"


def training_run(scenario: Scenario, model: str, method: str, split: str) -> FleetTrainingRun | None:
    """The training run behind a fleet run of `scenario`; None for a fleet too large to train."""
    shares = tuple(g.train_samples for c, g in zip(scenario.edges, scenario.groups) for _ in range(c.count))
    if len(shares) > MAX_TRAINED_EDGES:
        return None
    cut = method != FULL_CLOUD
    run = TrainingRun(model=model, method=method, split=split if cut else "",
                      codec=scenario.network.codec if cut else "",
                      **{**run_settings(scenario), **model_settings(scenario, model)})
    f = scenario.fleet
    if method == FULL_CLOUD:  # the cloud trains the pooled data: one run whatever the shares and their split
        return FleetTrainingRun(run, (1,), None)  # one edge holding everything: the pooled training subset
    return FleetTrainingRun(run, shares, f.dirichlet_alpha,
                            split_learning=f.split_learning if method == SPLIT_LEARNING else "",
                            edge_sync=f.edge_sync if method == HIERARCHICAL else "")


def fleet_training_runs(jobs: list) -> dict[int, FleetTrainingRun]:
    """Job index -> its training run, for the jobs (setting, point, spec) small enough to train."""
    runs = {}
    for i, (setting, point, _) in enumerate(jobs):
        run = training_run(setting.scenario, point.model, point.method, point.split)
        if run is not None:
            runs[i] = run
    return runs


def train_fleets(scenario: Scenario, runs: dict[int, FleetTrainingRun], progress: bool, executor: Executor) -> dict:
    """Every distinct run's result, from the cache or trained now through `executor`."""
    a = scenario.accuracy
    return fleet_accuracy(list(dict.fromkeys(runs.values())), a.data_root, a.download, progress=progress,
                          executor=executor)


def add_accuracy(table: pd.DataFrame, edge_table: pd.DataFrame, jobs: list, runs: dict, trained: dict,
                 proxy: str, requested: bool) -> None:
    """Fill the accuracy columns of results.csv (row i is job i) and edges.csv (the edges of job
    i in order) in place; `requested`: training was asked for (a fleet too large to train says so)."""
    final, exit_, partition, note = [], [], [], []
    edge_final, edge_exit = [], []
    for i, (setting, point, spec) in enumerate(jobs):
        run = runs.get(i)
        result = trained.get(run) if run is not None else None
        n_edges = spec.n_edges
        if result is None:
            final.append(math.nan)
            exit_.append(math.nan)
            edge_final += [math.nan] * n_edges
            edge_exit += [math.nan] * n_edges
        else:
            final.append(result.epochs[-1].final_accuracy)
            exit_.append(result.epochs[-1].early_exit_accuracy)
            pooled = len(result.edge_final_accuracy) != n_edges  # full_cloud: one model for every edge
            edge_final += [result.epochs[-1].final_accuracy] * n_edges if pooled else list(result.edge_final_accuracy)
            edge_exit += [math.nan] * n_edges if pooled else list(result.edge_exit_accuracy)
        alpha = setting.scenario.fleet.dirichlet_alpha
        pooled = point.method == FULL_CLOUD  # the cloud trains every edge's data together
        partition.append(("pooled" if pooled else partition_text(alpha)) if result is not None else "")
        too_large = requested and run is None
        note.append(proxy if result is not None else f"not trained: over {MAX_TRAINED_EDGES} edges" if too_large else "")
    table["final_accuracy"], table["early_exit_accuracy"] = final, exit_
    table["accuracy_partition"], table["accuracy_proxy"] = partition, note
    edge_table["final_accuracy"], edge_table["early_exit_accuracy"] = edge_final, edge_exit
