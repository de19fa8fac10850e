"""Figures of a fleet run (many edge devices, one cloud; README, "Fleets"), drawn from its
results.csv and edges.csv (their columns: `fleet_document.py`).

    fig_fleet_scaling   time per epoch against the fleet size, per method and fleet mode, with
                        the fleet size at which the cloud saturates marked
    fig_fleet_spread    in one fleet, each edge's total time (coloured by group) and each group's
                        mean waits for the cloud and for the shared cell

Each takes a table and returns a ReportFigure whose `data` is exactly what it plotted (`marks`:
the saturation points, or the wait bars). A sweep's other keys are held at the first setting's
values (`one_fleet_per_size`), so a line shows the fleet size alone changing.
"""
import itertools
import math

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, NullLocator

from ..scenario.fleet import MODE_KEYS
from .data import METHOD_ORDER
from .style import (
    OTHER_COLOUR,
    ReportFigure,
    colour,
    duration_axis,
    duration_label,
    label,
    new_figure,
    render_png,
    skipped,
)

LOG_TIMES_ABOVE = 10.0  # the spread figure's time axis is logarithmic where the longest edge takes 10x the shortest
MAX_PANELS = 4  # scaling panels (model x uplink rate); beyond, only the first rate is drawn
MODE_STYLES = (("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"))  # line style and marker per fleet mode
# Okabe-Ito colours other than the methods': a colour is a group of edges here, not a method.
GROUP_COLOURS = ("#CC79A7", "#D55E00", "#56B4E9", "#000000", "#F0E442")
SAME_TIME_REL = 1e-9  # per-edge total times closer than this (relative) count as equal
SCALING_FILE, SPREAD_FILE = "fig_fleet_scaling.png", "fig_fleet_spread.png"
CONFIG = ["model", "uplink_mbps", "method", "fleet_mode"]  # one line of the scaling figure


def swept_keys(table: pd.DataFrame, first_after: str) -> list[str]:
    """The swept columns: those after `setting` up to `first_after` (results.csv: model,
    edges.csv: final_accuracy); none without a sweep."""
    if "setting" not in table.columns:
        return []
    after = list(table.columns)[list(table.columns).index("setting") + 1:]
    return list(itertools.takewhile(lambda column: column != first_after, after))


def same(values: pd.Series, value) -> pd.Series:
    """values == value, where NaN equals NaN (an uplink rate each group sets for itself)."""
    return values.isna() if pd.isna(value) else values == value


def unique(values: pd.Series) -> list:
    """Values in order of appearance, NaN once."""
    return list(pd.unique(values))


def one_fleet_per_size(table: pd.DataFrame, size: str, keys: list[str]) -> tuple[pd.DataFrame, dict]:
    """The rows of `table` that differ in fleet size (column `size`) alone, and the keys held.

    A swept key that moves the mean fleet size (`edges.0.count`) varies, and so do MODE_KEYS; every
    other swept key is held at the first setting's value. Of settings that reach one fleet size two ways (10 + 20 edges
    and 20 + 10), the first setting's rows are kept."""
    if not keys:
        return table, {}
    moving = [k for k in keys if table.groupby(k, dropna=False, sort=False)[size].mean().nunique() > 1]
    first = table[table.setting == table.setting.min()].iloc[0]
    held = {k: first[k] for k in keys if k not in moving and k not in MODE_KEYS}
    rows = table
    for key, value in held.items():
        rows = rows[same(rows[key], value)]
    lowest = rows.groupby(["model", "uplink_mbps", "method", "fleet_mode", size], dropna=False).setting.transform("min")
    return rows[rows.setting == lowest], held


def rate_words(rate_mbps: float) -> str:
    return "each group's own uplink rate" if pd.isna(rate_mbps) else f"{rate_mbps:g} Mbit/s"


