"""Figures of a sweep (README, "Sweeps") and of its targets (README, "Targets").

All at one uplink rate, the 3G-class rate the rest of the report uses (nearest 1 Mbit/s):

    fig_sweep_lines        per model and swept key: hierarchical's reduction against each
                           baseline as the key varies (median over the other keys, band from
                           the smallest to the largest)
    fig_sweep_pairs_<b>    per model and pair of swept keys: a heatmap of hierarchical's median
                           reduction against baseline <b> over the other keys
    fig_targets            per target: the share of settings (over the other keys and the
                           target's rates) within its tolerance, over the two keys that move it most
"""
import itertools
import math

import numpy as np
import pandas as pd

from .data import RunData, nearest_rate
from .style import ReportFigure, colour, label, new_figure, render_png, skipped

BASELINES = ("split_learning", "full_cloud")
MAX_CELLS_ANNOTATED = 49


def key_values(table: pd.DataFrame, key: str) -> list:
    """The values of a swept column in sweep order (first appearance)."""
    return list(dict.fromkeys(table[key]))


def tick_text(value) -> str:
    return f"{value:g}" if isinstance(value, (int, float, np.number)) else str(value)


def hier_at_rate(run: RunData) -> tuple[pd.DataFrame, str]:
    """Hierarchical's rows at the rate the sweep figures compare, and that rate in words. With
    swept traces each trace has its own rates (its mean x each scale): compare at one scale."""
    table = run.sweep
    hier = table[table.method == "hierarchical"]
    if "uplink_trace" in table.columns and hier.uplink_trace.dropna().nunique() > 1 \
            and hier.trace_scale.notna().all():
        scale = min(sorted(set(hier.trace_scale)), key=lambda s: abs(math.log(s)))  # nearest x1
        return hier[hier.trace_scale == scale], f"trace scale {scale:g} (each trace's mean rate x {scale:g})"
    rate = nearest_rate(sorted(set(table.uplink_mbps)))
    return hier[hier.uplink_mbps == rate], f"{rate:g} Mbit/s"


def fig_sweep_lines(run: RunData) -> ReportFigure:
    name, title = "fig_sweep_lines.png", "Sweep: hierarchical's time reduction as each setting varies"
    if run.sweep is None:
        return skipped(name, title, "no sweep in this scenario")
    hier, rate = hier_at_rate(run)
    baselines = [b for b in BASELINES if hier[f"reduction_vs_{b}"].notna().any()]
    keys, models = list(run.sweep_keys), list(dict.fromkeys(hier.model))
    if not baselines or hier.empty:
        return skipped(name, title, "hierarchical and a baseline are needed for reductions")
    panels = list(itertools.product(models, baselines))  # one row per model and baseline: scales differ
    figure = new_figure(2.6 * len(keys) + 0.5, 2.1 * len(panels) + 0.6)
    axes = figure.subplots(len(panels), len(keys), squeeze=False)
    rows = []
    for (i, (model, baseline)), (j, key) in itertools.product(enumerate(panels), enumerate(keys)):
        axis, values = axes[i][j], key_values(run.sweep, key)
        part = hier[hier.model == model]
        stats = part.groupby(key, sort=False)[f"reduction_vs_{baseline}"].agg(["min", "median", "max"])
        stats = stats.reindex(values)
        x = np.arange(len(values))
        axis.plot(x, 100 * stats["median"], "o-", color=colour(baseline), ms=3)
        axis.fill_between(x, 100 * stats["min"], 100 * stats["max"], color=colour(baseline), alpha=0.15, lw=0)
        rows += [{"model": model, "key": key, "value": v, "baseline": baseline, **stats.loc[v].to_dict()}
                 for v in values]
        axis.axhline(0, color="#999999", lw=0.6)
        axis.set_xticks(x, [tick_text(v) for v in values], rotation=30, fontsize=7, ha="right")
        axis.tick_params(axis="y", labelsize=7)
        if i == len(panels) - 1:
            axis.set_xlabel(key, fontsize=8)
        if j == 0:
            axis.set_ylabel(f"{model}\nvs {label(baseline)} (%)", fontsize=8)
    figure.suptitle(f"hierarchical's time reduction at {rate}\n(median over the other swept keys; "
                    "band: their min-max)", fontsize=9)
    caption = (f"At {rate}. Each panel varies one swept key; the line is the median over every "
               "combination of the other keys, the band their range. Positive: hierarchical training is faster.")
    return ReportFigure(name, title, caption, pd.DataFrame(rows), render_png(figure))


