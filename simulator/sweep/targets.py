"""Targets: published figures checked against a scenario's results (README, "Targets").

For each target, the candidates are the results.csv rows of its model, method and dataset at
its rates, one per (setting, rate). The best match is the candidate whose `metric` is closest
to the target value (the first in the sweep's order on a tie); `settings_within` counts the
candidates within the tolerance, and the target is `reproduced` when there is one. Each
target's best match is written as a stand-alone scenario (`targets/<name>.yaml`): the
scenario file with the setting's values put in, only the target's model, only its rate and
only this target, so `simulate targets/<name>.yaml` reruns it and its targets.csv gives the
same simulated value.
"""
import os
from pathlib import Path

import pandas as pd
import yaml

from ..core.files import atomic_write_text
from ..core.typed import shown
from ..scenario.build import resolve_path
from ..scenario.config import Scenario, TargetConfig
from ..scenario.grid import Setting, target_name, value_text, with_values

TARGET_COLUMNS = ["model", "dataset", "metric", "target_value", "tolerance", "uplink_mbps", "simulated_value",
                  "difference", "settings_within", "verdict", "reason", "scenario_file"]
EXTRA_COLUMNS = ["target", "method", "target_rates", "source"]  # after the swept keys; rates joined by ";"
REPRODUCED, NOT_REPRODUCED = "reproduced", "not reproduced"


def target_files(scenario: Scenario) -> list[str]:
    """The files the targets add to the output folder."""
    if not scenario.targets:
        return []
    return ["targets.csv", *(f"targets/{target_name(t)}.yaml" for t in scenario.targets)]


def candidates(target: TargetConfig, table: pd.DataFrame) -> pd.DataFrame:
    rows = table[(table.model == target.model) & (table.method == target.method) & (table.dataset == target.dataset)]
    if target.uplink_mbps:
        rows = rows[rows.uplink_mbps.isin(target.uplink_mbps)]
    return rows[rows[target.metric].notna()]


def number(value: float) -> str:
    return f"{value:.4g}"


def match(target: TargetConfig, table: pd.DataFrame, grid: list[Setting], folder: str) -> dict:
    """One row of targets.csv (TARGET_COLUMNS, the swept keys, EXTRA_COLUMNS)."""
    keys = list(grid[0].values)
    rows = candidates(target, table)
    out = {"model": target.model, "dataset": target.dataset, "metric": target.metric, "target_value": target.value,
           "tolerance": target.tolerance, "target": target_name(target), "method": target.method,
           "source": target.source, "target_rates": ";".join(f"{r:g}" for r in target.uplink_mbps),
           "scenario_file": f"{folder}/targets/{target_name(target)}.yaml"}
    if rows.empty:
        return {**out, "uplink_mbps": float("nan"), "simulated_value": float("nan"), "difference": float("nan"),
                "settings_within": 0, "verdict": NOT_REPRODUCED, "scenario_file": "",
                "reason": f"no simulated {target.metric} for {target.model} ({target.method}) on {target.dataset} "
                          "at these rates"}
    difference = rows[target.metric] - target.value
    within = difference.abs() <= target.tolerance
    best = rows.loc[difference.abs().idxmin()]
    setting = grid[int(best.setting)] if "setting" in rows else grid[0]
    at = f"{setting.label()} at {best.uplink_mbps:g} Mbit/s"
    low, high = rows[target.metric].min(), rows[target.metric].max()
    span = f"the {len(rows):,} settings x rates give {number(low)} to {number(high)}"
    if within.any():
        verdict = REPRODUCED
        reason = (f"{int(within.sum()):,} of {len(rows):,} settings x rates within +-{number(target.tolerance)}; "
                  f"closest {number(best[target.metric])} with {at}")
    else:
        verdict = NOT_REPRODUCED
        where = ("above the largest value the sweep reaches" if target.value > high else
                 "below the smallest value the sweep reaches" if target.value < low else
                 "inside that range, but no setting lands within the tolerance")
        reason = (f"no setting within +-{number(target.tolerance)}: {span}, so the target is {where}; "
                  f"closest {number(best[target.metric])} with {at}")
    return {**out, "uplink_mbps": best.uplink_mbps, "simulated_value": best[target.metric],
            "difference": best[target.metric] - target.value, "settings_within": int(within.sum()),
            "verdict": verdict, "reason": reason, **{key: value_text(setting.values[key]) for key in keys},
            "_setting": setting.index}


