"""Figures drawn from the recorded event trace: a Gantt chart of the first batches of every
method (trace.csv) and the uplink backlog of hierarchical training (backlog.csv).

The trace holds the first batches of each run, event by event. A resource that has run out of
traced batches would look idle while the others go on, so each run's trace counts as complete
only until the earliest time any resource it used runs out of traced events.
"""
import pandas as pd
from matplotlib.legend_handler import HandlerTuple
from matplotlib.patches import Patch

from ..core.text import rate_text
from .data import RunData, nearest_rate
from .style import ReportFigure, colour, label, new_figure, render_png, skipped

RESOURCES = {"edge_cpu": "edge CPU", "edge_gpu": "edge GPU", "uplink": "uplink", "downlink": "downlink",
             "cloud_gpu": "cloud GPU"}
TRACE_COLUMNS = ["model", "method", "uplink_mbps", "resource", "what", "batch", "start_s", "end_s"]


def replication_note(run: RunData) -> str:
    """trace.csv and backlog.csv hold replication 0 only."""
    return f"; replication 0 of {run.replications}" if run.replications > 1 else ""


def complete_until_s(events: pd.DataFrame) -> float:
    """Until when every resource a run used is fully traced: the earliest last event end."""
    return float(events.groupby("resource").end_s.max().min())


def bars(events: pd.DataFrame, until_s: float, window_s: float) -> list[tuple[float, float]]:
    """(start, width) of each event, cut at `until_s` and at least 0.25% of the window wide, so
    millisecond tasks stay visible."""
    width = events.end_s.clip(upper=until_s) - events.start_s
    return list(zip(events.start_s, width.clip(lower=0.0025 * window_s)))


def fig_timeline(run: RunData) -> ReportFigure:
    """4. Gantt of edge compute, uplink, downlink and cloud compute, a panel per method.

    The time axis spans the window in which hierarchical training's trace is complete (without
    hierarchical, the longest complete window); a method whose trace runs out earlier is
    hatched from there on, so no resource looks idle only because its batches were not traced.
    """
    title = "What each resource does over the first batches"
    model, rate = run.models[0], nearest_rate(run.rates_mbps)
    trace = run.trace[(run.trace.model == model) & (run.trace.uplink_mbps == rate)]
    methods = [m for m in run.methods if m in set(trace.method)]
    if not methods:
        return skipped("fig_timeline.png", title,
                       f"Not drawn: trace.csv has no events of {model} at {rate_text(rate)}.")
    complete_s = {m: complete_until_s(trace[trace.method == m]) for m in methods}
    window_s = complete_s.get("hierarchical", max(complete_s.values()))
    until_s = {m: min(window_s, t) for m, t in complete_s.items()}
    data = trace[TRACE_COLUMNS].assign(shown=trace.start_s < trace.method.map(until_s)).reset_index(drop=True)
    rows = [r for r in RESOURCES if r in set(trace.resource)] + sorted(set(trace.resource) - set(RESOURCES))
    figure = new_figure(10.5, 0.5 + (0.42 * len(rows) + 0.55) * len(methods))
    axes = figure.subplots(len(methods), 1, squeeze=False, sharex=True)[:, 0]
    for ax, method in zip(axes, methods):
        events, end_s = data[data.method == method], until_s[method]
        for y, resource in enumerate(rows):
            mine = events[events.resource == resource]
            drawn = mine[mine.shown]
            busy, flying = drawn[drawn.what != "propagate"], drawn[drawn.what == "propagate"]
            for parity, alpha in ((0, 1.0), (1, 0.6)):  # alternate shades tell neighbouring batches apart
                for backward, part in busy[busy.batch % 2 == parity].groupby(busy.what == "backward"):
                    ax.broken_barh(bars(part, end_s, window_s), (y - 0.36, 0.56), color=colour(method), alpha=alpha,
                                   hatch="///" if backward else None, lw=0)
            ax.broken_barh(bars(flying, end_s, window_s), (y + 0.24, 0.14), color=colour(method), alpha=0.35, lw=0)
            if mine.empty:
                ax.text(window_s * 0.01, y, "not used", va="center", fontsize=8, color="#888888")
            elif drawn.empty:
                ax.text(window_s * 0.01, y, f"idle, first busy at t = {mine.start_s.min():,.4g} s", va="center",
                        fontsize=8, color="#444444")
        if end_s < window_s:
            ax.axvspan(end_s, window_s, facecolor="#f2f2f2", hatch="..", edgecolor="#cccccc", lw=0)
            ax.text((end_s + window_s) / 2, len(rows) / 2 - 0.5, "later batches not traced", ha="center",
                    va="center", fontsize=8.5, color="#666666", bbox={"facecolor": "white", "edgecolor": "none"})
        done = events[(events.resource == "cloud_gpu") & (events.end_s <= end_s)]
        ax.set_title(f"{label(method)}: {len(done)} batch{'es' if len(done) != 1 else ''} trained by the cloud "
                     f"in the first {end_s:.3g} s", fontsize=10, loc="left", color=colour(method))
        ax.set_yticks(range(len(rows)), [RESOURCES.get(r, r) for r in rows])
        ax.set_ylim(len(rows) - 0.5, -0.6)
        ax.grid(True, axis="x", alpha=0.3)
    axes[-1].set_xlim(0, window_s)
    axes[-1].set_xlabel(f"simulated time (s), {model} at {rate_text(rate)}")
    figure.legend([(Patch(color="#888888"), Patch(color="#888888", alpha=0.6)),
                   Patch(facecolor="#888888", hatch="///", lw=0), Patch(color="#888888", alpha=0.35)],
                  ["busy: one bar per batch (shades alternate)", "edge backward + step", "in flight (latency)"],
                  handler_map={tuple: HandlerTuple(ndivide=None, pad=0)}, loc="outside upper center", ncols=3,
                  fontsize=8.5)
    caption = (f"{model} at {rate_text(rate)}: one bar per batch and resource; bars side by side are parallel "
               f"work, gaps are waiting (millisecond tasks drawn a little wider; hatched: past a method's traced "
               f"batches){replication_note(run)}.")
    return ReportFigure("fig_timeline.png", title, caption, data, render_png(figure))


