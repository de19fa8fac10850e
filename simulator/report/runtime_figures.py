"""Figures drawn from results.csv: training time against bit rate, hierarchical training's
runtime reduction, and the bytes that leave the device.

Every function takes the loaded run and returns a ReportFigure whose `data` holds exactly the
plotted values, copied from results.csv columns (never recomputed from the scenario). With
replications a line is the mean over them, and where N > 1 a shaded band around it is the 95%
confidence interval of summary.csv (`ci_low`..`ci_high`; an error bar where a line is one point).
"""
import math

import numpy as np
import pandas as pd
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, NullLocator

from ..core.text import bytes_text, rate_text
from .data import RunData
from .style import (
    ReportFigure,
    colour,
    duration_axis,
    label,
    new_figure,
    rate_axis,
    render_png,
    skipped,
)

BASELINES = ("split_learning", "full_cloud")
LINEAR_PERCENT = 100.0  # reduction axis: linear within +-100 %, logarithmic beyond (symlog)


def crossovers(results: pd.DataFrame) -> pd.DataFrame:
    """Bit rates where hierarchical training's time crosses a baseline's, per model.

    Between neighbouring sweep rates r0 < r1 where d = ln(T_hier / T_baseline) changes sign,
    the crossing is interpolated linearly on the log-log scale:
        ln r* = ln r0 + (ln r1 - ln r0) * d0 / (d0 - d1)
    and time_s is T_hier interpolated the same way. `hierarchical_faster` says on which side
    of r* hierarchical wins ("above" when it overtakes as the rate rises).
    """
    rows = []
    for model in dict.fromkeys(results.model):
        times = results[results.model == model].pivot_table(index="uplink_mbps", columns="method",
                                                             values="total_time_s").sort_index()
        for baseline in BASELINES:
            if "hierarchical" not in times or baseline not in times:
                continue
            both = times[["hierarchical", baseline]].dropna()
            log_rate, log_hier = np.log(both.index.to_numpy()), np.log(both.hierarchical.to_numpy())
            d = log_hier - np.log(both[baseline].to_numpy())
            for i in range(len(d) - 1):
                if d[i] * d[i + 1] < 0 or (d[i] == 0 and i > 0 and d[i - 1] * d[i + 1] < 0):
                    f = d[i] / (d[i] - d[i + 1])
                    rows.append({"model": model, "baseline": baseline,
                                 "uplink_mbps": math.exp(log_rate[i] + f * (log_rate[i + 1] - log_rate[i])),
                                 "time_s": math.exp(log_hier[i] + f * (log_hier[i + 1] - log_hier[i])),
                                 "hierarchical_faster": "above" if d[i + 1] < d[i] else "below"})
    return pd.DataFrame(rows, columns=["model", "baseline", "uplink_mbps", "time_s", "hierarchical_faster"])


def comparison(results: pd.DataFrame, model: str, baseline: str, marks: pd.DataFrame) -> str:
    """'hierarchical vs split learning: 20-67% less time' style summary from the reduction columns."""
    rows = results[(results.model == model) & (results.method == "hierarchical")]
    reduction = rows[f"reduction_vs_{baseline}"].dropna()
    if reduction.empty:
        return ""
    ratio = 1 - reduction  # hierarchical's time / the baseline's
    mine = marks[(marks.model == model) & (marks.baseline == baseline)]
    if not mine.empty:
        where = ", ".join(f"faster {m.hierarchical_faster} {rate_text(float(f'{m.uplink_mbps:.2g}'))}"
                          for m in mine.itertuples())
        return f"vs {label(baseline)}: {where}"
    if (ratio < 1).all():
        return f"vs {label(baseline)}: faster at every rate, {span(100 * reduction, '%')} less time"
    if (ratio > 1).all():
        return f"vs {label(baseline)}: slower at every rate, {span(ratio, 'x')} the time"
    return f"vs {label(baseline)}: equal at some rates"