def saturation_edges(edges, offered_load, gpus) -> float:
    """The fleet size at which the load the edges offer the cloud first reaches its GPUs.

    With r = offered_load / gpus at the fleet sizes n (sorted), between the two sizes n0 < n1 with
    r0 < 1 <= r1, interpolated as a straight line in log-log:
        ln n* = ln n0 + (ln n1 - ln n0) * (0 - ln r0) / (ln r1 - ln r0)
    (linear in r where r0 = 0). NaN when r never crosses 1 upwards (the cloud keeps up with every
    fleet swept, or is saturated already at the smallest)."""
    ratio = np.asarray(offered_load, dtype=float) / np.asarray(gpus, dtype=float)
    points = sorted((n, r) for n, r in zip(np.asarray(edges, dtype=float), np.broadcast_to(ratio, len(edges)))
                    if math.isfinite(r))
    for (n0, r0), (n1, r1) in itertools.pairwise(points):
        if r0 < 1 <= r1:
            share = (1 - r0) / (r1 - r0) if r0 <= 0 else -math.log(r0) / math.log(r1 / r0)
            return math.exp(math.log(n0) + share * (math.log(n1) - math.log(n0)))
    return math.nan


def saturation_points(rows: pd.DataFrame) -> pd.DataFrame:
    """Per model, rate, method and fleet mode of `rows` (one per fleet size): the cloud's GPUs,
    the smallest and largest fleet and the load offered there, and `saturation_edges`. `state`:
    saturates (within the sweep), below (never reached), already (reached at the smallest
    fleet), or unknown (no offered load)."""
    out = []
    for config, part in rows.groupby(CONFIG, dropna=False, sort=False):
        part = part.sort_values("edges")
        ratio = (part.cloud_offered_load / part.cloud_gpus).dropna()
        crossing = saturation_edges(part.edges, part.cloud_offered_load, part.cloud_gpus)
        state = ("unknown" if ratio.empty else "saturates" if math.isfinite(crossing) else
                 "already" if ratio.iloc[0] >= 1 else "below")
        out.append({**dict(zip(CONFIG, config)), "cloud_gpus": int(part.cloud_gpus.iloc[-1]),
                    "smallest_edges": int(part.edges.iloc[0]), "largest_edges": int(part.edges.iloc[-1]),
                    "load_smallest": part.cloud_offered_load.iloc[0], "load_largest": part.cloud_offered_load.iloc[-1],
                    "saturation_edges": crossing, "state": state})
    return pd.DataFrame(out, columns=[*CONFIG, "cloud_gpus", "smallest_edges", "largest_edges", "load_smallest",
                                      "load_largest", "saturation_edges", "state"])


def method_order(methods) -> list[str]:
    present = list(dict.fromkeys(methods))
    return [m for m in METHOD_ORDER if m in present] + [m for m in present if m not in METHOD_ORDER]


def in_order(rows: pd.DataFrame, size: str) -> pd.DataFrame:
    """`rows` by method (the palette's order), fleet mode (first appearance) and fleet size."""
    methods, modes = method_order(rows.method), unique(rows.fleet_mode)
    rank = lambda column: column.map(methods.index) if column.name == "method" else (
        column.map(modes.index) if column.name == "fleet_mode" else column)
    return rows.sort_values(["method", "fleet_mode", size], key=rank, kind="stable")


def held_text(held: dict) -> str:
    return (" Other swept keys at the first setting's values: " + ", ".join(f"{k} = {v}" for k, v in held.items())
            + "." if held else "")


