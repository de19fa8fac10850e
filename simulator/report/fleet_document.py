"""The report of a fleet run (many edge devices, one cloud; README, "Fleets"): report.md,
report.html and the figures of `fleet.py`, from the files the fleet runner leaves in its folder.

results.csv, one row per (setting, model, uplink rate, method, fleet_mode):
    scenario, [setting, <swept keys...>: only with a sweep, one column per key, e.g. `edges.0.count`],
    model, dataset, method (full_cloud | split_learning | hierarchical), fleet_mode (full_cloud: once |
    every_epoch; split_learning: sequential | parallel; hierarchical: "<fifo | round_robin>, edge_sync
    <none | epoch>"), split, codec, uplink_mbps (NaN: every group sets its own rate), replication (the
    report draws replication 0), cell_uplink_mbps
    (NaN: no shared cell), edges (fleet size), groups, cloud_gpus, epochs, total_time_s,
    time_per_epoch_s, cloud_busy_s, cloud_utilisation (busy GPU-s / (cloud_gpus x total_time_s), 0..1),
    cloud_offered_load (GPUs' worth of work the edges would offer an infinitely fast cloud: it
    saturates where this reaches cloud_gpus), bytes_up, bytes_down, sync_bytes (weight hand-over and
    averaging, included in bytes_up/down), batches_trained, batches_dropped, mean_wait_cloud_s,
    mean_wait_cell_s, final_accuracy, early_exit_accuracy (NaN: not trained), accuracy_partition (iid,
    dirichlet ALPHA, pooled), accuracy_proxy (text)
edges.csv, one row per edge of each of those runs:
    method, group (its group's name), edge (0-based across the fleet), total_time_s, wait_cloud_s,
    wait_cell_s, bytes_up, bytes_down, batches_trained, batches_dropped, model, fleet_mode, split,
    uplink_mbps, replication, sync_bytes, fleet_edges (fleet size), [setting, <swept keys...>], final_accuracy,
    early_exit_accuracy (NaN: not trained)
scenario.json (optional) what was simulated; read for name, description, cloud.name and the groups
    (`edges`: name, count, compute, network.uplink_mbps); results.csv says the rest.
"""
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..core.errors import UserError
from ..core.text import bytes_text, duration_text, percent_text
from ..core.typed import read_json
from .data import read_csv
from .fleet import (
    fig_fleet_scaling,
    fig_fleet_spread,
    in_order,
    method_order,
    one_fleet_per_size,
    rate_words,
    same,
    saturation_points,
    spread_fleet,
    swept_keys,
    unique,
)
from .render import write_document
from .style import ReportFigure, label

FLEET_FIGURES = (fig_fleet_scaling, fig_fleet_spread)
FLEET_REPORT_FILES = ("report.md", "report.html", *(f"{draw.__name__}.png" for draw in FLEET_FIGURES))
REQUIRED = {"results.csv": ["model", "method", "fleet_mode", "uplink_mbps", "edges", "cloud_gpus", "time_per_epoch_s",
                            "cloud_utilisation", "cloud_offered_load", "bytes_up", "final_accuracy",
                            "early_exit_accuracy"],
            "edges.csv": ["method", "group", "edge", "total_time_s", "wait_cloud_s", "wait_cell_s", "model",
                          "fleet_mode", "uplink_mbps", "fleet_edges", "early_exit_accuracy"]}


@dataclass
class FleetRun:
    """A fleet run folder's tables; `scenario` None where scenario.json is absent."""

    folder: Path
    results: pd.DataFrame
    edges: pd.DataFrame
    scenario: dict | None


def is_fleet_run(folder: str | Path) -> bool:
    """Whether `folder` holds a fleet run: its scenario.json says so (`"fleet": true`), or, without
    one, it has an edges.csv."""
    folder = Path(folder)
    summary = folder / "scenario.json"
    if summary.is_file():
        try:
            data = read_json(summary, "run summary")
        except UserError:
            return False  # the scenario report names what is wrong with it
        return isinstance(data, dict) and data.get("fleet") is True
    return (folder / "edges.csv").is_file()


