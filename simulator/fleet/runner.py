"""Run a fleet scenario: every setting of its sweep, every model x rate x method through the
fleet engine, the real training of fleets of up to `MAX_TRAINED_EDGES` edges, then results.csv,
edges.csv, training.csv, scenario.json and the report, each written whole after all work is done.

Runs that are the same simulation (a sweep over a key only training reads, such as
fleet.dirichlet_alpha) are simulated once.
"""
import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from ..core.errors import UserError
from ..core.executors import SERIAL, Executor
from ..core.files import atomic_write_text, check_writable
from ..core.text import duration_text
from ..scenario.config import Scenario
from ..scenario.fleet import MODE_KEYS
from ..scenario.grid import Setting, settings, value_text
from ..sweep.outputs import RUN_FILES as ONE_EDGE_FILES
from ..training.runs import proxy_note
from .accuracy import (
    FLEET_TRAINING_COLUMNS,
    add_accuracy,
    fleet_training_runs,
    partition_text,
    train_fleets,
)
from .engine import simulate_fleet
from .runs import (
    EDGE_COLUMNS,
    FLEET_RESULT_COLUMNS,
    edge_rows,
    fleet_points,
    fleet_spec,
    result_row,
)

FLEET_FILES = ("results.csv", "edges.csv", "training.csv", "scenario.json")


def run_fleet(scenario: Scenario, progress: bool = True, train: bool = True, engine: str = "auto",
              executor: Executor = SERIAL) -> pd.DataFrame:
    """Simulate (and train) every setting of the fleet scenario `scenario`; print the summary
    and write the outputs and the report."""
    if engine == "fast":
        raise UserError(f"{scenario.path}: --engine fast does not simulate fleets (edges:); the fleet engine is "
                        "SimPy's (--engine simpy or auto)")
    from ..report import REPORT_FILES
    from ..report.fleet_document import FLEET_REPORT_FILES, write_fleet_report

    folder = scenario.output_dir
    for name in (*FLEET_FILES, *FLEET_REPORT_FILES):
        check_writable(f"{folder}/{name}")
    started = time.perf_counter()
    grid = settings(scenario)
    jobs = [(setting, point, fleet_spec(setting.scenario, point)) for setting in grid
            for point in fleet_points(setting.scenario)]
    unique = list(dict.fromkeys(spec for _, _, spec in jobs))
    with executor:
        done = dict(zip(unique, executor.map(simulate_fleet, unique, len(unique),
                                             desc=f"simulate {scenario.name}" if progress else None)))
        rows, edges = [], []
        for setting, point, spec in jobs:
            result = done[spec]
            swept = swept_columns(setting, bool(scenario.sweep))
            rows.append({**result_row(setting.scenario, point, spec, result), **swept})
            edges += [{**row, **swept} for row in edge_rows(point, spec, result)]
        table = ordered(pd.DataFrame(rows), FLEET_RESULT_COLUMNS, scenario)
        edge_table = ordered(pd.DataFrame(edges), EDGE_COLUMNS, scenario, after="fleet_edges")
        requested = train and scenario.accuracy.enabled
        runs = fleet_training_runs(jobs) if requested else {}
        trained = train_fleets(scenario, runs, progress, executor) if runs else {}
    add_accuracy(table, edge_table, jobs, runs, trained, proxy_note(scenario), requested)
    print_summary(scenario, grid, table)
    training = training_table(runs, trained)
    atomic_write_text(f"{folder}/scenario.json", json.dumps(fleet_summary(scenario, bool(trained)), indent=1) + "\n")
    if trained:
        atomic_write_text(f"{folder}/training.csv", training.to_csv(index=False, float_format="%.10g"))
    atomic_write_text(f"{folder}/edges.csv", edge_table.to_csv(index=False, float_format="%.10g"))
    atomic_write_text(f"{folder}/results.csv", table.to_csv(index=False, float_format="%.10g"))
    for name in (*ONE_EDGE_FILES, *REPORT_FILES):  # a one-edge run's files in the same folder: not this run's
        if name not in FLEET_FILES and name not in FLEET_REPORT_FILES:
            Path(folder, name).unlink(missing_ok=True)
    print(f"\nwrote {folder}/results.csv ({len(table)} rows), {folder}/edges.csv ({len(edge_table)} rows)"
          + (f", {folder}/training.csv" if trained else "") + f" in {duration_text(time.perf_counter() - started)}")
    from ..report import written_text

    print(f"wrote the report: {written_text(write_fleet_report(folder))}")
    return table