def fig_fleet_scaling(results: pd.DataFrame) -> ReportFigure:
    """Time per epoch (log) against the fleet size `edges` (log), a line per method and fleet mode
    (colour: method; line style: mode), a panel per model and uplink rate; the cloud's saturation
    point (`saturation_points`) a dashed vertical line of the method's colour."""
    title = "Fleet scaling: time per epoch against the number of edges"
    rows, held = one_fleet_per_size(results, "edges", swept_keys(results, "model"))
    if rows.edges.nunique() < 2:
        return skipped(SCALING_FILE, title, "one fleet size only (sweep `edges[].count` to see the scaling)")
    models, rates = unique(rows.model), unique(rows.uplink_mbps)
    shown = ""
    if len(models) * len(rates) > MAX_PANELS:
        shown = f" Drawn at {rate_words(rates[0])} only, the first of {len(rates)} rates (results.csv has them all)."
        rates = rates[:1]
    keep = rows.model.isin(models) & pd.concat([same(rows.uplink_mbps, r) for r in rates], axis=1).any(axis=1)
    columns = [*CONFIG, "edges", "time_per_epoch_s", "cloud_offered_load", "cloud_gpus"]
    data = in_order(rows[keep], "edges")[columns].reset_index(drop=True)
    marks = saturation_points(data)
    figure = new_figure(max(6.4, 4.4 * len(rates) + 0.4), 3.3 * len(models) + 0.9)
    axes = figure.subplots(len(models), len(rates), squeeze=False)
    handles = {}
    for (i, model), (j, rate) in itertools.product(enumerate(models), enumerate(rates)):
        axis, panel = axes[i][j], data[(data.model == model) & same(data.uplink_mbps, rate)]
        for method in method_order(panel.method):
            modes = unique(panel[panel.method == method].fleet_mode)
            for mode, (style, marker) in zip(modes, itertools.cycle(MODE_STYLES)):
                line = panel[(panel.method == method) & (panel.fleet_mode == mode)]
                axis.plot(line.edges, line.time_per_epoch_s, ls=style, marker=marker, ms=4, color=colour(method))
                handles[f"{label(method)} ({mode})"] = Line2D([], [], ls=style, marker=marker, color=colour(method))
            points = marks[(marks.model == model) & same(marks.uplink_mbps, rate) & (marks.method == method)]
            for edges in sorted({float(f"{n:.3g}") for n in points.saturation_edges.dropna()}):
                axis.axvline(edges, color=colour(method), ls=(0, (5, 3)), lw=1, alpha=0.8)
                axis.annotate(f"{label(method)} saturates: {edges:.3g}", (edges, 1), xycoords=("data", "axes fraction"),
                              xytext=(-3, -4), textcoords="offset points", rotation=90, ha="right", va="top",
                              fontsize=7, color=colour(method))
        axis.set_xscale("log")
        axis.set_yscale("log")
        sizes = sorted(set(panel.edges))
        axis.xaxis.set_major_locator(FixedLocator(sizes if len(sizes) <= 8 else sizes[::math.ceil(len(sizes) / 8)]))
        axis.xaxis.set_major_formatter(lambda value, _: f"{value:g}")
        axis.xaxis.set_minor_locator(NullLocator())
        times = panel.time_per_epoch_s[panel.time_per_epoch_s > 0]
        if not times.empty:
            duration_axis(axis.yaxis, times.min(), times.max())
        axis.set_title(f"{model}, {rate_words(rate)}", fontsize=9)
        axis.set_xlabel("edges in the fleet")
        axis.set_ylabel("time per epoch")
        axis.grid(True, alpha=0.3)
    handles["cloud saturates"] = Line2D([], [], color=OTHER_COLOUR, ls=(0, (5, 3)), lw=1)
    figure.legend(handles=list(handles.values()), labels=list(handles), loc="outside upper center",
                  ncols=2, fontsize=8, frameon=False)
    caption = ("Simulated time per epoch against the number of edges in the fleet (both log scales), one line per "
               "method and fleet mode (line style: mode). A dashed vertical line marks where the cloud saturates: "
               "the fleet size at which the work the edges offer it reaches its GPUs (cloud_offered_load = "
               "cloud_gpus, interpolated in log-log between the fleet sizes either side); beyond it edges queue for "
               "the cloud." + held_text(held) + shown)
    return ReportFigure(SCALING_FILE, title, caption, data, render_png(figure), marks=marks)


