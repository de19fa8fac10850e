"""Run a scenario: every model x method x uplink rate through the DES, then write
`<output_dir>/results.csv` whole and print a summary table.

The runs of every setting of a sweep go to the executor together (`core.executors`: in this
process, a local process pool or Ray), then the training runs their rows need; results come
back in order, and every output is written after all work is done, so the files are the same
byte for byte on any executor, and Ctrl-C leaves none.
"""
import contextlib
import json
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from itertools import islice
from pathlib import Path

import pandas as pd

from ..core.errors import UserError
from ..core.executors import SERIAL, Executor
from ..core.files import atomic_write_text, check_writable
from ..core.names import HIERARCHICAL, SPLIT_LEARNING
from ..core.text import duration_text, reduction_text
from ..data.specs import DATASETS
from ..engines import simulate
from ..scenario.config import Scenario
from ..scenario.grid import Setting, setting_error, settings, value_text
from ..scenario.load import load_scenario
from ..sim.run import RunResult, RunSpec
from ..training.runs import (
    RowKey,
    TrainingResult,
    TrainingResults,
    TrainingRun,
    proxy_note,
    run_settings,
    train_missing,
    training_runs,
)
from ..training.skips import encode_skips, proxy_skips
from .outputs import RUN_FILES, scenario_summary, stall_table, write_run_outputs
from .points import SweepPoint, run_spec, sweep_points, trace_offset_s
from .replications import confidence_table
from .split_table import SplitSearch, search_splits
from .targets import (
    match_targets,
    remove_stale_targets,
    target_files,
    targets_text,
    write_targets,
)

RESULT_COLUMNS = [
    "scenario", "model", "dataset", "input_size", "method", "split", "codec", "uplink_mbps", "replication", "downlink_mbps",
    "latency_ms", "uplink_trace", "downlink_trace", "trace_scale", "trace_offset_s", "uplink_buffer_policy",
    "engine", "epochs", "batches_per_epoch", "batch_size", "total_time_s", "analytic_time_s",
    "reduction_vs_split_learning", "reduction_vs_full_cloud", "bytes_up", "bytes_down", "raw_bytes_sent",
    "edge_busy_frac", "uplink_busy_frac", "downlink_busy_frac", "cloud_busy_frac", "max_uplink_backlog",
    "edge_batches_trained", "cloud_batches_trained", "batches_dropped",
    "edge_profile_source", "cloud_profile_source",
    "final_accuracy", "early_exit_accuracy", "accuracy_dataset", "accuracy_width", "accuracy_epochs",
    "accuracy_train_samples", "accuracy_proxy", "training_wall_s",
]
TRAINING_COLUMNS = ["model", "method", "trained_as", "split", "codec", "dataset", "width", "epoch", "train_loss",
                    "exit_train_loss", "final_accuracy", "early_exit_accuracy", "wall_time_s", "device", "cache_key",
                    "cloud_skipped"]


def result_row(scenario: Scenario, point: SweepPoint, result: RunResult) -> dict:
    n = scenario.network
    traced = n.uplink_trace is not None or n.downlink_trace is not None
    return {
        "scenario": scenario.name, "model": point.model, "dataset": scenario.workload.dataset,
        "input_size": scenario.edge_profiles[point.model].input_shape[1],
        "method": point.method, "split": point.split if point.method != "full_cloud" else "",
        "codec": n.codec, "uplink_mbps": point.uplink_mbps, "replication": point.replication,
        "downlink_mbps": scenario.downlink_mbps(point.uplink_mbps), "latency_ms": n.latency_ms,
        "uplink_trace": Path(n.uplink_trace).name if n.uplink_trace else "",
        "downlink_trace": Path(n.downlink_trace).name if n.downlink_trace else "",
        "trace_scale": scenario.trace_scale(point.uplink_mbps) if traced else math.nan,
        "trace_offset_s": trace_offset_s(scenario, point) if traced else math.nan,
        "uplink_buffer_policy": n.uplink_buffer_policy, "engine": result.engine,
        "edge_batches_trained": result.edge_batches_trained, "cloud_batches_trained": result.cloud_batches_trained,
        "batches_dropped": result.batches_dropped,
        "epochs": scenario.workload.epochs, "batches_per_epoch": scenario.batches_per_epoch,
        "batch_size": scenario.workload.batch_size, "total_time_s": result.total_time_s,
        "analytic_time_s": result.analytic_time_s, "bytes_up": result.bytes_up, "bytes_down": result.bytes_down,
        "raw_bytes_sent": result.raw_bytes_sent, "edge_busy_frac": result.edge_busy_frac,
        "uplink_busy_frac": result.uplink_busy_frac, "downlink_busy_frac": result.downlink_busy_frac,
        "cloud_busy_frac": result.cloud_busy_frac, "max_uplink_backlog": result.max_uplink_backlog,
        "edge_profile_source": scenario.edge_profiles[point.model].source,
        "cloud_profile_source": scenario.cloud_profiles[point.model].source,
    }


