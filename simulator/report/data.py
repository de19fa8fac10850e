"""The saved outputs of one scenario run, read back for the report.

A report is drawn only from the files a run leaves in its folder (`simulator/sweep/outputs.py`):
results.csv (one row per model x method x uplink rate x replication), trace.csv, backlog.csv,
epochs.csv, scenario.json, split_points.csv and, when the run trained, training.csv; summary.csv
(the 95% confidence intervals over replications) and stalls.csv (the longest uplink stall of each
run on a trace or with outages) where the run wrote them. `load_run` checks that they are there
and have the columns the figures read, so a bad folder is one line naming the file.

With replications, `RunData.results` holds one row per run configuration: the mean over the
replications of every number that differs between them (`replication_means`), so every table
and figure that shows one value per (model, method, rate) shows that mean.
"""
import io
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..core.errors import UserError
from ..core.files import MAX_TABLE_BYTES, read_text
from ..core.typed import read_json

METHOD_ORDER = ("full_cloud", "split_learning", "hierarchical")
THREE_G_MBPS = 1.0  # a 3G-class uplink; the report's "typical low rate" is the swept rate nearest to it

REQUIRED_COLUMNS = {
    "results.csv": ["model", "method", "uplink_mbps", "total_time_s", "reduction_vs_split_learning",
                    "reduction_vs_full_cloud", "bytes_up", "bytes_down", "raw_bytes_sent", "final_accuracy",
                    "early_exit_accuracy"],
    "trace.csv": ["model", "method", "uplink_mbps", "resource", "what", "batch", "start_s", "end_s"],
    "backlog.csv": ["model", "method", "uplink_mbps", "time_s", "backlog"],
    "epochs.csv": ["model", "method", "uplink_mbps", "epoch", "end_s"],
    "training.csv": ["model", "method", "epoch", "final_accuracy", "early_exit_accuracy"],
    "split_points.csv": ["model", "uplink_mbps", "split", "chosen", "hierarchical_time_s", "edge_memory_mib",
                         "memory_budget_mib", "fits_memory"],
    "summary.csv": ["model", "method", "uplink_mbps", "replications", "total_time_s_mean", "total_time_s_ci_low",
                    "total_time_s_ci_high"],
    "stalls.csv": ["model", "method", "uplink_mbps", "replication", "kind", "time_s", "end_s", "value"],
    "targets.csv": ["model", "dataset", "metric", "target_value", "tolerance", "uplink_mbps", "simulated_value",
                    "difference", "settings_within", "verdict", "reason", "scenario_file"],
}
SCENARIO_KEYS = ("name", "methods", "workload", "edge", "cloud", "network", "accuracy")
RUN_KEYS = ("model", "method", "uplink_mbps")  # one run configuration of a setting, over its replications


@dataclass
class RunData:
    """One run folder's tables; `training` is None when the run did not train."""

    folder: Path
    scenario: dict
    results: pd.DataFrame
    trace: pd.DataFrame
    backlog: pd.DataFrame
    epochs: pd.DataFrame
    training: pd.DataFrame | None
    split_points: pd.DataFrame | None = None  # absent in folders written before the split search
    # With a sweep (README, "Sweeps"): `results` and `split_points` hold the first setting, the
    # one traced; `sweep` every setting's results; `sweep_keys` the swept keys (its columns).
    sweep: pd.DataFrame | None = None
    sweep_keys: tuple[str, ...] = ()
    sweep_split_points: pd.DataFrame | None = None  # every setting's split_points.csv rows (None without a sweep)
    targets: pd.DataFrame | None = None  # targets.csv, where the scenario has targets
    # With replications (README, "Cellular links"): `runs` every results.csv row of the first
    # setting (one per replication; `results` their means), `summary` summary.csv of the first
    # setting, `stalls` stalls.csv; each None in folders written before them.
    runs: pd.DataFrame | None = None
    summary: pd.DataFrame | None = None
    stalls: pd.DataFrame | None = None

    @property
    def methods(self) -> list[str]:
        """Methods present in results.csv, in the canonical order (the palette's)."""
        present = set(self.results.method)
        return [m for m in METHOD_ORDER if m in present] + sorted(present - set(METHOD_ORDER))

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(self.results.model))

    @property
    def rates_mbps(self) -> list[float]:
        return sorted(set(self.results.uplink_mbps))

    @property
    def replications(self) -> int:
        """Runs per configuration (results.csv's `replication` column; 1 in older folders)."""
        runs = self.runs if self.runs is not None else self.results
        if "replication" not in runs.columns:
            return 1
        return int(runs.groupby(list(RUN_KEYS), sort=False).replication.nunique().max())

    @property
    def shaped_links(self) -> bool:
        """Whether a link follows a measured trace or has fixed outage windows (fig_link_traces)."""
        network = self.scenario.get("network", {})
        return bool(network.get("uplink_trace") or network.get("downlink_trace") or network.get("outages"))

    def interval(self, measure: str) -> pd.DataFrame:
        """The 95% confidence interval of `measure` (a summary.csv measure) per run configuration:
        model, method, uplink_mbps, replications, ci_low, ci_high; no rows without summary.csv."""
        columns = [f"{measure}_ci_low", f"{measure}_ci_high"]
        if self.summary is None or any(c not in self.summary.columns for c in columns):
            return pd.DataFrame(columns=[*RUN_KEYS, "replications", "ci_low", "ci_high"])
        table = self.summary[[*RUN_KEYS, "replications", *columns]]
        return table.rename(columns=dict(zip(columns, ("ci_low", "ci_high")))).reset_index(drop=True)


