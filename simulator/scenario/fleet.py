"""A fleet scenario's groups (`edges:`; README, "Fleets").

Each group is built as the one-edge scenario of one of its edges: the file's data with `edge`
= the group's profiles, compute and memory, `network` = the scenario's network with the group's
overrides put in, and `workload.train_samples` = the group's share. That scenario is typed,
validated and loaded exactly as a scenario file is (`build.scenario_from_data`), so a group's
value is checked like a written one; its errors name the group's keys (`edges[1].network.latency_ms`).
"""
import copy
import re
from typing import Any

from ..core.errors import UserError
from ..core.names import AUTO
from ..core.typed import file_fields, key_text, shown
from ..data.specs import DATASETS
from .config import PAIRED, NetworkConfig, Scenario
from .limits import MAX_FLEET_BATCHES, MAX_FLEET_EDGES

# Network keys a group cannot set, and why.
FLEET_WIDE = {"cell_uplink_mbps": "the cell is shared by the whole fleet; set network.cell_uplink_mbps",
              "codec": "the cloud part reads one encoding; set network.codec for the fleet",
              "trace_scale": "the scenario's rate axis; set network.trace_scale"}
OWN_RATE = ("uplink_mbps", "uplink_trace")  # a group with one of these does not follow the scenario's rates
# Swept keys whose runs fleet_mode tells apart (a line each in the report), or that change only
# what is trained (the data split), not the simulated times: never held at one value.
MODE_KEYS = ("fleet.split_learning", "fleet.edge_sync", "fleet.cloud_order", "full_cloud.raw_upload",
             "fleet.dirichlet_alpha")


def follows_axis(overrides: dict[str, Any]) -> bool:
    """Whether a group's uplink follows the scenario's rates (it sets neither a rate nor a trace)."""
    return not any(key in overrides for key in OWN_RATE)