RUN_MATCH = ("model", "uplink_mbps", "replication")  # the runs of one comparison


def add_reductions(table: pd.DataFrame) -> pd.DataFrame:
    """reduction_vs_X = 1 - total_time_s / (X's total_time_s at the same model, uplink rate and
    replication: the methods of one replication meet the same network)."""
    for baseline in ("split_learning", "full_cloud"):
        base = table[table.method == baseline].set_index(list(RUN_MATCH)).total_time_s
        keys = pd.MultiIndex.from_frame(table[list(RUN_MATCH)])
        reference = base.reindex(keys).to_numpy()
        table[f"reduction_vs_{baseline}"] = 1.0 - table.total_time_s.to_numpy() / reference
    return table


def simulate_scenario(scenario: Scenario, progress: bool = True, search: SplitSearch | None = None,
                      trace: bool = True, engine: str = "auto",
                      executor: Executor = SERIAL) -> tuple[pd.DataFrame, dict[SweepPoint, RunResult]]:
    """Every run of the scenario through `engine` (`engines.ENGINES`) on `executor`; `trace`
    False keeps no event trace (a sweep keeps the first setting's only)."""
    if search is None and any(m.has_auto for m in scenario.workload.models):
        search = search_splits(scenario, training=None, engine=engine)  # accuracy unchecked
    points = sweep_points(scenario, search.split_of if search is not None else None)
    specs = (scenario_spec(scenario, point, trace) for point in points)
    results = executor.map(partial(simulate, engine=engine), specs, len(points),
                           desc=f"simulate {scenario.name}" if progress else None, cheap=quick_run,
                           prepare=engine_preparation(engine))
    return scenario_table(scenario, points, results)


def scenario_spec(scenario: Scenario, point: SweepPoint, trace: bool) -> RunSpec:
    spec = run_spec(scenario, point)
    return spec if trace else replace(spec, trace_batches=0)


def engine_preparation(engine: str):
    """What to do before runs go to workers: compile the fast engine's kernels once here (the
    workers load them from Numba's disk cache instead of each compiling); nothing for simpy."""
    if engine == "simpy":
        return None

    def compile_fast_engine() -> None:
        from ..engines.fast import compile_kernels

        compile_kernels()

    return compile_fast_engine


def quick_run(spec: RunSpec) -> bool:
    """A deterministic run fast-forwards in milliseconds: less than sending it to a worker."""
    return spec.deterministic and spec.fast_forward


def scenario_table(scenario: Scenario, points: list[SweepPoint],
                   results: Iterable[RunResult]) -> tuple[pd.DataFrame, dict[SweepPoint, RunResult]]:
    """results.csv's rows of one setting (accuracy empty until trained), from its runs' results in order."""
    by_point = dict(zip(points, results, strict=True))
    rows = [result_row(scenario, point, result) for point, result in by_point.items()]
    table = add_reductions(pd.DataFrame(rows)).reindex(columns=RESULT_COLUMNS)
    return table, by_point


def summary_table(table: pd.DataFrame) -> str:
    """Total time per method per model and uplink rate, and hierarchical's reductions (means over
    the replications)."""
    wide = table.pivot_table(index=["model", "uplink_mbps"], columns="method", values="total_time_s", sort=False)
    out = pd.DataFrame(index=wide.index)
    for method in wide.columns:
        out[method] = wide[method].map(duration_text)
    hier = table[table.method == "hierarchical"].groupby(["model", "uplink_mbps"], sort=False).mean(numeric_only=True)
    for baseline in ("split_learning", "full_cloud"):
        column = f"reduction_vs_{baseline}"
        if "hierarchical" in wide.columns and baseline in wide.columns:
            out[f"hier vs {baseline}"] = hier[column].reindex(out.index).map(reduction_text)
    return out.to_string()


def row_keys(table: pd.DataFrame) -> list[RowKey]:
    """(model, method, split) of every results row: the training run that gives its accuracy."""
    return list(dict.fromkeys(zip(table.model, table.method, table.split.fillna(""))))


