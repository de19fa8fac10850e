"""Runtime and edge memory against the separation point (split_points.csv), chosen points marked.

Per model, two panels sharing the x axis (the separation points in network order): above,
hierarchical training time (closed form) at the lowest, the 3G-class and the highest swept
bit rate, with a star on the point chosen at each; below, the edge's peak training memory,
with the budget (edge.memory_mib) as a dashed line and the points over it hatched.
"""
from pathlib import Path

import pandas as pd
from matplotlib.lines import Line2D

from ..core.files import atomic_write_bytes
from ..core.text import rate_text
from .data import RunData, chosen_rates
from .style import ReportFigure, duration_axis, new_figure, render_png, skipped

TITLE = "Separation point: runtime and edge memory"
FILE_NAME = "fig_split.png"
RATE_COLOURS = ("#CC79A7", "#009E73", "#56B4E9")  # Okabe-Ito, apart from the method colours' meaning
MEMORY_COLOUR = "#999999"


def split_data(table: pd.DataFrame) -> pd.DataFrame:
    """The plotted rows: every model x point at the chosen rates."""
    rates = chosen_rates(sorted(set(table.uplink_mbps)))
    columns = ["model", "uplink_mbps", "split", "hierarchical_time_s", "edge_memory_mib", "memory_budget_mib",
               "fits_memory", "chosen"]
    return table[table.uplink_mbps.isin(rates)][columns].reset_index(drop=True)


def fig_split_from_table(table: pd.DataFrame | None) -> ReportFigure:
    if table is None or table.empty:
        return skipped(FILE_NAME, TITLE, "Not drawn: this run folder has no split_points.csv.")
    data = split_data(table)
    models = list(dict.fromkeys(data.model))
    rates = sorted(set(data.uplink_mbps))
    figure = new_figure(4.4 * len(models) + 0.6, 5.6)
    axes = figure.subplots(2, len(models), squeeze=False, sharex="col", height_ratios=[3, 2])
    for column, model in enumerate(models):
        rows = data[data.model == model]
        points = list(dict.fromkeys(rows.split))
        x = {point: i for i, point in enumerate(points)}
        top, bottom = axes[0][column], axes[1][column]
        for rate, shade in zip(rates, RATE_COLOURS):
            line = rows[rows.uplink_mbps == rate]
            top.plot([x[p] for p in line.split], line.hierarchical_time_s, "o-", color=shade, ms=4)
            chosen = line[line.chosen.astype(bool)]
            top.plot([x[p] for p in chosen.split], chosen.hierarchical_time_s, "*", color=shade, ms=16,
                     markeredgecolor="black", markeredgewidth=0.6)
        top.set_yscale("log")
        duration_axis(top.yaxis, rows.hierarchical_time_s.min(), rows.hierarchical_time_s.max())
        top.set_title(model)
        top.grid(True, alpha=0.3)
        memory = rows.drop_duplicates("split")
        over = ~memory.fits_memory.fillna(True).astype(bool)
        bottom.bar([x[p] for p in memory.split], memory.edge_memory_mib.fillna(0), color=MEMORY_COLOUR,
                   hatch=None, edgecolor="black", linewidth=0.4)
        bottom.bar([x[p] for p in memory.split[over]], memory.edge_memory_mib[over], color="white", hatch="//",
                   edgecolor="black", linewidth=0.4)
        budget = memory.memory_budget_mib.dropna()
        if not budget.empty:
            bottom.axhline(budget.iloc[0], color="black", ls="--", lw=1)
            bottom.annotate(f"budget {budget.iloc[0]:g} MiB", (0, budget.iloc[0]), xytext=(2, 3),
                            textcoords="offset points", fontsize=8)
        bottom.set_xticks(range(len(points)), points, rotation=45, ha="right")
        bottom.set_xlabel("separation point (last edge block)")
        bottom.grid(True, axis="y", alpha=0.3)
        if column == 0:
            top.set_ylabel("hierarchical training time")
            bottom.set_ylabel("edge peak memory (MiB)")
    handles = [Line2D([], [], color=shade, marker="o", label=rate_text(rate)) for rate, shade in zip(rates, RATE_COLOURS)]
    handles.append(Line2D([], [], ls="", marker="*", color="white", markeredgecolor="black", ms=12,
                          label="chosen point"))
    figure.legend(handles=handles, loc="outside upper center", ncols=len(handles), frameon=False)
    caption = ("Hierarchical training time (closed form) at each separation point for the lowest, 3G-class and "
               "highest bit rate, with the point chosen at each rate starred (split: auto chooses the fastest point "
               "within the edge memory budget and the accuracy tolerance; a fixed split is starred where it is "
               "set). Below: the edge's peak training memory from the memory model; hatched bars exceed the "
               "budget (dashed).")
    return ReportFigure(FILE_NAME, TITLE, caption, data, render_png(figure))


def fig_split(run: RunData) -> ReportFigure:
    """7. Runtime and edge memory against the separation point, from split_points.csv."""
    return fig_split_from_table(run.split_points)


def write_split_figure(folder: Path, table: pd.DataFrame) -> Path:
    figure = fig_split_from_table(table)
    path = Path(folder) / FILE_NAME
    atomic_write_bytes(path, figure.png)
    return path