def build_groups(s: Scenario, data: dict, file: str, build) -> list[Scenario]:
    """Every group of `s.edges` as a one-edge scenario (`build` = build.scenario_from_data)."""
    names = []
    total = 0
    for i, group in enumerate(s.edges):
        if group.count < 1:
            raise UserError(f"{file}: edges[{i}].count must be >= 1, got {group.count}")
        MAX_FLEET_EDGES.check(file, f"edges[{i}].count", group.count)
        group.name = group.name or f"group{i}"
        if group.name in names:
            raise UserError(f"{file}: edges[{i}].name {group.name!r} is given twice; give each group its own name")
        names.append(group.name)
        total += group.count
    MAX_FLEET_EDGES.check(file, "the fleet's edges (the sum of edges[].count)", total)
    for i, model in enumerate(s.workload.models):
        if model.has_auto:
            raise UserError(f"{file}: workload.models[{i}].split: {AUTO} is not available in a fleet; give a "
                            f"separation point (simulate models --model {model.name} lists them)")
    n = s.network
    if not n.uplink_mbps and n.uplink_trace is None and any(follows_axis(g.network) for g in s.edges):
        first = next(i for i, g in enumerate(s.edges) if follows_axis(g.network))
        raise UserError(f"{file}: network.uplink_mbps is empty, and edges[{first}] sets no rate of its own; give the "
                        f"fleet's rates in network.uplink_mbps, or edges[{first}].network.uplink_mbps")
    if (n.uplink_mbps or n.uplink_trace) and not any(follows_axis(g.network) for g in s.edges):
        key = "uplink_mbps" if n.uplink_mbps else "uplink_trace"
        raise UserError(f"{file}: network.{key} is not used: every group sets its own uplink (edges[].network); "
                        f"leave network.{key} out")
    default_share = -(-(s.workload.train_samples or DATASETS[s.workload.dataset].train_samples) // total) \
        if s.workload.dataset in DATASETS else 1
    groups = []
    for i in range(len(s.edges)):
        groups.append(build_group(s, data, file, i, default_share, build))
    batches = sum(g.workload.epochs * g.batches_per_epoch * c.count for g, c in zip(groups, s.edges))
    MAX_FLEET_BATCHES.check(file, "workload.epochs x the batches of every edge's share =", batches)
    return groups


def build_group(s: Scenario, data: dict, file: str, i: int, default_share: int, build) -> Scenario:
    group = s.edges[i]
    overrides = group.network
    valid = [k for k in file_fields(NetworkConfig)[0] if k not in FLEET_WIDE]
    for key in overrides:
        if key in FLEET_WIDE:
            raise UserError(f"{file}: edges[{i}].network.{key_text(key)} cannot be set per group: {FLEET_WIDE[key]}")
        if key not in valid:
            raise UserError(f"{file}: unknown key edges[{i}].network.{key_text(key)}; valid keys: {', '.join(valid)}")
    rate = overrides.get("uplink_mbps")
    if rate is not None and (isinstance(rate, list) and len(rate) != 1):
        raise UserError(f"{file}: edges[{i}].network.uplink_mbps must be one rate (the group's own), got {shown(rate)}")
    network = {k: copy.deepcopy(v) for k, v in (data.get("network") or {}).items() if k not in ("cell_uplink_mbps",)}
    inherited_up = network.get("uplink_trace")
    if not follows_axis(overrides):  # the group's own rate or trace replaces the scenario's
        for key in (*OWN_RATE, "trace_scale"):
            network.pop(key, None)
        if network.get("downlink_trace") == PAIRED and isinstance(inherited_up, str) and inherited_up.endswith(".up"):
            network["downlink_trace"] = inherited_up[:-3] + ".down"  # the scenario's own downlink trace
    for own, other in (("downlink_mbps", "downlink_trace"), ("downlink_trace", "downlink_mbps")):
        if own in overrides:  # the group's own downlink replaces the scenario's
            network.pop(other, None)
    if network.get("trace_offset_s") == "random" and "trace_offset_s" not in overrides \
            and not (network.get("uplink_trace") or network.get("downlink_trace") or overrides.get("uplink_trace")):
        network.pop("trace_offset_s")  # no trace left to start at random
    network.update(copy.deepcopy(overrides))
    top = {k: copy.deepcopy(v) for k, v in data.items() if k not in ("edges", "fleet", "sweep", "targets")}
    top["edge"] = {"profiles": copy.deepcopy(group.profiles), "compute": group.compute, "name": group.name,
                   **({"memory_mib": group.memory_mib} if group.memory_mib is not None else {})}
    top["network"] = network
    share = group.train_samples if group.train_samples is not None else default_share
    top["workload"] = {**(data.get("workload") or {}), "train_samples": share}
    top["cloud"] = {k: v for k, v in (data.get("cloud") or {}).items() if k != "gpus"}
    try:
        built = build(top, file)
    except UserError as exc:
        raise UserError(group_message(str(exc), file, i, group.name, overrides, group.train_samples is not None)) \
            from None
    if s.network.cell_uplink_mbps is not None:
        shaped = [k for k in ("uplink_trace", "outages", "outage_model") if getattr(built.network, k)]
        if shaped:
            where = f"edges[{i}].network" if shaped[0] in overrides else "network"
            raise UserError(f"{file}: {where}.{shaped[0]} cannot be combined with network.cell_uplink_mbps: a shared "
                            "cell needs constant-rate uplinks (use the trace's mean rate, or leave the cell out)")
    return built


def group_message(message: str, file: str, i: int, name: str, overrides: dict, own_share: bool) -> str:
    """A group scenario's error, its keys renamed to where the group's values were written."""
    body = message[len(file) + 2:] if message.startswith(f"{file}: ") else message
    body = re.sub(r"\bedge\.(profiles|compute|memory_mib|name)\b", rf"edges[{i}].\1", body)
    for key in overrides:
        body = re.sub(rf"(?<![\w.\]])network\.{re.escape(key)}\b", f"edges[{i}].network.{key}", body)
    if own_share:
        body = re.sub(r"\bworkload\.train_samples\b", f"edges[{i}].train_samples", body)
    return f"{file}: {body}" if f"edges[{i}]" in body else f"{file}: edges[{i}] ({name}): {body}"