def add_accuracy(table: pd.DataFrame, scenario: Scenario, accuracy: dict[RowKey, TrainingResult],
                 dropped: dict[int, TrainingResult] | None = None) -> None:
    """Fill the accuracy columns of every row from its (model, method, split) training run, or,
    for a row whose uplink dropped batches, from the run whose cloud skipped them (`dropped`,
    by row index)."""
    note = proxy_note(scenario)
    dropped = dropped or {}

    def columns(result: TrainingResult) -> dict:
        run = result.run
        proxy = note
        if run.cloud_skip:
            skipped = sum(e.cloud_skipped_batches for e in result.epochs)
            total = run.epochs * proxy_batches_per_epoch(scenario)
            proxy = (f"{note}; " if note else "proxy: ") + (f"the cloud skipped {skipped:,} of {total:,} training "
                                                             "batches, the simulated drops mapped by position in the run")
        return {"final_accuracy": result.final.final_accuracy, "early_exit_accuracy": result.final.early_exit_accuracy,
                "accuracy_dataset": run.dataset, "accuracy_width": run.width, "accuracy_epochs": run.epochs,
                "accuracy_train_samples": run.train_subset if run.train_subset is not None else "all",
                "accuracy_proxy": proxy, "training_wall_s": sum(e.wall_time_s for e in result.epochs)}

    keys = zip(table.index, table.model, table.method, table.split.fillna(""))
    values = pd.DataFrame([columns(dropped[i] if i in dropped else accuracy[(model, method, split)])
                           for i, model, method, split in keys], index=table.index)
    for name in values.columns:
        table[name] = values[name]


def proxy_batches_per_epoch(scenario: Scenario) -> int:
    """Training batches per epoch of the accuracy proxy (its loaders keep the last, short batch)."""
    a = scenario.accuracy
    samples = a.train_subset or DATASETS[a.dataset or scenario.workload.dataset].train_samples
    return math.ceil(samples / (a.batch_size or scenario.workload.batch_size))


def dropped_runs(scenario: Scenario, table: pd.DataFrame,
                 results: dict[SweepPoint, RunResult]) -> dict[int, TrainingRun]:
    """For every hierarchical row whose uplink dropped batches: the real training run whose cloud
    skips the proxy batches those drops map onto (`training.skips.proxy_skips`), by row index."""
    by_point = {(p.model, p.method, p.uplink_mbps, p.replication): r for p, r in results.items()}
    common = run_settings(scenario)
    out = {}
    rows = table[(table.method == "hierarchical") & (table.batches_dropped > 0)]
    for i, row in zip(rows.index, rows.itertuples()):
        result = by_point[(row.model, row.method, row.uplink_mbps, row.replication)]
        skips = proxy_skips(result.dropped_batches, scenario.workload.epochs, scenario.batches_per_epoch,
                            common["epochs"], proxy_batches_per_epoch(scenario))
        out[i] = TrainingRun.of(row.model, "hierarchical", row.split, scenario.network.codec,
                                cloud_skip=encode_skips(skips), **common)
    return out


def training_table(accuracy: dict[RowKey, TrainingResult], dropped: list[TrainingResult] = ()) -> pd.DataFrame:
    """Per-epoch metrics of every (model, method, split) of results.csv, for time-to-accuracy plots,
    and of every run whose cloud skipped dropped batches (told apart by cache_key and cloud_skipped)."""
    rows = []
    runs = [*accuracy.items(), *(((r.run.model, r.run.method, r.run.split), r) for r in dropped)]
    for (model, method, split), result in runs:
        run = result.run
        for epoch in result.epochs:
            rows.append({"model": model, "method": method, "trained_as": run.method, "split": split,
                         "codec": run.codec, "dataset": run.dataset, "width": run.width, "epoch": epoch.epoch,
                         "train_loss": epoch.train_loss, "exit_train_loss": epoch.exit_train_loss,
                         "final_accuracy": epoch.final_accuracy, "early_exit_accuracy": epoch.early_exit_accuracy,
                         "wall_time_s": epoch.wall_time_s, "device": result.device_name, "cache_key": run.key(),
                         "cloud_skipped": epoch.cloud_skipped_batches})
    return pd.DataFrame(rows, columns=TRAINING_COLUMNS)


