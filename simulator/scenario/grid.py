"""Sweeps and targets (README, "Sweeps", "Targets").

`sweep:` maps dotted scenario keys to lists of values; the scenario is run at every
combination of them (their product, first key outermost), the uplink rates staying the inner
axis. Each combination is a `Setting`: the scenario file's data with those values put in, then
typed, validated and loaded exactly as a scenario file is (`build.scenario_from_data`), so a
swept value is checked like a written one. `edge.profiles: DEVICE` names a set of per-model
profiles as one value.

`targets:` lists published figures, checked here; `sweep.targets` matches them against the
results.
"""
import copy
import dataclasses
import itertools
import json
import re
import typing
from dataclasses import dataclass
from typing import Any

from ..core.errors import UserError
from ..core.names import METHODS
from ..core.typed import file_fields, key_text, shown
from ..data.specs import DATASETS
from ..models import model_kind
from .build import scenario_from_data
from .config import Scenario
from .limits import MAX_SWEEP_RUNS, MAX_SWEEP_VALUES

SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,79}")  # a target's name names its file
# Keys a sweep cannot vary: its own sections, the names of the outputs, and the inner axis.
NOT_SWEPT = {"sweep": "the sweep itself", "targets": "the targets", "name": "the scenario's name",
             "output_dir": "the output folder", "description": "the description",
             "network.uplink_mbps": "the inner axis of every setting already; list the rates there",
             "network.trace_scale": "the inner axis with an uplink trace already; list the scales there",
             "replications": "the number of runs of every setting; set it once"}


# What a target can check: the numeric columns of results.csv (sweep.runner.RESULT_COLUMNS).
METRICS = ("reduction_vs_split_learning", "reduction_vs_full_cloud", "total_time_s", "analytic_time_s", "bytes_up",
           "bytes_down", "raw_bytes_sent", "edge_busy_frac", "uplink_busy_frac", "downlink_busy_frac",
           "cloud_busy_frac", "max_uplink_backlog", "edge_batches_trained", "cloud_batches_trained",
           "batches_dropped", "final_accuracy", "early_exit_accuracy")


@dataclass(frozen=True)
class Setting:
    """One combination of swept values and the scenario it makes (the base scenario when there
    is no sweep)."""

    index: int
    values: dict[str, Any]  # swept key -> value, as written in the sweep
    scenario: Scenario

    def label(self) -> str:
        return ", ".join(f"{key}={value_text(value)}" for key, value in self.values.items()) or "the scenario"


def value_text(value: Any) -> Any:
    """A swept value as a results.csv cell: numbers and strings as they are, anything else as JSON."""
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def check_key(scenario: Scenario, key: str) -> None:
    """`key` names a field of the scenario's dataclasses, one per dot, and may be swept."""
    file = scenario.path
    if key in NOT_SWEPT:
        raise UserError(f"{file}: sweep.{key_text(key)} cannot be swept: it is {NOT_SWEPT[key]}")
    cls, walked, value = Scenario, [], scenario
    parts = key.split(".")
    while parts:
        part = parts.pop(0)
        fields, hints = file_fields(cls)
        if part not in fields:
            where = f" of {'.'.join(walked)}" if walked else ""
            raise UserError(f"{file}: sweep.{key_text(key)} is not a scenario key; valid keys{where}: "
                            + ", ".join(f for f in fields if ".".join([*walked, f]) not in NOT_SWEPT))
        walked.append(part)
        value = getattr(value, part, None)
        hint = hints[part]
        if typing.get_origin(hint) is list and parts and dataclasses.is_dataclass(typing.get_args(hint)[0]):
            index = parts.pop(0)  # a list of sections (edges): one of them by its index, edges.0.count
            items = value if isinstance(value, list) else []
            if not index.isdigit() or int(index) >= len(items):
                raise UserError(f"{file}: sweep.{key_text(key)}: {'.'.join(walked)} has {len(items)} entries; name "
                                f"one by its index, 0 to {len(items) - 1} (e.g. {'.'.join(walked)}.0.count)")
            walked.append(index)
            value, cls = items[int(index)], typing.get_args(hint)[0]
            continue
        cls = next((t for t in (hint, *getattr(hint, "__args__", ())) if dataclasses.is_dataclass(t)), None)
        if cls is None and parts:
            raise UserError(f"{file}: sweep.{key_text(key)}: {'.'.join(walked)} has no keys inside it; sweep "
                            f"{'.'.join(walked)} itself")


def with_values(data: Any, values: dict[str, Any]) -> dict:
    """A deep copy of the file's data without sweep and targets, with `values` put in at their dotted keys."""
    out = copy.deepcopy(data) if isinstance(data, dict) else {}
    out.pop("sweep", None)
    out.pop("targets", None)
    for key, value in values.items():
        node = out
        *parents, last = key.split(".")
        for part in parents:
            if isinstance(node, list):  # a list of sections (edges.0.count): check_key checked the index
                node = node[int(part)]
                continue
            if not isinstance(node.get(part), (dict, list)):
                node[part] = {}
            node = node[part]
        if isinstance(node, list):
            node[int(last)] = copy.deepcopy(value)
        else:
            node[last] = copy.deepcopy(value)
    return out


def setting_error(file: str, where: str, exc: UserError) -> UserError:
    message = str(exc)
    message = message[len(file) + 2:] if message.startswith(f"{file}: ") else message
    return UserError(f"{file}: {where}: {message}")


