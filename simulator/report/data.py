"""The saved outputs of one scenario run, read back for the report.

A report is drawn only from the files a run leaves in its folder (`simulator/sweep/outputs.py`):
results.csv (one row per model x method x uplink rate), trace.csv, backlog.csv, epochs.csv,
scenario.json, split_points.csv and, when the run trained, training.csv. `load_run` checks that they are there
and have the columns the figures read, so a bad folder is one line naming the file.
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
    "targets.csv": ["model", "dataset", "metric", "target_value", "tolerance", "uplink_mbps", "simulated_value",
                    "difference", "settings_within", "verdict", "reason", "scenario_file"],
}
SCENARIO_KEYS = ("name", "methods", "workload", "edge", "cloud", "network", "accuracy")


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
    targets: pd.DataFrame | None = None  # targets.csv, where the scenario has targets

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


def read_csv(folder: Path, name: str) -> pd.DataFrame:
    path = folder / name
    if not path.exists():
        raise UserError(f"{folder}: not a scenario run folder ({name} is missing; run `simulate SCENARIO.yaml`)")
    try:
        table = pd.read_csv(io.StringIO(read_text(path, name, MAX_TABLE_BYTES)))
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise UserError(f"{path}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    missing = [c for c in REQUIRED_COLUMNS[name] if c not in table.columns]
    if missing:
        raise UserError(f"{path}: missing column {missing[0]!r} (written by another version? run the scenario again)")
    if "uplink_mbps" in table.columns:
        try:
            table["uplink_mbps"] = table.uplink_mbps.astype(float)
        except ValueError as exc:
            raise UserError(f"{path}: column 'uplink_mbps' holds a value that is not a number ({exc})") from None
    return table


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
                for name in ("training", "split_points", "targets")}
    sweep, keys = None, ()
    if "setting" in results.columns:
        keys = tuple(scenario.get("sweep", {}).get("keys", ()))
        missing = [k for k in keys if k not in results.columns]
        if missing:
            raise UserError(f"{folder / 'results.csv'}: missing the swept column {missing[0]!r} (run the scenario "
                            "again)")
        sweep, results = results, results[results.setting == results.setting.min()].reset_index(drop=True)
        split = optional["split_points"]
        if split is not None and "setting" in split.columns:
            optional["split_points"] = split[split.setting == split.setting.min()].reset_index(drop=True)
    return RunData(folder=folder, scenario=scenario, results=results, sweep=sweep, sweep_keys=keys, **optional,
                   **tables)


def nearest_rate(rates_mbps: list[float], target_mbps: float = THREE_G_MBPS) -> float:
    """The swept rate nearest to `target_mbps` on a log scale (ties: the lower rate)."""
    return min(sorted(rates_mbps), key=lambda r: abs(math.log(r / target_mbps)))


def chosen_rates(rates_mbps: list[float]) -> list[float]:
    """Lowest, 3G-class (nearest 1 Mbit/s) and highest rate, without repeats, ascending."""
    rates = sorted(rates_mbps)
    return sorted({rates[0], nearest_rate(rates), rates[-1]})