def accuracy_summary(table: pd.DataFrame) -> str:
    """Final and early-exit accuracy per model, method and separation point used: the mean over
    its rows (rates and replications differ only under drop_*, where each row trained its own run)."""
    keys = ["model", "method", "split"]
    wide = (table.assign(split=table.split.fillna("")).groupby(keys, sort=False)
            [["final_accuracy", "early_exit_accuracy"]].mean())
    out = pd.DataFrame(index=wide.index)
    out["final accuracy"] = wide.final_accuracy.map(lambda a: f"{100 * a:.1f}%")
    out["early exit (edge alone)"] = wide.early_exit_accuracy.map(lambda a: "-" if math.isnan(a) else f"{100 * a:.1f}%")
    return out.to_string()


@dataclass
class SettingRun:
    """What one setting of a scenario gave: its results and split tables, the accuracy of its
    rows where trained, and its runs where traced (only the first setting of a sweep writes the
    trace, backlog and epochs files; keeping every setting's runs cost paper_reproduction
    160 MB of peak memory for nothing)."""

    setting: Setting
    table: pd.DataFrame
    search: SplitSearch
    results: dict[SweepPoint, RunResult]
    stalls: pd.DataFrame  # stalls.csv rows of this setting (small: a window around each run's longest stall)
    training: TrainingResults | None = None
    row_runs: dict[RowKey, TrainingRun] = field(default_factory=dict)  # the training run of each row's accuracy
    dropped_runs: dict[int, TrainingRun] = field(default_factory=dict)  # by row index: runs whose cloud skips drops
    accuracy: dict[RowKey, TrainingResult] = field(default_factory=dict)
    dropped: list[TrainingResult] = field(default_factory=list)  # runs whose cloud skipped the batches dropped


@dataclass
class SettingPlan:
    """One setting before it is simulated: its split search and its runs."""

    setting: Setting
    training: TrainingResults | None
    search: SplitSearch
    points: list[SweepPoint]


@contextlib.contextmanager
def named_setting(setting: Setting) -> Iterator[None]:
    """An error inside names the setting when there is a sweep."""
    try:
        yield
    except UserError as exc:
        if not setting.values:
            raise
        raise setting_error(setting.scenario.path, f"sweep setting {setting.label()}", exc) from None


def run_settings_of(grid: list[Setting], trainers: "Trainers", progress: bool, engine: str,
                    executor: Executor) -> list[SettingRun]:
    """Every setting's split search; then the runs of all settings at once through `executor`;
    then the training runs all their rows need, at once; then each setting's accuracy columns."""
    plans = [plan_setting(setting, trainers, engine) for setting in grid]
    specs = (scenario_spec(plan.setting.scenario, point, trace=plan.setting.index == 0)
             for plan in plans for point in plan.points)
    results = executor.map(partial(simulate, engine=engine), specs, sum(len(p.points) for p in plans),
                           desc=f"simulate {grid[0].scenario.name}" if progress else None, cheap=quick_run,
                           prepare=engine_preparation(engine))
    runs = [simulated_setting(plan, islice(results, len(plan.points))) for plan in plans]
    if next(results, None) is not None:  # reading past the last result ends the map and its progress bar
        raise RuntimeError("the executor returned more results than runs")
    for run in runs:
        if run.training is not None and any(run.training.known(r) is None for r in wanted_runs(run)):
            with named_setting(run.setting):
                run.training.provision()
    train_missing([(run.training, r) for run in runs if run.training is not None for r in wanted_runs(run)],
                  executor, desc=f"train {grid[0].scenario.name}" if progress and not executor.in_process else None)
    for run in runs:
        if run.training is not None:
            run.accuracy = {key: run.training.result(r) for key, r in run.row_runs.items()}
            dropped = {i: run.training.result(r) for i, r in run.dropped_runs.items()}
            add_accuracy(run.table, run.setting.scenario, run.accuracy, dropped)
            run.dropped = list(dropped.values())
    return runs


def wanted_runs(run: SettingRun) -> list[TrainingRun]:
    return [*run.row_runs.values(), *run.dropped_runs.values()]


def plan_setting(setting: Setting, trainers: "Trainers", engine: str) -> SettingPlan:
    """A setting's split search (training the points it must check) and its runs."""
    with named_setting(setting):
        scenario = setting.scenario
        training = trainers.of(scenario)
        confirm = HIERARCHICAL not in scenario.methods  # else the sweep's own hierarchical runs confirm
        search = search_splits(scenario, training, confirm=confirm, engine=engine)
        return SettingPlan(setting, training, search, sweep_points(scenario, search.split_of))