def fig_sweep_pairs(run: RunData, baseline: str) -> ReportFigure:
    name, title = f"fig_sweep_pairs_{baseline}.png", f"Sweep: hierarchical vs {label(baseline)}, pairs of settings"
    if run.sweep is None or len(run.sweep_keys) < 2:
        return skipped(name, title, "a sweep of at least two keys draws these heatmaps")
    hier, rate = hier_at_rate(run)
    column = f"reduction_vs_{baseline}"
    if hier.empty or not hier[column].notna().any():
        return skipped(name, title, f"no {label(baseline)} runs to compare with")
    models, pairs = list(dict.fromkeys(hier.model)), list(itertools.combinations(run.sweep_keys, 2))
    columns = min(len(pairs), 4)
    grid_rows = math.ceil(len(pairs) / columns)
    figure = new_figure(3.2 * columns + 0.6, 2.7 * grid_rows * len(models) + 0.6)
    axes = figure.subplots(grid_rows * len(models), columns, squeeze=False)
    for axis in axes.flat:
        axis.set_visible(False)
    limit = max(1e-9, float(np.nanmax(np.abs(hier[column])))) * 100
    rows, image = [], None
    for m, model in enumerate(models):
        part = hier[hier.model == model]
        for p, (x_key, y_key) in enumerate(pairs):
            axis = axes[m * grid_rows + p // columns][p % columns]
            axis.set_visible(True)
            xs, ys = key_values(run.sweep, x_key), key_values(run.sweep, y_key)
            cells = part.groupby([y_key, x_key], sort=False)[column].median().unstack(x_key).reindex(index=ys,
                                                                                                   columns=xs)
            image = axis.imshow(100 * cells.to_numpy(dtype=float), cmap="RdBu", vmin=-limit, vmax=limit,
                                aspect="auto", origin="lower")
            axis.set_xticks(range(len(xs)), [tick_text(v) for v in xs], rotation=30, fontsize=6, ha="right")
            axis.set_yticks(range(len(ys)), [tick_text(v) for v in ys], fontsize=6)
            axis.set_xlabel(x_key, fontsize=7)
            axis.set_ylabel(y_key, fontsize=7)
            axis.set_title(model, fontsize=7)
            if cells.size <= MAX_CELLS_ANNOTATED:
                for (yi, xi), value in np.ndenumerate(cells.to_numpy(dtype=float)):
                    if not math.isnan(value):
                        axis.text(xi, yi, f"{100 * value:.0f}", ha="center", va="center", fontsize=6)
            rows += [{"model": model, "x_key": x_key, "y_key": y_key, "x": x, "y": y, "median_reduction": cells.loc[y, x]}
                     for y in ys for x in xs]
    figure.colorbar(image, ax=axes, shrink=0.6, label=f"reduction vs {label(baseline)} (%)")
    figure.suptitle(f"hierarchical vs {label(baseline)} at {rate}: median reduction over the other keys",
                    fontsize=9)
    caption = (f"At {rate}. Each heatmap crosses two swept keys; a cell is the median of hierarchical "
               f"training's time reduction against {label(baseline)} over the other keys (blue: hierarchical faster).")
    return ReportFigure(name, title, caption, pd.DataFrame(rows), render_png(figure))


def fig_sweep_pairs_split_learning(run: RunData) -> ReportFigure:
    return fig_sweep_pairs(run, "split_learning")


def fig_sweep_pairs_full_cloud(run: RunData) -> ReportFigure:
    return fig_sweep_pairs(run, "full_cloud")


def fig_targets(run: RunData) -> ReportFigure:
    name, title = "fig_targets.png", "Targets: where in the sweep each published figure is reproduced"
    if run.targets is None or run.targets.empty:
        return skipped(name, title, "no targets in this scenario")
    if run.sweep is None:
        return skipped(name, title, "no sweep: targets.csv holds the one setting's verdicts")
    keys = list(run.sweep_keys)
    targets = run.targets
    figure = new_figure(4.2 * len(targets) + 0.6, 3.6)
    axes = figure.subplots(1, len(targets), squeeze=False)[0]
    rows = []
    for axis, target in zip(axes, targets.itertuples()):
        candidates = run.sweep[(run.sweep.model == target.model) & (run.sweep.dataset == target.dataset)
                               & (run.sweep.method == getattr(target, "method", "hierarchical"))]
        rates = str(getattr(target, "target_rates", "") or "")
        if rates and rates != "nan":
            candidates = candidates[candidates.uplink_mbps.isin([float(r) for r in rates.split(";")])]
        within = (candidates[target.metric] - target.target_value).abs() <= target.tolerance
        candidates = candidates.assign(within=within.astype(float))
        moving = sorted(keys, key=lambda k: -candidates.groupby(k, sort=False)[target.metric].median().std(ddof=0)
                        if candidates[k].nunique() > 1 else 0)[:2]
        x_key = moving[0]
        y_key = moving[1] if len(moving) > 1 else None
        xs = key_values(run.sweep, x_key)
        if y_key is None:
            share = candidates.groupby(x_key, sort=False).within.mean().reindex(xs)
            axis.bar(range(len(xs)), 100 * share.to_numpy(), color="#009E73")
            axis.set_ylabel("settings within tolerance (%)", fontsize=7)
            rows += [{"target": target.target, "x_key": x_key, "x": x, "share_within": share.loc[x]} for x in xs]
        else:
            ys = key_values(run.sweep, y_key)
            share = candidates.groupby([y_key, x_key], sort=False).within.mean().unstack(x_key).reindex(index=ys,
                                                                                                      columns=xs)
            axis.imshow(100 * share.to_numpy(dtype=float), cmap="Greens", vmin=0, vmax=100, aspect="auto",
                        origin="lower")
            axis.set_yticks(range(len(ys)), [tick_text(v) for v in ys], fontsize=6)
            axis.set_ylabel(y_key, fontsize=7)
            if share.size <= MAX_CELLS_ANNOTATED:
                for (yi, xi), value in np.ndenumerate(share.to_numpy(dtype=float)):
                    if not math.isnan(value):
                        axis.text(xi, yi, f"{100 * value:.0f}", ha="center", va="center", fontsize=6)
            rows += [{"target": target.target, "x_key": x_key, "y_key": y_key, "x": x, "y": y,
                      "share_within": share.loc[y, x]} for y in ys for x in xs]
        axis.set_xticks(range(len(xs)), [tick_text(v) for v in xs], rotation=30, fontsize=6, ha="right")
        axis.set_xlabel(x_key, fontsize=7)
        axis.set_title(f"{target.target}\n{target.metric} {target.target_value:g} +-{target.tolerance:g}: "
                       f"{target.verdict}", fontsize=7)
    figure.suptitle("share of settings within each target's tolerance\n(over the other keys and the target's rates)",
                    fontsize=9)
    caption = ("Per target, the two swept keys that move its metric most; a cell is the share (%) of the other "
               "settings and rates whose simulated value lies within the tolerance. 0 everywhere: not reproduced.")
    return ReportFigure(name, title, caption, pd.DataFrame(rows), render_png(figure))