def span(values: pd.Series, unit: str) -> str:
    """'20-67%' or '11-1,553x' (ratios below 10 with one decimal)."""
    low, high = values.min(), values.max()
    text = (lambda v: f"{v:.0f}") if unit == "%" else (lambda v: f"{v:.1f}" if v < 10 else f"{v:,.0f}")
    return f"{text(low)}{unit}" if text(low) == text(high) else f"{text(low)}-{text(high)}{unit}"


def with_interval(data: pd.DataFrame, run: RunData, measure: str, keys: list[str],
                  method: str | None = None) -> pd.DataFrame:
    """`data` with the replications and the 95% interval of `measure` (of `method`'s runs where
    given) from summary.csv: columns ci_low, ci_high, NaN with one replication or no summary.csv."""
    interval = run.interval(measure)
    if run.replications <= 1:
        interval = interval.iloc[:0]
    if method is not None:
        interval = interval[interval.method == method]
    merged = data.merge(interval[[*keys, "replications", "ci_low", "ci_high"]], on=keys, how="left")
    return merged.astype({"replications": float, "ci_low": float, "ci_high": float})


def draw_band(ax, line: pd.DataFrame, value: str, colour_: str, scale: float = 1.0,
              floor: float = -math.inf) -> None:
    """The shaded 95% interval (ci_low..ci_high, times `scale`) around one line of `value`; an error
    bar where the line is a single point. The lower edge is cut at `floor` (a log axis' bottom)."""
    band = line.dropna(subset=["ci_low", "ci_high"])
    if band.empty:
        return
    low, high = (scale * band.ci_low).clip(lower=floor), scale * band.ci_high
    if len(band) == 1:
        mean = band[value]
        ax.errorbar(band.uplink_mbps, mean, yerr=[(mean - low).clip(lower=0), (high - mean).clip(lower=0)],
                    fmt="none", ecolor=colour_, alpha=0.45, capsize=5, lw=5)
    else:
        ax.fill_between(band.uplink_mbps, low, high, color=colour_, alpha=0.18, lw=0)


def band_note(run: RunData) -> str:
    return (f" Lines are means over {run.replications} replications; the shaded band is their 95% confidence "
            "interval (Student t, summary.csv)." if run.replications > 1 and run.summary is not None else
            f" Lines are means over {run.replications} replications." if run.replications > 1 else "")


