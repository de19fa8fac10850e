"""What every report figure shares: one colour per method, axis formats, PNG output.

Figures are drawn with matplotlib's object-oriented API on the Agg canvas (no pyplot, no
global backend switch), rendered to PNG bytes once, then written atomically and embedded
in report.html from the same bytes.
"""
import io
import math
from dataclasses import dataclass

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, LogLocator, NullFormatter, NullLocator

# Okabe-Ito colours (distinguishable with the common colour-vision deficiencies); the same in every figure.
METHOD_COLOURS = {"full_cloud": "#0072B2", "split_learning": "#E69F00", "hierarchical": "#009E73"}
OTHER_COLOUR = "#777777"
METHOD_LABELS = {"full_cloud": "full-cloud", "split_learning": "split learning", "hierarchical": "hierarchical"}
DPI = 110

# Ticks of a log time axis, seconds -> label.
DURATION_TICKS_S = {0.01: "10 ms", 0.1: "0.1 s", 1: "1 s", 10: "10 s", 60: "1 min", 600: "10 min", 3600: "1 h",
                    86400: "1 d", 864000: "10 d", 8640000: "100 d", 86400000: "1000 d"}

# Finer round durations for narrow ranges: 1-2-5 s, 10-20-30 s, 1-2-5-10-20-30 min, 1-2-3-6-12 h, 1-2-5 d, ...
FINE_DURATION_TICKS_S = sorted({k * 10.0 ** e for e in range(-2, 1) for k in (1, 2, 5)} | {10, 20, 30}
                               | {60 * k for k in (1, 2, 5, 10, 20, 30)} | {3600 * k for k in (1, 2, 3, 6, 12)}
                               | {86400 * k * 10 ** e for e in range(3) for k in (1, 2, 5)})


def colour(method: str) -> str:
    return METHOD_COLOURS.get(method, OTHER_COLOUR)


def label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


@dataclass
class ReportFigure:
    """One figure of the report: `data` is exactly what was drawn (a DataFrame for tests),
    `png` the rendered image, or None with `note` saying why the figure was skipped."""

    file_name: str
    title: str
    caption: str
    data: pd.DataFrame
    png: bytes | None
    note: str = ""
    marks: pd.DataFrame | None = None  # extra marks drawn (e.g. crossover bit rates)


def skipped(file_name: str, title: str, note: str) -> ReportFigure:
    return ReportFigure(file_name, title, "", pd.DataFrame(), None, note)


def new_figure(width_in: float, height_in: float) -> Figure:
    figure = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def render_png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def duration_axis(axis, low_s: float, high_s: float) -> None:
    """Log time axis ticked in readable durations (1 min, 1 h, 1 d, ...) spanning [low_s, high_s].

    A range holding fewer than two of those gets 1-2-5 ticks labelled in s, min, h or d.
    """
    ticks = [t for t in DURATION_TICKS_S if low_s <= t <= high_s]
    if len(ticks) < 2:
        ticks = [t for t in FINE_DURATION_TICKS_S if low_s <= t <= high_s]
    if len(ticks) >= 2:
        axis.set_major_locator(FixedLocator(ticks))
        axis.set_major_formatter(lambda value, _: duration_label(value))
    else:
        axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(lambda value, _: duration_label(value))
    axis.set_minor_locator(NullLocator())  # unlabelled minor ticks over many decades only cost drawing time


def duration_label(seconds: float) -> str:
    if seconds in DURATION_TICKS_S:
        return DURATION_TICKS_S[seconds]
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


def rate_axis(axis, rates_mbps: list[float]) -> None:
    """Log bit-rate axis ticked at decades, labelled 0.1, 1, 10, 100 (Mbit/s). One rate alone gets
    a factor of 2 either side (matplotlib would otherwise squeeze the axis to that one value)."""
    if min(rates_mbps) == max(rates_mbps):
        getattr(axis.axes, f"set_{axis.axis_name}lim")(rates_mbps[0] / 2, rates_mbps[0] * 2)
    low, high = math.floor(math.log10(min(rates_mbps))), math.ceil(math.log10(max(rates_mbps)))
    axis.set_major_locator(FixedLocator([10.0 ** k for k in range(low, high + 1)]))
    axis.set_major_formatter(lambda value, _: f"{value:g}")
    axis.set_minor_formatter(NullFormatter())
    axis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))  # fewer minor ticks: cheaper to draw, still log-looking