def match_targets(scenario: Scenario, grid: list[Setting], table: pd.DataFrame) -> pd.DataFrame:
    """targets.csv: one row per target (TARGET_COLUMNS, the swept keys, EXTRA_COLUMNS)."""
    rows = [match(target, table, grid, scenario.output_dir) for target in scenario.targets]
    columns = TARGET_COLUMNS + list(scenario.sweep) + EXTRA_COLUMNS
    return pd.DataFrame(rows).reindex(columns=[*columns, "_setting"])


def rerun_data(scenario: Scenario, setting: Setting, target: TargetConfig, rate: float, yaml_path: Path) -> dict:
    """The stand-alone scenario of `target`'s best match, its profile paths relative to the new file."""
    data = with_values(scenario.data, setting.values)
    data["name"] = f"{scenario.name}_{target_name(target)}"
    data.pop("output_dir", None)
    data["description"] = (f"Target {target_name(target)} of {scenario.path}: the best-matching setting "
                           f"({setting.label()}) at {rate:g} Mbit/s")
    network = data.setdefault("network", {})
    if setting.scenario.network.uplink_trace is not None:  # the rate is the trace's mean x one scale
        network["trace_scale"] = [setting.scenario.trace_scale(rate)]
    else:
        network["uplink_mbps"] = [rate]
    for key in ("uplink_trace", "downlink_trace"):  # resolved when loaded; relative to the new file
        path = getattr(setting.scenario.network, key)
        if path is not None:
            network[key] = os.path.relpath(Path(path).resolve(), yaml_path.parent.resolve())
    data["workload"]["models"] = [m for m in data["workload"]["models"] if m.get("name") == target.model]
    base = Path(scenario.path).resolve().parent
    for side in ("edge", "cloud"):
        profiles = getattr(setting.scenario, side).profiles  # per-model paths (a device name is expanded)
        data[side]["profiles"] = {target.model: os.path.relpath(resolve_path(profiles[target.model], base).resolve(),
                                                                yaml_path.parent.resolve())}
    written = {k: v for k, v in vars(target).items() if v not in ("", [])}
    data["targets"] = [{**written, "uplink_mbps": [rate], "name": target_name(target)}]
    return data


def write_targets(scenario: Scenario, grid: list[Setting], targets: pd.DataFrame) -> str:
    """Write each target's stand-alone scenario, then targets.csv; return what was written."""
    folder = Path(scenario.output_dir)
    for target, row in zip(scenario.targets, targets.to_dict("records")):
        if not row["scenario_file"]:  # no match: no rerun, and none left from an earlier run
            (folder / "targets" / f"{target_name(target)}.yaml").unlink(missing_ok=True)
        else:
            path = Path(row["scenario_file"])
            data = rerun_data(scenario, grid[int(row["_setting"])], target, row["uplink_mbps"], path)
            header = (f"# Stand-alone rerun of target {target_name(target)} ({shown(target.source)}).\n"
                      f"# Written by `simulate {scenario.path}`; rerun: simulate {path}\n")
            atomic_write_text(str(path), header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    atomic_write_text(str(folder / "targets.csv"),
                      targets.drop(columns="_setting").to_csv(index=False, float_format="%.10g"))
    return f"{folder}/targets.csv and {int(targets.scenario_file.astype(bool).sum())} target scenarios in {folder}/targets/"


def remove_stale_targets(scenario: Scenario) -> None:
    """Remove what an earlier run of the folder left for targets this run does not have."""
    folder = Path(scenario.output_dir)
    if not scenario.targets:
        (folder / "targets.csv").unlink(missing_ok=True)
    keep = set(target_files(scenario))
    if (folder / "targets").is_dir():
        for stale in (folder / "targets").glob("*.yaml"):
            if f"targets/{stale.name}" not in keep:
                stale.unlink(missing_ok=True)


def targets_text(targets: pd.DataFrame) -> str:
    lines = []
    for row in targets.itertuples():
        lines.append(f"  {row.target}: {row.metric} {number(row.target_value)} +-{number(row.tolerance)}, simulated "
                     f"{number(row.simulated_value)} -> {row.verdict}\n      {row.reason}")
    return "\n".join(lines)
