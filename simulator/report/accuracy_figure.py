"""Time to accuracy: the per-epoch accuracy of real training (training.csv) placed at the
simulated time each epoch ends (epochs.csv), per method, at a few bit rates.

The trained run is usually a shorter proxy (E epochs) of the simulated workload (W epochs),
so training epoch e is placed where the same fraction of training ends in the simulation:

    simulated epoch = round(e * W / E)   (halves round up; clamped to 1..W)
"""
import math

import pandas as pd
from matplotlib.lines import Line2D

from ..core.text import rate_text
from .data import RunData, chosen_rates
from .style import (
    ReportFigure,
    colour,
    duration_axis,
    label,
    new_figure,
    render_png,
    skipped,
)

TITLE = "Accuracy against simulated training time"


def simulated_epoch(epoch: int, trained_epochs: int, simulated_epochs: int) -> int:
    """The simulated epoch at which training epoch `epoch` of `trained_epochs` is placed."""
    return max(1, min(simulated_epochs, math.floor(epoch * simulated_epochs / trained_epochs + 0.5)))


def split_key(table: pd.DataFrame) -> pd.Series:
    """The separation point as a join key ("" for full-cloud, whose CSV cell is empty)."""
    return table.split.fillna("").astype(str) if "split" in table else pd.Series("", index=table.index)


def time_to_accuracy_data(run: RunData, rates_mbps: list[float]) -> pd.DataFrame:
    """One row per (model, method, rate, training epoch): accuracies and the simulated time_s."""
    simulated_epochs = int(run.scenario["workload"]["epochs"])
    training = run.training[run.training.method.isin(run.methods)]
    if "cloud_skipped" in training.columns:  # runs whose cloud skipped dropped batches: one per drop pattern
        skipping = training.groupby("cache_key").cloud_skipped.transform("sum") > 0
        training = training[~skipping]
    training = training.assign(split=split_key(training))
    trained_epochs = training.groupby(["model", "method", "split"]).epoch.transform("max")
    placed = training[["model", "method", "split", "epoch", "final_accuracy", "early_exit_accuracy"]].assign(
        sim_epoch=[simulated_epoch(e, n, simulated_epochs) for e, n in zip(training.epoch, trained_epochs)])
    ends = run.epochs[run.epochs.uplink_mbps.isin(rates_mbps)].rename(columns={"epoch": "sim_epoch",
                                                                                "end_s": "time_s"})
    # the point each (model, method) used at each rate (split: auto may choose another per rate)
    results = run.results
    if "batches_dropped" in results.columns:  # a run that dropped batches has no single accuracy curve
        results = results[~(results.batches_dropped.fillna(0) > 0)]
    splits = results[["model", "method", "uplink_mbps"]].assign(split=split_key(results))
    ends = ends.merge(splits, on=["model", "method", "uplink_mbps"], how="inner")
    data = placed.merge(ends, on=["model", "method", "split", "sim_epoch"], how="inner")
    columns = ["model", "method", "uplink_mbps", "epoch", "sim_epoch", "time_s", "final_accuracy",
               "early_exit_accuracy"]
    return data[columns].sort_values(["model", "uplink_mbps", "method", "epoch"]).reset_index(drop=True)


def fig_time_to_accuracy(run: RunData) -> ReportFigure:
    """3. Accuracy against simulated wall-clock time, a panel per model x chosen bit rate."""
    if run.training is None or run.training.empty:
        return skipped("fig_time_to_accuracy.png", TITLE, "Not drawn: this run did not train (`--no-train` or "
                       "`accuracy: {enabled: false}`), so there is no per-epoch accuracy (training.csv).")
    rates = chosen_rates(run.rates_mbps)
    data = time_to_accuracy_data(run, rates)
    if data.empty:
        return skipped("fig_time_to_accuracy.png", TITLE, "Not drawn: training.csv has no run of the simulated "
                       "models and methods.")
    figure = new_figure(3.6 * len(rates) + 0.6, 2.9 * len(run.models) + 0.7)
    axes = figure.subplots(len(run.models), len(rates), squeeze=False, sharex=True, sharey=True)
    for row, model in zip(axes, run.models):
        for ax, rate in zip(row, rates):
            panel = data[(data.model == model) & (data.uplink_mbps == rate)]
            for method in run.methods:
                line = panel[panel.method == method]
                ax.plot(line.time_s, 100 * line.final_accuracy, "o-", color=colour(method), ms=4)
                if line.early_exit_accuracy.notna().any():
                    ax.plot(line.time_s, 100 * line.early_exit_accuracy, "o--", color=colour(method), ms=4,
                            mfc="white")
            ax.set_title(f"{model} at {rate_text(rate)}", fontsize=10)
            ax.set_xscale("log")
            ax.grid(True, which="major", alpha=0.3)
        row[0].set_ylabel("test accuracy (%)")
    for ax in axes[-1]:
        ax.set_xlabel("simulated training time")
    low, high = data.time_s.min() / 2, data.time_s.max() * 2
    axes[0][0].set_xlim(low, high)
    duration_axis(axes[0][0].xaxis, low, high)
    handles = [Line2D([], [], color=colour(m), marker="o", ms=4, label=label(m)) for m in run.methods]
    if data.early_exit_accuracy.notna().any():
        handles.append(Line2D([], [], color=colour("hierarchical"), ls="--", marker="o", ms=4, mfc="white",
                              label="hierarchical, early exit (edge alone)"))
    figure.legend(handles=handles, loc="outside upper center", ncols=len(handles))
    trained, simulated = int(data.groupby(["model", "method"]).epoch.max().max()), run.scenario["workload"]["epochs"]
    proxy = run.scenario["accuracy"].get("proxy") or ""
    dropped = "batches_dropped" in run.results.columns and (run.results.batches_dropped.fillna(0) > 0).any()
    caption = (("Hierarchical runs whose uplink dropped batches are left out (each drop pattern trained its own "
                "run: results.csv and training.csv hold their accuracy). " if dropped else "")
               + f"Further left = the same accuracy sooner. Real training's epoch e of {trained} is placed at the "
               f"simulated end of epoch round(e x {simulated} / {trained}) of {simulated} (the same fraction of "
               f"training){'; accuracy of the trained ' + proxy if proxy else ''}.")
    return ReportFigure("fig_time_to_accuracy.png", TITLE, caption, data, render_png(figure))