def spread_fleet(edges: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The edges.csv rows of the fleet the spread figure shows: the first model and uplink rate,
    the largest fleet (other swept keys held, `one_fleet_per_size`); and that fleet in words."""
    rows, held = one_fleet_per_size(edges, "fleet_edges", swept_keys(edges, "final_accuracy"))
    model, rate = rows.model.iloc[0], rows.uplink_mbps.iloc[0]
    rows = rows[(rows.model == model) & same(rows.uplink_mbps, rate)]
    rows = rows[rows.fleet_edges == rows.fleet_edges.max()]
    return rows, f"{model}, {rate_words(rate)}, {int(rows.fleet_edges.iloc[0])} edges." + held_text(held)


def heterogeneous(rows: pd.DataFrame) -> bool:
    """Two groups or more, or edges of one method and mode that took different times."""
    spread = rows.groupby(["method", "fleet_mode"]).total_time_s.agg(lambda t: t.max() - t.min() > SAME_TIME_REL
                                                                     * max(1.0, abs(t.max())))
    return rows.group.nunique() >= 2 or bool(spread.any())


def fig_fleet_spread(edges: pd.DataFrame) -> ReportFigure:
    """In one fleet (`spread_fleet`), per method and mode: each edge's total time as a point
    (spread evenly across the column, coloured by group), and below, per group, the mean wait
    for the cloud (solid bar) and for the shared cell (hatched). `data`: the points and their x;
    `marks`: the bars."""
    title = "Fleet spread: each edge's training time and its waits"
    rows, where = spread_fleet(edges)
    if not heterogeneous(rows):
        return skipped(SPREAD_FILE, title, "a homogeneous fleet: every edge took the same time")
    columns = list(dict.fromkeys((m, mode) for m in method_order(rows.method)
                                 for mode in unique(rows[rows.method == m].fleet_mode)))
    groups = unique(rows.group)
    colours = {g: GROUP_COLOURS[i] if i < len(GROUP_COLOURS) else OTHER_COLOUR for i, g in enumerate(groups)}
    cell = bool(rows.wait_cell_s.fillna(0).gt(0).any())
    kinds = ["wait_cloud_s", "wait_cell_s"] if cell else ["wait_cloud_s"]
    figure = new_figure(max(6.0, 1.6 * len(columns) + 1.5), 6.2)
    top, bottom = figure.subplots(2, 1, sharex=True)
    points, bars = [], []
    width = 0.8 / (len(groups) * len(kinds))
    for x, (method, mode) in enumerate(columns):
        part = rows[(rows.method == method) & (rows.fleet_mode == mode)].sort_values("edge")
        offsets = np.linspace(-0.3, 0.3, len(part)) if len(part) > 1 else np.zeros(1)
        points.append(part[["method", "fleet_mode", "group", "edge", "total_time_s"]].assign(x=x + offsets))
        waits = part.groupby("group", sort=False).agg(edges=("edge", "size"), wait_cloud_s=("wait_cloud_s", "mean"),
                                                      wait_cell_s=("wait_cell_s", "mean"))
        for k, (group, kind) in enumerate(itertools.product(waits.index, kinds)):
            position = x - 0.4 + width * (k + 0.5)
            bottom.bar(position, waits.loc[group, kind], width, color=colours[group], edgecolor="white",
                       hatch="//" if kind == "wait_cell_s" else None, alpha=0.6 if kind == "wait_cell_s" else 1)
        bars += [{"method": method, "fleet_mode": mode, "group": g, **waits.loc[g].to_dict()} for g in waits.index]
    data = pd.concat(points, ignore_index=True)
    top.scatter(data.x, data.total_time_s, c=[colours[g] for g in data.group], s=max(6.0, 60 / math.sqrt(len(data)
                                                                                                     / len(columns))),
                alpha=0.8, lw=0)
    low_s, high_s = data.total_time_s.min(), data.total_time_s.max()
    if low_s > 0 and high_s / low_s > LOG_TIMES_ABOVE:
        top.set_yscale("log")
        duration_axis(top.yaxis, low_s, high_s)
    for axis in (top, bottom):
        axis.yaxis.set_major_formatter(lambda value, _: duration_label(value))
    top.set_ylabel("total time of each edge")
    bottom.set_ylabel("mean wait per edge")
    bottom.set_xticks(range(len(columns)), [f"{label(m)}\n{mode}" for m, mode in columns], fontsize=7)
    for axis in (top, bottom):
        axis.grid(True, axis="y", alpha=0.3)
    handles = [Patch(color=colours[g], label=str(g)) for g in groups]
    handles.append(Patch(facecolor="#888888", edgecolor="white", label="waiting for the cloud"))
    if cell:
        handles.append(Patch(facecolor="#888888", alpha=0.6, hatch="//", edgecolor="white",
                             label="waiting for the shared cell"))
    figure.legend(handles=handles, loc="outside upper center", ncols=min(len(handles), 4), fontsize=8, frameon=False)
    caption = (f"One fleet: {where} Top: each edge's total training time, one point per edge, coloured by its "
               "group and spread across its method's column. Bottom: per group, the mean time an edge waited for the "
               "cloud" + (" (solid) and for the shared cell's uplink (hatched)." if cell else "."))
    return ReportFigure(SPREAD_FILE, title, caption, data, render_png(figure), marks=pd.DataFrame(bars))