def complete_backlog(backlog: pd.DataFrame) -> pd.DataFrame:
    """The part of backlog.csv (one run or several) that holds every change, one level per instant.

    Only traced batches record their changes: once the last traced batch has entered the
    buffer, the untraced ones that follow it in are missing, so each run is cut at its last
    increase. Several changes at one instant (one batch leaves, the next enters) keep the last.
    """
    parts = []
    for _, run in backlog.groupby(["model", "method", "uplink_mbps"], sort=False):
        rises = run.index[run.backlog.diff().fillna(run.backlog) > 0]
        complete = run.loc[:rises[-1]] if len(rises) else run.iloc[:0]
        parts.append(complete.drop_duplicates("time_s", keep="last"))
    return pd.concat(parts).reset_index(drop=True) if parts else backlog.iloc[:0].reset_index(drop=True)


def fig_backlog(run: RunData) -> ReportFigure:
    """5. Uplink backlog of hierarchical training at the lowest bit rate (step plot), a panel per model."""
    title = "Uplink backlog of hierarchical training"
    if "hierarchical" not in run.methods:
        return skipped("fig_backlog.png", title, "Not drawn: the scenario does not simulate hierarchical training.")
    rate = run.rates_mbps[0]
    backlog = run.backlog
    data = complete_backlog(backlog[(backlog.method == "hierarchical") & (backlog.uplink_mbps == rate)])
    if data.empty:
        return skipped("fig_backlog.png", title,
                       f"Not drawn: backlog.csv has no hierarchical rows at {rate_text(rate)}.")
    capacity = run.scenario["network"].get("uplink_buffer_batches")
    dropping = run.scenario["network"].get("uplink_buffer_policy", "block") != "block"
    at_full = "buffer full: a batch is dropped" if dropping else "buffer full: the edge waits"
    figure = new_figure(5.0 * len(run.models) + 0.4, 3.4)
    axes = figure.subplots(1, len(run.models), squeeze=False, sharey=True)[0]
    for ax, model in zip(axes, run.models):
        mine = data[data.model == model]
        ax.step(mine.time_s, mine.backlog, where="post", color=colour("hierarchical"), lw=1.6)
        if capacity:
            ax.axhline(capacity, color="#444444", ls="--", lw=1)
            ax.text(0.98, capacity, at_full, transform=ax.get_yaxis_transform(), ha="right",
                    va="bottom", fontsize=8, color="#444444")
        ax.set(title=f"{model} at {rate_text(rate)}", xlabel="simulated time (s)", xlim=(0, None))
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("batches in the uplink buffer")
    axes[0].set_ylim(0, max(capacity or 0, data.backlog.max()) * 1.15 + 0.5)
    caption = (f"Hierarchical training at the lowest rate ({rate_text(rate)}), until the last traced batch enters "
               f"the buffer: a "
               f"line at the dashed capacity means the uplink is the bottleneck and the edge "
               f"{'drops feature batches (the policy never waits)' if dropping else 'waits for it'}; "
               f"near 0 the uplink keeps up{replication_note(run)}.")
    return ReportFigure("fig_backlog.png", title, caption, data, render_png(figure))