def fig_time_vs_bitrate(run: RunData) -> ReportFigure:
    """1. Total training time against uplink rate, a line per method, a panel per model (mean over
    replications, with its 95% confidence band)."""
    data = run.results[["model", "method", "uplink_mbps", "total_time_s"]].sort_values(
        ["model", "method", "uplink_mbps"]).reset_index(drop=True)
    data = with_interval(data, run, "total_time_s", ["model", "method", "uplink_mbps"])
    marks = crossovers(run.results)
    figure = new_figure(5.0 * len(run.models) + 0.4, 4.4)
    axes = figure.subplots(1, len(run.models), squeeze=False)[0]
    for ax, model in zip(axes, run.models):
        mine = data[data.model == model]
        low_s = pd.concat([mine.total_time_s, mine.ci_low[mine.ci_low > 0]]).min() / 2
        high_s = pd.concat([mine.total_time_s, mine.ci_high]).max() * 2
        for method in run.methods:
            line = data[(data.model == model) & (data.method == method)]
            ax.plot(line.uplink_mbps, line.total_time_s, "o-", color=colour(method), label=label(method), ms=4)
            draw_band(ax, line, "total_time_s", colour(method), floor=low_s)
        for m in marks[marks.model == model].itertuples():
            ax.axvline(m.uplink_mbps, color=colour(m.baseline), ls=":", lw=1.5)
            ax.plot(m.uplink_mbps, m.time_s, "o", ms=9, mfc="none", mec="black", mew=1.2)
            ax.text(m.uplink_mbps, 0.03, f" {m.uplink_mbps:.2g} Mbit/s", transform=ax.get_xaxis_transform(),
                    fontsize=8, color=colour(m.baseline), bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
        ax.set(xscale="log", yscale="log", title=model, xlabel="uplink bit rate (Mbit/s)")
        rate_axis(ax.xaxis, run.rates_mbps)
        ax.set_ylim(low_s, high_s)
        duration_axis(ax.yaxis, low_s, high_s)
        ax.grid(True, which="major", alpha=0.3)
        notes = [comparison(run.results, model, b, marks) for b in BASELINES]
        text = "\n".join(["hierarchical:"] + [n for n in notes if n]) if any(notes) else ""
        if text:
            ax.text(0.98, 0.98, text, transform=ax.transAxes, fontsize=8, va="top", ha="right",
                    bbox={"facecolor": "white", "edgecolor": "#cccccc", "alpha": 0.9})
    axes[0].set_ylabel("total training time (simulated)")
    figure.legend(*axes[0].get_legend_handles_labels(), loc="outside upper center", ncols=len(run.methods))
    if len(run.rates_mbps) == 1:
        what = "only one bit rate was swept, so each method is a single point"
    elif not marks.empty:
        what = ("a dotted line in a baseline's colour and a ring mark where hierarchical and that baseline swap "
                "places (interpolated on the log scale between sweep points)")
    elif "hierarchical" in run.methods and any(b in run.methods for b in BASELINES):
        what = "hierarchical crosses no baseline in the swept range"
    else:
        what = "no hierarchical-vs-baseline comparison in this scenario"
    caption = (f"Lower is faster; the vertical gap between two lines on this log scale is the ratio of their "
               f"times; {what}.{band_note(run)}")
    return ReportFigure("fig_time_vs_bitrate.png", "Training time against uplink bit rate", caption, data,
                        render_png(figure), marks=marks)


def fig_reduction(run: RunData) -> ReportFigure:
    """2. Hierarchical's runtime reduction vs each baseline, in percent, on a symlog axis."""
    title = "Runtime reduction of hierarchical training"
    baselines = [b for b in BASELINES if b in run.methods]
    if "hierarchical" not in run.methods or not baselines:
        return skipped("fig_reduction.png", title, "Not drawn: it needs hierarchical training and at least one "
                       "baseline (split learning or full-cloud) in the scenario's methods.")
    hier = run.results[run.results.method == "hierarchical"]
    data = pd.concat([hier[["model", "uplink_mbps"]].assign(baseline=b, reduction=hier[f"reduction_vs_{b}"])
                      for b in baselines]).sort_values(["model", "baseline", "uplink_mbps"]).reset_index(drop=True)
    data["reduction_percent"] = 100 * data.reduction
    data = pd.concat([with_interval(data[data.baseline == b], run, f"reduction_vs_{b}", ["model", "uplink_mbps"],
                                    "hierarchical") for b in baselines], ignore_index=True)
    figure = new_figure(5.0 * len(run.models) + 0.4, 4.4)
    axes = figure.subplots(1, len(run.models), squeeze=False, sharey=True)[0]
    lowest = min(pd.concat([data.reduction_percent, 100 * data.ci_low]).min(), -LINEAR_PERCENT)
    for ax, model in zip(axes, run.models):
        for baseline in baselines:
            line = data[(data.model == model) & (data.baseline == baseline)]
            ax.plot(line.uplink_mbps, line.reduction_percent, "o-", color=colour(baseline), ms=4,
                    label=f"vs {label(baseline)}")
            draw_band(ax, line, "reduction_percent", colour(baseline), scale=100.0)
        ax.axhline(0, color="black", lw=0.8)
        ax.set(xscale="log", title=model, xlabel="uplink bit rate (Mbit/s)")
        ax.set_yscale("symlog", linthresh=LINEAR_PERCENT, linscale=1.5)
        rate_axis(ax.xaxis, run.rates_mbps)
        ax.grid(True, which="major", alpha=0.3)
    slowdowns = [100 * (1 - 10 ** k) for k in range(1, 7)]  # 10x, 100x, ... the baseline's time
    ticks = [75, 50, 25, 0, -50, -100] + [t for t in slowdowns if t >= lowest * 10]
    axes[0].yaxis.set_major_locator(FixedLocator(ticks))
    axes[0].yaxis.set_major_formatter(lambda v, _: reduction_label(v))
    axes[0].yaxis.set_minor_locator(NullLocator())
    axes[0].set_ylim(lowest * 1.6, 100)
    axes[0].set_ylabel("time saved by hierarchical training\n(\u2191 above 0: faster, \u2193 below: slower)")
    figure.legend(*axes[0].get_legend_handles_labels(), loc="outside upper center", ncols=len(baselines))
    caption = ("Above 0 hierarchical training saves that share of the baseline's time (the paper's headline "
               "metric, 1 - T_hier / T_baseline); the axis is linear between -100% and +100% and logarithmic "
               "below (symlog), so large slowdowns stay readable: -900% means 10x the baseline's time."
               + band_note(run))
    return ReportFigure("fig_reduction.png", title, caption, data, render_png(figure))


def reduction_label(percent: float) -> str:
    if percent > -100:
        return f"{percent:+.0f}%" if percent else "0%"
    return f"{percent:,.0f}% ({1 - percent / 100:.0f}x time)"


def fig_bytes(run: RunData) -> ReportFigure:
    """6. Bytes that leave the device (raw data, features) and come back (gradients), stacked per method."""
    rate = run.rates_mbps[0]
    rows = run.results[run.results.uplink_mbps == rate]
    data = rows[["model", "method", "uplink_mbps", "raw_bytes_sent", "bytes_up", "bytes_down"]].reset_index(drop=True)
    data["features_bytes_up"] = data.bytes_up - data.raw_bytes_sent
    parts = [("raw_bytes_sent", "raw data sent", 1.0, ""), ("features_bytes_up", "features / activations sent", 0.75,
             "//"), ("bytes_down", "gradients received", 0.35, "xx")]
    figure = new_figure(max(4.0, 1.2 * len(run.methods) + 1.5) * len(run.models) + 0.4, 4.4)
    axes = figure.subplots(1, len(run.models), squeeze=False)[0]
    for ax, model in zip(axes, run.models):
        mine = data[data.model == model].set_index("method").reindex([m for m in run.methods])
        top = float((mine.bytes_up + mine.bytes_down).max()) or 1.0
        unit, scale = ("GB", 1e9) if top >= 1e9 else ("MB", 1e6)
        x = np.arange(len(mine))
        bottom = np.zeros(len(mine))
        for column, _, alpha, hatch in parts:
            height = mine[column].to_numpy(dtype=float) / scale
            ax.bar(x, height, bottom=bottom, color=[colour(m) for m in mine.index], alpha=alpha, hatch=hatch,
                   edgecolor="white", width=0.6)
            bottom += height
        for xi, up, down in zip(x, mine.bytes_up, mine.bytes_down):
            text = f"up {bytes_text(up)}" + (f"\ndown {bytes_text(down)}" if down else "")
            ax.text(xi, (up + down) / scale + top / scale * 0.01, text, ha="center", va="bottom", fontsize=8.5)
        ax.set_xticks(x, [label(m) for m in mine.index])
        ax.set(title=model, ylabel=f"bytes over the whole training ({unit})", ylim=(0, top / scale * 1.18))
    figure.legend([Patch(facecolor="#888888", alpha=a, hatch=h, edgecolor="white") for _, _, a, h in parts],
                  [name for _, name, _, _ in parts], loc="outside upper center", ncols=3)
    caption = (f"Stacked: raw samples (with labels) and features/activations sent up, gradients received; bytes do "
               f"not depend on the bit rate (taken at {rate_text(rate)}); retransmissions excluded"
               + (f"; means over {run.replications} replications (dropped batches send nothing)."
                  if run.replications > 1 else "."))
    return ReportFigure("fig_bytes.png", "What leaves the device", caption, data, render_png(figure))