def read_table(folder: Path, name: str) -> pd.DataFrame:
    table = read_csv(folder, name, REQUIRED, kind="fleet")
    if table.empty:
        raise UserError(f"{folder / name}: no rows")
    return table


def load_fleet(folder: str | Path) -> FleetRun:
    """Read a fleet run folder; a missing folder or file, or a missing column, is a UserError naming it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder (expected a fleet scenario's output folder)")
    scenario = read_json(folder / "scenario.json", "run summary") if (folder / "scenario.json").is_file() else None
    results, edges = (first_replication(read_table(folder, name)) for name in ("results.csv", "edges.csv"))
    return FleetRun(folder, results, edges, scenario if isinstance(scenario, dict) else None)


def first_replication(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of replication 0: the report draws one run of each configuration (results.csv
    and edges.csv keep every replication)."""
    if "replication" not in table.columns:
        return table
    return table[table.replication.fillna(0) == 0].reset_index(drop=True)


def values_text(values, unit: str = "") -> str:
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values) + unit


def groups_text(run: FleetRun) -> str:
    """'cameras: 8 edges (cpu, 2 Mbit/s); gateways: 2 edges' from scenario.json, else edges.csv's largest fleet."""
    groups = (run.scenario or {}).get("edges")
    swept = ((run.scenario or {}).get("sweep") or {}).get("values") or {}
    if isinstance(groups, list) and groups and all(isinstance(g, dict) for g in groups):
        def one(i: int, g: dict) -> str:
            rate = (g.get("network") or {}).get("uplink_mbps")
            extra = [x for x in (g.get("compute"), f"{rate} Mbit/s uplink" if rate is not None else None) if x]
            counts = swept.get(f"edges.{i}.count")  # a swept count: its values, not the file's
            count = f"{min(counts)}-{max(counts)}" if isinstance(counts, list) and counts else g.get("count", "?")
            return f"{g.get('name', '?')}: {count} edges" + (f" ({', '.join(extra)})" if extra else "")
        return "; ".join(one(i, g) for i, g in enumerate(groups))
    rows, _ = spread_fleet(run.edges)
    first = rows[(rows.method == rows.method.iloc[0]) & (rows.fleet_mode == rows.fleet_mode.iloc[0])]
    return "; ".join(f"{g}: {n} edges" for g, n in first.groupby("group", sort=False).size().items())


def gpus_text(gpus: int) -> str:
    return f"{gpus} GPU" if gpus == 1 else f"{gpus} GPUs"


def scenario_blocks(run: FleetRun) -> list:
    r, s = run.results, run.scenario or {}
    cut = r[r.split.notna() & (r.split.astype(str) != "")] if "split" in r.columns else r.iloc[:0]
    models = ", ".join(f"{m} (split after {split})" for m, split in
                       cut.drop_duplicates("model")[["model", "split"]].itertuples(index=False)) \
        or ", ".join(unique(r.model))
    cells = unique(r.cell_uplink_mbps) if "cell_uplink_mbps" in r.columns else [math.nan]
    cloud = s.get("cloud", {}).get("name") if isinstance(s.get("cloud"), dict) else None
    modes = "; ".join(f"{label(m)}: {', '.join(unique(r[r.method == m].fleet_mode))}" for m in method_order(r.method))
    rows = [["fleet sizes", values_text(sorted(set(r.edges)), " edges")],
            ["groups", groups_text(run)],  # scenario.json's, else the largest fleet's
            ["cloud", f"{cloud + ', ' if cloud else ''}{' or '.join(map(gpus_text, sorted(set(r.cloud_gpus))))}"
                       + " serving one queue"],
            ["uplink", "; ".join(rate_words(v) for v in unique(r.uplink_mbps))],
            ["shared cell", "none: every edge has its own link" if all(pd.isna(c) for c in cells)
             else values_text([c for c in cells if not pd.isna(c)], " Mbit/s, shared by the fleet")],
            ["workload", f"{', '.join(unique(r.dataset)) if 'dataset' in r.columns else '?'}: {models}"
             + (f"; {values_text(unique(r.epochs))} epochs" if "epochs" in r.columns else "")
             + (f"; codec {values_text(unique(r.codec))}" if "codec" in r.columns else "")],
            ["methods and fleet modes", modes]]
    keys = swept_keys(r, "model")
    rows += [[f"swept: {k}", values_text(unique(r[k]))] for k in keys]
    source = "scenario.json and results.csv" if run.scenario is not None else "results.csv (no scenario.json)"
    return [("h2", "What was simulated"), ("p", s.get("description") or ""),
            ("p", f"From {source}."), ("table", ["", "setting"], rows)]