def simulated_setting(plan: SettingPlan, results: Iterable[RunResult]) -> SettingRun:
    """A setting's tables from its runs' results; the training runs its rows need (not trained yet)."""
    scenario, trace = plan.setting.scenario, plan.setting.index == 0
    with named_setting(plan.setting):
        table, by_point = scenario_table(scenario, plan.points, results)
        if HIERARCHICAL in scenario.methods:
            confirm_chosen(plan.search, table)
        run = SettingRun(plan.setting, table, plan.search, by_point if trace else {}, stall_table(by_point),
                         plan.training)
        if plan.training is not None:
            run.row_runs = training_runs(scenario, row_keys(table))
            run.dropped_runs = dropped_runs(scenario, table, by_point)
    return run


class Trainers:
    """One TrainingResults per distinct training data (a sweep may change the dataset or the
    accuracy settings); None where training is off."""

    def __init__(self, train: bool, progress: bool, executor: Executor = SERIAL):
        self.train, self.progress, self.executor, self.pool = train, progress, executor, {}

    def of(self, scenario: Scenario) -> TrainingResults | None:
        if not (self.train and scenario.accuracy.enabled):
            return None
        key = json.dumps([asdict(scenario.accuracy), scenario.workload.dataset, scenario.seed], sort_keys=True)
        if key not in self.pool:
            self.pool[key] = TrainingResults(scenario, self.progress, executor=self.executor)
        return self.pool[key]


def with_setting(table: pd.DataFrame, setting: Setting, swept: bool) -> pd.DataFrame:
    """`table` with the setting's index and one column per swept key after `scenario` (none
    without a sweep, so such runs write the columns they always did)."""
    if not swept:
        return table
    columns = {"setting": setting.index, **{key: value_text(v) for key, v in setting.values.items()}}
    front = [c for c in table.columns if c in ("scenario",)]
    out = table.assign(**columns)
    return out[front + list(columns) + [c for c in table.columns if c not in front]]


def run_scenario(path: "str | Scenario", progress: bool = True, train: bool = True, engine: str = "auto",
                 executor: Executor = SERIAL) -> pd.DataFrame:
    """Simulate (and train) every setting of the scenario at `path` through `engine` on
    `executor`, print the summary and write the outputs."""
    scenario = path if isinstance(path, Scenario) else load_scenario(path)
    if scenario.is_fleet:
        raise ValueError(f"{scenario.path} is a fleet (edges:); run it with simulator.fleet.runner.run_fleet")
    folder = scenario.output_dir
    csv_path, training_path, split_path = f"{folder}/results.csv", f"{folder}/training.csv", f"{folder}/split_points.csv"
    from ..report import REPORT_FILES

    for name in (*RUN_FILES, *REPORT_FILES, *target_files(scenario)):  # fail before long work and before writing
        check_writable(f"{folder}/{name}")
    started = time.perf_counter()
    grid = settings(scenario)
    swept = bool(scenario.sweep)
    with executor:
        runs = run_settings_of(grid, Trainers(train, progress, executor), progress, engine, executor)
    first = runs[0]
    table = pd.concat([with_setting(r.table, r.setting, swept) for r in runs], ignore_index=True)
    split_table = pd.concat([with_setting(r.search.table, r.setting, swept) for r in runs], ignore_index=True)
    trained = any(r.accuracy for r in runs)
    base = first.setting.scenario
    print(f"\n{scenario.name}: {base.summary()}")
    if swept:
        print(f"sweep: {len(grid):,} settings of {', '.join(scenario.sweep)}; below, the first "
              f"({first.setting.label()})")
    if scenario.replications > 1 and not any(r.setting.scenario.stochastic for r in runs):
        print(f"replications: {scenario.replications}, but nothing in the scenario is random (no jitter, loss, outage "
              "model or random trace offset): each run ran once")
    print("training time (simulated); hier vs X: hierarchical's time reduction (+29% = 29% less time)\n")
    print(summary_table(first.table))
    dropped = first.table[first.table.batches_dropped > 0]
    if not dropped.empty:
        share = dropped.batches_dropped.sum() / dropped.edge_batches_trained.sum()
        print(f"\nunder {base.network.uplink_buffer_policy}, hierarchical training's uplink dropped {share:.0%} of its "
              "feature batches: its time counts less work (cloud_batches_trained and the accuracy say how much less)")
    if any(m.has_auto for m in base.workload.models):
        print(f"\nseparation points chosen (split: auto):\n\n{choices_text(first.search, base.methods)}")
    if swept:
        print(f"\nhierarchical's reduction over the {len(grid):,} settings (min / median / max):\n")
        print(sweep_summary(table))
    if trained:
        note = proxy_note(base)
        print(f"\naccuracy from real training ({note or 'the simulated workload itself'}):\n")
        print(accuracy_summary(first.table))
        runs_table = pd.concat([training_table(r.accuracy, r.dropped) for r in runs]).drop_duplicates(["model", "method", "split", "cache_key", "epoch"])
        atomic_write_text(training_path, runs_table.to_csv(index=False, float_format="%.10g"))
    summary = scenario_summary(base, trained)
    if swept:
        summary["sweep"] = {"keys": list(scenario.sweep), "values": scenario.sweep, "settings": len(grid),
                            "traced_setting": first.setting.values}
    targets = match_targets(scenario, grid, table) if scenario.targets else None
    written_targets = write_targets(scenario, grid, targets) if targets is not None else ""
    remove_stale_targets(scenario)
    write_run_outputs(folder, first.results, summary)
    atomic_write_text(split_path, split_table.to_csv(index=False, float_format="%.10g"))
    stalls = pd.concat([with_setting(r.stalls, r.setting, swept) for r in runs], ignore_index=True)
    atomic_write_text(f"{folder}/stalls.csv", stalls.to_csv(index=False, float_format="%.10g"))
    atomic_write_text(f"{folder}/summary.csv", confidence_table(table).to_csv(index=False, float_format="%.10g"))
    atomic_write_text(csv_path, table.to_csv(index=False, float_format="%.10g"))
    Path(folder, "edges.csv").unlink(missing_ok=True)  # a fleet's (README, "Fleets") in the same folder
    written = f"{csv_path} ({len(table)} rows), {folder}/summary.csv, {split_path}" + (f", {training_path}" if trained else "")
    if targets is not None:
        written += ", " + written_targets
        print(f"\ntargets (published figures against the simulator):\n\n{targets_text(targets)}")
    print(f"\nwrote {written} and the event trace in {time.perf_counter() - started:.1f} s")
    from ..report import write_report, written_text

    print(f"wrote the report: {written_text(write_report(folder))}")
    return table


