"""The comparison report of a scenario run: report.html, report.md and its PNG figures (seven;
two more on a cellular link - a trace, outages - and five more for a sweep and its targets).

    write_report(folder)  read a run folder (results.csv, trace.csv, backlog.csv, epochs.csv,
                          scenario.json, split_points.csv, training.csv if trained, summary.csv
                          and stalls.csv where written), draw the figures, write the report
                          beside them; every file written whole or not at all

A fleet's folder (its edges.csv; README, "Fleets") gets the fleet report instead
(`fleet_document.write_fleet_report`: fig_fleet_scaling.png, fig_fleet_spread.png).

Every scenario run calls it at the end; `simulate report FOLDER` calls it on saved results.
Each figure function returns a ReportFigure whose `data` is exactly what it plotted.
"""
from pathlib import Path

from .accuracy_figure import fig_time_to_accuracy
from .data import RunData, load_run
from .document import report_blocks
from .fleet_document import FLEET_REPORT_FILES, is_fleet_run, write_fleet_report
from .network_figures import fig_link_traces, fig_worst_outage
from .render import write_document
from .runtime_figures import crossovers, fig_bytes, fig_reduction, fig_time_vs_bitrate
from .split_figure import fig_split
from .style import METHOD_COLOURS, ReportFigure
from .sweep_figures import (
    fig_sweep_lines,
    fig_sweep_pairs_full_cloud,
    fig_sweep_pairs_split_learning,
    fig_targets,
)
from .trace_figures import fig_backlog, fig_timeline
from .traffic_figure import compares_traffic, fig_traffic

FIGURES = (fig_time_vs_bitrate, fig_reduction, fig_time_to_accuracy, fig_timeline, fig_backlog, fig_bytes, fig_split,
           fig_traffic, fig_link_traces, fig_worst_outage,
           fig_sweep_lines, fig_sweep_pairs_split_learning, fig_sweep_pairs_full_cloud, fig_targets)
# What write_report may write: each figure function draws the PNG of its own name (those of
# ONLY_WHERE only where the run has what they show).
REPORT_FILES = ("report.md", "report.html", *(f"{draw.__name__}.png" for draw in FIGURES))

__all__ = [
    "FIGURES",
    "FLEET_REPORT_FILES",
    "METHOD_COLOURS",
    "REPORT_FILES",
    "ReportFigure",
    "RunData",
    "crossovers",
    "draw_figures",
    "load_run",
    "write_report",
    "written_text",
]


SWEEP_FIGURES = (fig_sweep_lines, fig_sweep_pairs_split_learning, fig_sweep_pairs_full_cloud, fig_targets)


def swept(run: RunData) -> bool:
    return run.sweep is not None or run.targets is not None


def stalled(run: RunData) -> bool:
    return run.stalls is not None and not run.stalls.empty


# Figures drawn only where the run has what they show; elsewhere neither drawn nor noted.
ONLY_WHERE = {**{draw: swept for draw in SWEEP_FIGURES}, fig_link_traces: lambda run: run.shaped_links,
              fig_worst_outage: stalled, fig_traffic: compares_traffic}


def draw_figures(run: RunData) -> list[ReportFigure]:
    """Every figure; those of ONLY_WHERE (a sweep and its targets, a cellular link) where they apply."""
    return [draw(run) for draw in FIGURES if ONLY_WHERE.get(draw, lambda _: True)(run)]


def write_report(folder: str | Path) -> list[Path]:
    """Draw the report of the run in `folder`; return the paths written (PNGs, report.md, report.html).

    A figure that cannot be drawn (e.g. no training.csv) is replaced by a note in the report,
    and a stale PNG of it from an earlier run is removed.
    """
    if is_fleet_run(folder):
        return write_fleet_report(folder)
    run = load_run(folder)
    figures = draw_figures(run)
    for draw in ONLY_WHERE:  # a stale figure of an earlier run of the folder that this run does not draw
        if draw.__name__ not in {f.file_name[:-4] for f in figures}:
            (run.folder / f"{draw.__name__}.png").unlink(missing_ok=True)
    return write_document(run.folder, figures, report_blocks(run, figures))


def written_text(paths: list[Path]) -> str:
    """'reports/x/: report.html, report.md, fig_....png' for the terminal."""
    folders = {str(p.parent) for p in paths}
    if len(folders) != 1:
        return ", ".join(map(str, paths))
    return f"{folders.pop()}/: " + ", ".join(p.name for p in sorted(paths, key=lambda p: p.suffix == ".png"))