def swept_columns(setting: Setting, swept: bool) -> dict:
    if not swept:
        return {}
    return {"setting": setting.index, **{key: value_text(v) for key, v in setting.values.items()}}


def ordered(table: pd.DataFrame, columns: list[str], scenario: Scenario, after: str = "scenario") -> pd.DataFrame:
    """`table` in `columns`' order, the sweep's columns (setting, swept keys) right after `after`."""
    swept = ["setting", *scenario.sweep] if scenario.sweep else []
    for column in columns:
        if column not in table:
            table[column] = math.nan
    position = columns.index(after) + 1
    return table[columns[:position] + swept + columns[position:]]


def training_table(runs: dict, trained: dict) -> pd.DataFrame:
    out = []
    for run in dict.fromkeys(runs.values()):
        result = trained.get(run)
        if result is None:
            continue
        for epoch in result.epochs:
            out.append({"model": run.run.model, "method": run.run.method,
                        "fleet_mode": run.split_learning or (f"edge_sync {run.edge_sync}" if run.edge_sync else ""),
                        "edges": len(run.shares),
                        "partition": partition_text(run.dirichlet_alpha),
                        "split": run.run.split, "codec": run.run.codec, "dataset": run.run.dataset,
                        "width": run.run.width, "epoch": epoch.epoch, "train_loss": epoch.train_loss,
                        "exit_train_loss": epoch.exit_train_loss, "final_accuracy": epoch.final_accuracy,
                        "early_exit_accuracy": epoch.early_exit_accuracy, "wall_time_s": epoch.wall_time_s,
                        "device": result.device_name, "cache_key": run.key()})
    return pd.DataFrame(out, columns=FLEET_TRAINING_COLUMNS)


def print_summary(scenario: Scenario, grid: list[Setting], table: pd.DataFrame) -> None:
    base = grid[0].scenario
    groups = ", ".join(f"{c.count} x {c.name}" for c in base.edges)
    print(f"\n{scenario.name}: a fleet of {groups}; cloud {base.cloud.gpus} GPU(s)"
          + (f"; a {base.network.cell_uplink_mbps:g} Mbit/s cell" if base.network.cell_uplink_mbps else ""))
    if scenario.sweep:
        print(f"sweep: {len(grid):,} settings of {', '.join(scenario.sweep)}")
    swept = [k for k in scenario.sweep if k not in MODE_KEYS]  # fleet_mode tells the mode keys' runs apart
    keys = ["model", "method", "fleet_mode", "uplink_mbps", "edges", *swept]
    shown = table[[*keys, "time_per_epoch_s", "cloud_utilisation", "mean_wait_cloud_s", "mean_wait_cell_s"]] \
        .drop_duplicates(keys)
    shown = shown.assign(time_per_epoch_s=shown.time_per_epoch_s.map(duration_text),
                         cloud_utilisation=shown.cloud_utilisation.map(lambda u: f"{u:.0%}"))
    print("time per epoch (simulated), the cloud's utilisation and the mean waits per edge:\n")
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.3g}"))


def fleet_summary(scenario: Scenario, trained: bool) -> dict:
    """scenario.json of a fleet run: what was simulated, for the report."""
    groups = [{"name": c.name, "count": c.count, "compute": g.edge.compute,
               "device": next(iter(g.edge_profiles.values())).device.name, "train_samples": g.train_samples,
               "batches_per_epoch": g.batches_per_epoch, "network": c.network}
              for c, g in zip(scenario.edges, scenario.groups)]
    return {"name": scenario.name, "description": scenario.description, "path": scenario.path, "seed": scenario.seed,
            "fleet": True, "methods": list(scenario.methods), "workload": asdict(scenario.workload),
            "edges": groups, "cloud": {"name": scenario.cloud.name or next(iter(scenario.cloud_profiles.values())).device.name,
                                        "gpus": scenario.cloud.gpus},
            "network": asdict(scenario.network), "fleet_options": asdict(scenario.fleet),
            "accuracy": {**asdict(scenario.accuracy), "trained": trained,
                         "proxy": proxy_note(scenario) if trained else ""},
            **({"sweep": {"keys": list(scenario.sweep), "values": scenario.sweep}} if scenario.sweep else {})}