def sweep_summary(table: pd.DataFrame) -> str:
    """Per model and rate: hierarchical's reduction against each baseline over the settings."""
    hier = table[table.method == "hierarchical"]
    out = {}
    for baseline in ("split_learning", "full_cloud"):
        column = f"reduction_vs_{baseline}"
        if hier[column].notna().any():
            stats = hier.groupby(["model", "uplink_mbps"], sort=False)[column]
            out[f"vs {baseline}"] = [f"{reduction_text(lo)} / {reduction_text(mid)} / {reduction_text(hi)}"
                                     for lo, mid, hi in zip(stats.min(), stats.median(), stats.max())]
            index = stats.min().index
    return pd.DataFrame(out, index=index).to_string() if out else "(no baseline in methods)"


def confirm_chosen(search: SplitSearch, table: pd.DataFrame) -> None:
    """Fill des_time_s of each chosen point from the sweep's own hierarchical run."""
    first = table[(table.method == "hierarchical") & (table.replication == 0)]
    simulated = first.set_index(["model", "uplink_mbps", "split"]).total_time_s
    chosen = search.table.chosen.astype(bool)
    keys = list(zip(search.table.model[chosen], search.table.uplink_mbps[chosen], search.table.split[chosen]))
    search.table.loc[chosen, "des_time_s"] = [simulated.get(key, math.nan) for key in keys]


def choices_text(search: SplitSearch, methods: list[str]) -> str:
    """One line per model, rate and method that cuts the network: the chosen point, its edge
    memory and the reason."""
    table = search.table
    lines = []
    for (model, rate), rows in table.groupby(["model", "uplink_mbps"], sort=False):
        for method, chosen, memory, reason in ((HIERARCHICAL, "chosen", "edge_memory_mib", "reason"),
                                               (SPLIT_LEARNING, "split_learning_chosen",
                                                "split_learning_edge_memory_mib", "split_learning_reason")):
            picked = rows[rows[chosen].fillna(False).astype(bool)]
            if method in methods and not picked.empty:
                row = picked.iloc[0]
                lines.append(f"  {model:<9} {rate:>7g} Mbit/s  {method:<15} {row.split:<9} {row[memory]:7.1f} MiB  "
                             f"{row[reason]}")
    return "\n".join(lines)
