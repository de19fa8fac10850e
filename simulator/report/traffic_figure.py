"""Bytes sent per sample against the separation point (split_points.csv), beside the raw sample.
Drawn where a sweep changes those bytes (`compares_traffic`: a codec sweep, say).

A panel per model (one above the other), the separation points in network order on x, bytes per sample on a log y
axis: one line per codec (and per swept key that changes the bytes) for what a split method
uploads (the encoded cut tensor + label, `bytes_up_per_sample`), and the raw uint8 sample +
label full-cloud uploads (`raw_bytes_per_sample`) as a dashed black line. Points below that
line send less than the raw data.
"""
import pandas as pd
from matplotlib.lines import Line2D

from ..core.text import bytes_text
from .data import RunData
from .style import OTHER_COLOUR, ReportFigure, new_figure, render_png, skipped
from .traffic import groups, traffic_points

TITLE = "Traffic per sample against the raw data"
FILE_NAME = "fig_traffic.png"
# Okabe-Ito colours other than the methods': a line is a codec here, not a method.
CODEC_COLOURS = ("#CC79A7", "#D55E00", "#56B4E9", "#000000", "#F0E442")
RAW_COLOUR = "black"
PANEL_IN_PER_POINT = 0.32  # width per separation point, inches: room for its rotated name
PANEL_HEIGHT_IN = 2.9


def bytes_tick(n_bytes: float) -> str:
    """A log axis tick: '100 B', '1 kB', '10 kB', '1 MB'."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= size:
            return f"{n_bytes / size:g} {unit}"
    return f"{n_bytes:g} B"


def line_label(values: dict, keys: list[str]) -> str:
    """'int8', or 'int8, workload.input_size=224' where another swept key changes the bytes."""
    return ", ".join([str(values["codec"]), *(f"{key}={values[key]}" for key in keys)])


def traffic_data(run: RunData) -> tuple[pd.DataFrame | None, list[str], str]:
    """The plotted rows (model, codec, the swept keys that change the bytes, split,
    bytes_up_per_sample, raw_bytes_per_sample, line), the keys, or None and why."""
    points, keys, reason = traffic_points(run, shown=("bytes_up_per_sample", "raw_bytes_per_sample"))
    if points is None:
        return None, [], reason
    parts = [part.assign(line=line_label(values, keys)) for values, part in groups(points, keys)]
    columns = ["model", "codec", *keys, "split", "bytes_up_per_sample", "raw_bytes_per_sample", "line"]
    return pd.concat(parts, ignore_index=True)[columns], keys, ""


def compares_traffic(run: RunData) -> bool:
    """Whether the figure has lines to compare: a sweep whose settings send different bytes per
    sample (a codec, an input size); with one line per model, the report's table says it all."""
    data, _, _ = traffic_data(run)
    return data is not None and bool(data.groupby("model").line.nunique().gt(1).any())


def fig_traffic(run: RunData) -> ReportFigure:
    """Bytes per sample at each separation point per codec, the raw sample as a line (split_points.csv)."""
    data, _, reason = traffic_data(run)
    if data is None:
        return skipped(FILE_NAME, TITLE, reason.replace("Not shown", "Not drawn", 1))
    models = list(dict.fromkeys(data.model))
    lines = list(dict.fromkeys(data.line))
    colours = {line: CODEC_COLOURS[i] if i < len(CODEC_COLOURS) else OTHER_COLOUR for i, line in enumerate(lines)}
    most_points = int(data.groupby("model").split.nunique().max())
    figure = new_figure(max(6.0, PANEL_IN_PER_POINT * most_points + 1.5), PANEL_HEIGHT_IN * len(models) + 0.5)
    axes = figure.subplots(len(models), 1, squeeze=False)[:, 0]  # a row per model: deep networks have many points
    for axis, model in zip(axes, models):
        rows = data[data.model == model]
        points = list(dict.fromkeys(rows.split))
        x = {point: i for i, point in enumerate(points)}
        for line in lines:
            part = rows[rows.line == line]
            axis.plot([x[p] for p in part.split], part.bytes_up_per_sample, "o-", color=colours[line], ms=4)
        for raw in sorted(set(rows.raw_bytes_per_sample)):
            axis.axhline(raw, color=RAW_COLOUR, ls="--", lw=1)
            axis.annotate(f"raw sample + label: {bytes_text(raw)}", (0, raw), xytext=(2, 3),
                          textcoords="offset points", fontsize=8)
        axis.set_yscale("log")
        axis.yaxis.set_major_formatter(lambda value, _: bytes_tick(value))
        axis.set_title(model)
        axis.set_xticks(range(len(points)), points, rotation=45, ha="right", fontsize=8)
        axis.set_ylabel("bytes up per sample")
        axis.grid(True, alpha=0.3)
    axes[-1].set_xlabel("separation point (last edge block)")
    handles = [Line2D([], [], color=colours[line], marker="o", label=line) for line in lines]
    handles.append(Line2D([], [], color=RAW_COLOUR, ls="--", label="raw sample + label (full-cloud)"))
    figure.legend(handles=handles, loc="outside upper center", ncols=len(handles), frameon=False)
    upload = run.scenario.get("full_cloud", {}).get("raw_upload", "once").replace("_", " ")
    caption = ("Bytes a split method (hierarchical training, split learning) uploads per sample at each separation "
               "point, every epoch: the cut tensor encoded with each codec, plus the label (log scale). The dashed "
               "line is what full-cloud uploads per sample, the raw uint8 sample and its label "
               f"({upload} in this run); points below it send less than the raw data.")
    return ReportFigure(FILE_NAME, TITLE, caption, data, render_png(figure))