def read_csv(folder: Path, name: str, required: dict[str, list[str]] | None = None,
             kind: str = "scenario") -> pd.DataFrame:
    """`folder`/`name` as a table with the columns `required[name]` (default: a scenario run's),
    or one line saying what is wrong; `kind` names the run folder in that line."""
    path = folder / name
    if not path.exists():
        raise UserError(f"{folder}: not a {kind} run folder ({name} is missing; run `simulate SCENARIO.yaml`)")
    try:
        table = pd.read_csv(io.StringIO(read_text(path, name, MAX_TABLE_BYTES)))
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise UserError(f"{path}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    missing = [c for c in (required or REQUIRED_COLUMNS)[name] if c not in table.columns]
    if missing:
        raise UserError(f"{path}: missing column {missing[0]!r} (written by another version? run the scenario again)")
    if "uplink_mbps" in table.columns:
        try:
            table["uplink_mbps"] = table.uplink_mbps.astype(float)
        except ValueError as exc:
            raise UserError(f"{path}: column 'uplink_mbps' holds a value that is not a number ({exc})") from None
    return table


def replication_means(table: pd.DataFrame) -> pd.DataFrame:
    """One row per run configuration of `table` (results.csv): each number that differs between
    its replications is their mean, everything else replication 0's value; `replication` gives
    way to `replications` (N). A table of one replication comes back as it is."""
    if "replication" not in table.columns or table.replication.nunique() <= 1:
        return table
    keys = [k for k in ("setting",) if k in table.columns] + list(RUN_KEYS)
    numbers = [c for c in table.select_dtypes("number").columns if c not in keys and c != "replication"]
    grouped = table.groupby(keys, sort=False, dropna=False)
    first = table.loc[table.sort_values("replication", kind="stable").groupby(keys, sort=False, dropna=False)
                      .head(1).index.sort_values()]
    out = first.set_index(keys)
    differs = grouped[numbers].nunique(dropna=False).gt(1).reindex(out.index)
    out[numbers] = out[numbers].where(~differs, grouped[numbers].mean().reindex(out.index))
    out = out.assign(replications=grouped.size().reindex(out.index)).reset_index()
    columns = [c for c in table.columns if c != "replication"] + ["replications"]
    return out[columns].reset_index(drop=True)


def first_setting(table: pd.DataFrame | None) -> pd.DataFrame | None:
    """The rows of a sweep's first setting (the one traced); a table without settings as it is."""
    if table is None or "setting" not in table.columns:
        return table
    return table[table.setting == table.setting.min()].reset_index(drop=True)


def read_scenario(folder: Path) -> dict:
    path = folder / "scenario.json"
    if not path.exists():
        raise UserError(f"{folder}: not a scenario run folder (scenario.json is missing; run `simulate "
                        "SCENARIO.yaml`)")
    scenario = read_json(path, "run summary")
    missing = [k for k in SCENARIO_KEYS if not isinstance(scenario, dict) or k not in scenario]
    if missing:
        raise UserError(f"{path}: missing key {missing[0]!r}")
    return scenario


def load_run(folder: str | Path) -> RunData:
    """Read a run folder; a missing folder or file is a UserError naming it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder (expected a scenario's output folder, e.g. reports/low_bitrate)")
    results = read_csv(folder, "results.csv")
    if results.empty:
        raise UserError(f"{folder / 'results.csv'}: no rows")
    scenario = read_scenario(folder)
    tables = {name: read_csv(folder, f"{name}.csv") for name in ("trace", "backlog", "epochs")}
    optional = {name: read_csv(folder, f"{name}.csv") if (folder / f"{name}.csv").exists() else None
                for name in ("training", "split_points", "targets", "summary", "stalls")}
    sweep, keys = None, ()
    if "setting" in results.columns:
        keys = tuple(scenario.get("sweep", {}).get("keys", ()))
        missing = [k for k in keys if k not in results.columns]
        if missing:
            raise UserError(f"{folder / 'results.csv'}: missing the swept column {missing[0]!r} (run the scenario "
                            "again)")
        sweep = replication_means(results)
    sweep_split_points = optional["split_points"] if sweep is not None else None
    for name in ("split_points", "summary"):
        optional[name] = first_setting(optional[name])
    runs = first_setting(results)
    return RunData(folder=folder, scenario=scenario, results=replication_means(runs), runs=runs, sweep=sweep,
                   sweep_keys=keys, sweep_split_points=sweep_split_points, **optional, **tables)


def nearest_rate(rates_mbps: list[float], target_mbps: float = THREE_G_MBPS) -> float:
    """The swept rate nearest to `target_mbps` on a log scale (ties: the lower rate)."""
    return min(sorted(rates_mbps), key=lambda r: abs(math.log(r / target_mbps)))


def chosen_rates(rates_mbps: list[float]) -> list[float]:
    """Lowest, 3G-class (nearest 1 Mbit/s) and highest rate, without repeats, ascending."""
    rates = sorted(rates_mbps)
    return sorted({rates[0], nearest_rate(rates), rates[-1]})