def saturation_text(point) -> str:
    """'the cloud (1 GPU) saturates at about 23 edges under hierarchical training (fifo, edge_sync none)'."""
    method = label(point.method) + ("" if label(point.method).endswith("learning") else " training")
    under = f"under {method} ({point.fleet_mode})"
    cloud = f"the cloud ({gpus_text(point.cloud_gpus)})"
    if point.state == "saturates":
        n = point.saturation_edges
        return f"{cloud} saturates at about {n:.0f} edges {under}" if n >= 10 else \
            f"{cloud} saturates at about {n:.1f} edges {under}"
    if point.state == "already":
        return (f"{cloud} is saturated already at {point.smallest_edges} edges, the smallest fleet, {under}: "
                f"offered load {point.load_smallest:.2g} GPUs")
    if point.state == "below":
        return (f"{cloud} does not saturate up to {point.largest_edges} edges {under}: offered load "
                f"{point.load_largest:.2g} GPUs there")
    return f"{cloud}: no offered load recorded {under}"


def first_config(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of the first model at the first uplink rate."""
    model, rate = table.model.iloc[0], table.uplink_mbps.iloc[0]
    return table[(table.model == model) & same(table.uplink_mbps, rate)]


def scaling_blocks(run: FleetRun) -> list:
    rows, _ = one_fleet_per_size(run.results, "edges", swept_keys(run.results, "model"))
    rows = in_order(first_config(rows), "edges")
    table = [[label(t.method), t.fleet_mode, f"{t.edges}", duration_text(t.time_per_epoch_s),
              percent_text(t.cloud_utilisation), bytes_text(t.bytes_up / t.edges)] for t in rows.itertuples()]
    sentences = [saturation_text(p) for p in saturation_points(rows).itertuples()]
    where = f"{rows.model.iloc[0]}, {rate_words(rows.uplink_mbps.iloc[0])}"
    return [("h2", "Scaling"),
            ("p", (f"Per method and fleet mode at {where} (results.csv has every model and rate; bytes up per edge: "
                   "results.csv's bytes_up over the fleet size, weight hand-over included).")),
            ("table", ["method", "fleet mode", "edges", "time per epoch", "cloud utilisation", "bytes up per edge"],
             table),
            ("p", "Where the cloud saturates (the load the edges offer it reaches its GPUs):"),
            *[("p", f"- {sentence}.") for sentence in sentences]]


def group_blocks(run: FleetRun) -> list:
    rows, where = spread_fleet(run.edges)
    table = []
    for method in method_order(rows.method):
        for mode in unique(rows[rows.method == method].fleet_mode):
            part = rows[(rows.method == method) & (rows.fleet_mode == mode)]
            for group, g in part.groupby("group", sort=False):
                table.append([label(method), mode, str(group), f"{len(g)}", duration_text(g.total_time_s.mean()),
                              duration_text(g.total_time_s.min()), duration_text(g.total_time_s.max()),
                              duration_text(g.wait_cloud_s.mean()), duration_text(g.wait_cell_s.mean())])
    return [("h2", "Groups"), ("p", f"Per group of edges (edges.csv), in one fleet: {where}"),
            ("table", ["method", "fleet mode", "group", "edges", "mean time", "min time", "max time",
                       "mean wait for the cloud", "mean wait for the cell"], table)]


def accuracy_blocks(run: FleetRun) -> list:
    """Every trained fleet of the first model and rate: per method, fleet mode, data split and
    size, the final accuracy and the edges' early-exit accuracies (mean, and their range)."""
    r, e = run.results, run.edges
    trained = r[r.final_accuracy.notna()]
    if trained.empty:
        return []
    first = trained[(trained.model == trained.model.iloc[0]) & same(trained.uplink_mbps, trained.uplink_mbps.iloc[0])]
    partition = first.accuracy_partition if "accuracy_partition" in first.columns else pd.Series("", first.index)
    first = in_order(first.assign(accuracy_partition=partition.fillna(""))
                     .drop_duplicates(["method", "fleet_mode", "accuracy_partition", "edges"]), "edges")
    table = []
    for t in first.itertuples():
        mine = (e.model == t.model) & same(e.uplink_mbps, t.uplink_mbps) & (e.method == t.method) \
            & (e.fleet_mode == t.fleet_mode) & (e.fleet_edges == t.edges)
        if "setting" in e.columns and "setting" in first.columns:
            mine &= e.setting == t.setting
        exits = e[mine].early_exit_accuracy.dropna()
        spread = f"{percent_text(exits.min())} - {percent_text(exits.max())}" if len(exits) > 1 else "-"
        table.append([label(t.method), t.fleet_mode, t.accuracy_partition or "-", f"{t.edges}",
                      percent_text(t.final_accuracy), percent_text(exits.mean()) if not exits.empty else "-", spread])
    proxies = [p for p in unique(r.accuracy_proxy) if isinstance(p, str) and p.startswith("proxy")] \
        if "accuracy_proxy" in r.columns else []
    untrained = sorted(set(r.edges) - set(trained.edges))
    return [("h2", "Accuracy"),
            ("p", f"Real training of every fleet of up to 8 edges, at {first.model.iloc[0]}, "
                  f"{rate_words(first.uplink_mbps.iloc[0])}: the final accuracy (each edge's part with the cloud part, "
                  "weighted by the edges' shares) and each edge's early exit (its part alone), for each data split "
                  "(iid, or non-IID Dirichlet(alpha))."
                  + (f" {'; '.join(proxies)}." if proxies else "")
                  + (f" Not trained: the fleets of {values_text(untrained, ' edges')}." if untrained else "")),
            ("table", ["method", "fleet mode", "data", "edges", "final accuracy", "mean early exit",
                       "early exit, edges' range"], table)]


def fleet_blocks(run: FleetRun, figures: list[ReportFigure]) -> list:
    named = [*([run.scenario.get("name")] if run.scenario else []), *run.results.get("scenario", []), run.folder.name]
    name = next(n for n in named if isinstance(n, str) and n)
    blocks = [("h1", f"{name}: fleet training comparison")]
    blocks += scenario_blocks(run) + scaling_blocks(run) + [("h2", "Figures")]
    for number, figure in enumerate(figures, start=1):
        blocks.append(("h3", f"{number}. {figure.title}"))
        blocks.append(("figure", figure) if figure.png is not None else ("note", f"Not drawn: {figure.note}."))
    blocks += group_blocks(run) + accuracy_blocks(run)
    blocks.append(("p", ("Drawn from results.csv, edges.csv and scenario.json (where written); "
                         f"`simulate report {run.folder}` redraws it without simulating again.")))
    return blocks


def write_fleet_report(folder: str | Path) -> list[Path]:
    """Draw the report of the fleet run in `folder`; return the paths written (PNGs, report.md,
    report.html), each written whole or not at all. A figure this run does not draw is a note in
    the report, and its PNG from an earlier run is removed."""
    run = load_fleet(folder)
    figures = [fig_fleet_scaling(run.results), fig_fleet_spread(run.edges)]  # FLEET_FIGURES
    return write_document(run.folder, figures, fleet_blocks(run, figures))