def build_setting(scenario: Scenario, values: dict[str, Any], where: str) -> Scenario:
    try:
        return scenario_from_data(with_values(scenario.data, values), scenario.path)
    except UserError as exc:
        raise setting_error(scenario.path, where, exc) from None


def check_sweep(scenario: Scenario) -> None:
    """Every key sweepable, every value list non-empty and without repeats, every value valid
    on its own, and the grid within MAX_SWEEP_RUNS."""
    file = scenario.path
    for key, values in scenario.sweep.items():
        check_key(scenario, key)
        if not values:
            raise UserError(f"{file}: sweep.{key_text(key)} is empty; list at least one value")
        MAX_SWEEP_VALUES.check(file, f"the number of sweep.{key_text(key)} values", len(values))
        texts = [json.dumps(float(v) if isinstance(v, int) and not isinstance(v, bool) else v, sort_keys=True)
                 for v in values]  # 1 and 1.0 are one setting
        for i, text in enumerate(texts):
            if text in texts[:i]:
                raise UserError(f"{file}: sweep.{key_text(key)}[{i}] {shown(values[i])} is listed twice")
    settings = 1
    for values in scenario.sweep.values():
        settings *= len(values)
    runs = len(scenario.workload.models) * len(scenario.network.uplink_mbps) * len(scenario.methods)
    MAX_SWEEP_RUNS.check(file, f"{settings:,} sweep settings x {runs:,} runs each =", settings * runs)
    for key, values in scenario.sweep.items():
        for i, value in enumerate(values):
            build_setting(scenario, {key: value}, f"sweep.{key_text(key)}[{i}] {shown(value)}")


def check_targets(scenario: Scenario) -> None:
    file = scenario.path
    for i, target in enumerate(scenario.targets):
        key = f"targets[{i}]"
        try:
            model_kind(target.model)
        except UserError as exc:
            raise UserError(f"{file}: {key}.model: {exc}") from None
        if target.dataset not in DATASETS:
            raise UserError(f"{file}: {key}.dataset {shown(target.dataset)} is not valid; valid: "
                            f"{', '.join(DATASETS)}")
        if target.method not in METHODS:
            raise UserError(f"{file}: {key}.method {shown(target.method)} is not valid; valid: {', '.join(METHODS)}")
        if target.metric not in METRICS:
            raise UserError(f"{file}: {key}.metric {shown(target.metric)} is not valid; valid: {', '.join(METRICS)}")
        if not target.tolerance >= 0:
            raise UserError(f"{file}: {key}.tolerance must be >= 0, got {target.tolerance:g}")
        rates = scenario.network.uplink_mbps
        for j, rate in enumerate(target.uplink_mbps):
            if rate not in rates:
                raise UserError(f"{file}: {key}.uplink_mbps[{j}] {rate:g} is not one of network.uplink_mbps "
                                f"({', '.join(f'{r:g}' for r in rates)})")
        models = {m.name for m in scenario.workload.models}
        if target.model not in models and "workload.models" not in scenario.sweep:
            raise UserError(f"{file}: {key}.model {target.model!r} is not in workload.models ({', '.join(models)})")
        needs = [target.method] + [b for b in ("split_learning", "full_cloud") if target.metric == f"reduction_vs_{b}"]
        methods = {*scenario.methods, *(m for ms in scenario.sweep.get("methods", []) for m in ms)}
        missing = [m for m in needs if m not in methods]
        if missing:
            raise UserError(f"{file}: {key}: {target.metric} of {target.method} needs {missing[0]} in methods "
                            f"({', '.join(scenario.methods)})")
        if target.metric in ("final_accuracy", "early_exit_accuracy") and not scenario.accuracy.enabled:
            raise UserError(f"{file}: {key}.metric {target.metric} needs real training; accuracy.enabled is false")
        datasets = {scenario.workload.dataset, *scenario.sweep.get("workload.dataset", [])}
        if target.dataset not in datasets:
            raise UserError(f"{file}: {key}.dataset {target.dataset!r} is never simulated; the scenario runs "
                            f"{', '.join(sorted(map(str, datasets)))} (workload.dataset, or sweep it)")
    names = [target_name(t) for t in scenario.targets]
    for i, name in enumerate(names):
        if not SAFE_NAME.fullmatch(name):
            raise UserError(f"{file}: targets[{i}].name {shown(name)} is not a file name; use 1-80 letters, digits, "
                            "'.', '_' or '-', not starting with '.' (it names targets/<name>.yaml)")
        if name in names[:i]:
            raise UserError(f"{file}: targets[{i}].name {name!r} is given twice; give each target its own name")


def target_name(target) -> str:
    return target.name or f"{target.model}_{target.dataset}_{target.metric}"


def check_study(scenario: Scenario) -> None:
    """The sweep and the targets of a freshly loaded scenario."""
    check_sweep(scenario)
    check_targets(scenario)


def settings(scenario: Scenario) -> list[Setting]:
    """Every combination of the swept values, first key outermost, each loaded and validated;
    the scenario itself when there is no sweep."""
    if not scenario.sweep:
        return [Setting(0, {}, scenario)]
    keys = list(scenario.sweep)
    out = []
    for index, combination in enumerate(itertools.product(*scenario.sweep.values())):
        values = dict(zip(keys, combination))
        where = f"sweep setting {Setting(index, values, scenario).label()}"
        out.append(Setting(index, values, build_setting(scenario, values, where)))
    return out
