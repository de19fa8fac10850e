"""Figures of a cellular link (README, "Cellular links"), drawn only where the scenario has one:

    fig_link_traces    each trace the scenario uses (uplink, downlink): its capacity in 1 s bins
                       over one period of the trace (at most its first 15 minutes), as replication
                       0 at the lowest rate meets it, with the trace's own gaps longer than 1 s
                       (`links.capacity.trace_gaps`) and the fixed outage windows shaded
    fig_worst_outage   from stalls.csv: hierarchical training's (and split learning's) uplink
                       backlog around the longest stall of replication 0 at the lowest rate, the
                       stall shaded, each dropped feature batch an x at the top

Times are simulated seconds of that run: trace time is time_s + the run's trace_offset_s
(results.csv), so a trace gap and an outage window of the scenario sit where the run met them.
"""
import math

import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..core.errors import UserError
from ..core.text import rate_text
from ..links.capacity import STALL_MIN_S, trace_gaps
from ..links.traces import load_trace
from .data import RunData
from .style import ReportFigure, colour, label, new_figure, render_png, skipped

BIN_S = 1.0  # capacity bins of fig_link_traces
WINDOW_MAX_S = 900.0  # a trace longer than 15 minutes is drawn over its first 15 minutes
LINKS = ("uplink", "downlink")
GAP_COLOUR, OUTAGE_COLOUR, DROP_COLOUR = "#D55E00", "#555555", "#D55E00"  # Okabe-Ito vermillion, grey
STALL_METHODS = ("hierarchical", "split_learning")


def first_runs(run: RunData, rate_mbps: float) -> pd.DataFrame:
    """results.csv rows of replication 0 at `rate_mbps` (every model and method)."""
    runs = run.runs if run.runs is not None else run.results
    if "replication" in runs.columns:
        runs = runs[runs.replication == 0]
    return runs[runs.uplink_mbps == rate_mbps]


def run_start(run: RunData, rate_mbps: float) -> tuple[float, float]:
    """(trace_offset_s, trace_scale) of replication 0 at `rate_mbps`: where in the traces it started."""
    rows = first_runs(run, rate_mbps)
    offsets = rows.trace_offset_s.dropna() if "trace_offset_s" in rows else pd.Series(dtype=float)
    scales = rows.trace_scale.dropna() if "trace_scale" in rows else pd.Series(dtype=float)
    fixed = run.scenario["network"].get("trace_offset_s")
    offset_s = float(offsets.iloc[0]) if len(offsets) else float(fixed) if isinstance(fixed, (int, float)) else 0.0
    return offset_s, float(scales.iloc[0]) if len(scales) else 1.0


def outage_windows(run: RunData) -> list[tuple[float, float]]:
    """The scenario's fixed outage windows (start_s, end_s), simulated time (both links)."""
    return [(w["start_s"], w["start_s"] + w["duration_s"]) for w in run.scenario["network"].get("outages") or []]


def link_capacity(run: RunData, link: str, path: str | None, rate_mbps: float) -> tuple[pd.DataFrame, list, str]:
    """One panel of fig_link_traces: (capacity rows, trace gaps, title). Without a trace, the
    constant rate over the runs and the outages."""
    offset_s, scale = run_start(run, rate_mbps)
    if path is None:
        ends_s = [end for _, end in outage_windows(run)] + list(first_runs(run, rate_mbps).total_time_s)
        span_s = min(WINDOW_MAX_S, 1.1 * max(ends_s))
        rows = [{"link": link, "trace": "", "time_s": t, "mbps": rate_mbps} for t in (0.0, span_s)]
        return pd.DataFrame(rows), [], f"{link}: constant {rate_text(rate_mbps)}"
    trace = load_trace(path)
    span_s = min(trace.period_s, WINDOW_MAX_S)
    starts_s, mbps = trace.capacity_mbps(BIN_S, offset_s + span_s)
    rows = [{"link": link, "trace": trace.name, "time_s": start - offset_s, "mbps": scale * value}
            for start, value in zip(starts_s, mbps)
            if start >= math.floor(offset_s / BIN_S) * BIN_S and start + BIN_S <= offset_s + span_s]
    gaps = trace_gaps(trace, offset_s, span_s)
    scaled = f" x {scale:g}" if scale != 1 else ""
    title = (f"{link}: {trace.name}, mean {trace.mean_mbps:.2f} Mbit/s{scaled}, from {offset_s:.0f} s "
             f"into its {trace.period_s:.0f} s")
    return pd.DataFrame(rows), gaps, title


def fig_link_traces(run: RunData) -> ReportFigure:
    """Capacity over time of each trace the scenario uses, its gaps and the outage windows shaded."""
    name, title = "fig_link_traces.png", "Link capacity over time, with outages"
    network, rate = run.scenario["network"], run.rates_mbps[0]
    panels = [(link, network[f"{link}_trace"]) for link in LINKS if network.get(f"{link}_trace")] or [("uplink", None)]
    try:
        drawn = [(link, *link_capacity(run, link, path, rate)) for link, path in panels]
    except UserError as exc:
        return skipped(name, title, f"Not drawn: {exc}")
    outages, marks = outage_windows(run), []
    ends = first_runs(run, rate)
    ends = ends[ends.model == run.models[0]]
    figure = new_figure(10.5, 0.6 + 2.5 * len(drawn))
    axes = figure.subplots(len(drawn), 1, squeeze=False)[:, 0]
    for ax, (link, rows, gaps, panel_title) in zip(axes, drawn):
        span_s = rows.time_s.max() + (BIN_S if rows.trace.iloc[0] else 0.0)
        for kind, windows, shade, hatch in (("trace gap", gaps, GAP_COLOUR, None),
                                            ("outage", outages, OUTAGE_COLOUR, "//")):
            for start_s, end_s in windows:
                if start_s < span_s:
                    ax.axvspan(start_s, min(end_s, span_s), facecolor=shade, alpha=0.25, hatch=hatch, lw=0)
                    marks.append({"link": link, "kind": kind, "start_s": start_s, "end_s": end_s, "method": ""})
        ax.step(rows.time_s, rows.mbps, where="post", color="#222222", lw=0.9)
        for end in ends[ends.total_time_s < span_s].itertuples():
            ax.axvline(end.total_time_s, color=colour(end.method), ls=":", lw=1.6)
            marks.append({"link": link, "kind": "run end", "start_s": end.total_time_s, "end_s": end.total_time_s,
                          "method": end.method})
        ax.set(xlim=(0, span_s), ylim=(0, 1.15 * rows.mbps.max()), ylabel="capacity (Mbit/s)")
        ax.set_title(panel_title, fontsize=10, loc="left")
        ax.grid(True, alpha=0.3)
    axes[-1].set_xlabel(f"simulated time (s) at {rate_text(rate)}{', replication 0' if run.replications > 1 else ''}")
    handles = []
    if any(path for _, path in panels):
        handles.append(Patch(facecolor=GAP_COLOUR, alpha=0.25, label=f"trace gap > {STALL_MIN_S:g} s"))
    if outages:
        handles.append(Patch(facecolor=OUTAGE_COLOUR, alpha=0.25, hatch="//", label="outage window (both links)"))
    handles += [Line2D([], [], color=colour(m), ls=":", label=f"{label(m)} ends ({run.models[0]})")
                for m in run.methods if m in set(ends.method)]
    figure.legend(handles=handles, loc="outside upper center", ncols=len(handles), fontsize=8.5)
    offsets = sorted({round(o) for o in (run.runs if run.runs is not None else run.results)
                      .get("trace_offset_s", pd.Series(dtype=float)).dropna()})
    elsewhere = (f"; the other replications start elsewhere in the trace ({', '.join(f'{o} s' for o in offsets)} "
                 "in all)" if len(offsets) > 1 else "")
    outage_model = run.scenario["network"].get("outage_model")
    not_drawn = (f" Random outages (outage_model: up {outage_model['mean_up_s']:g} s, down "
                 f"{outage_model['mean_down_s']:g} s on average) differ per run and are not drawn; the longest "
                 "stall of each run is in stalls.csv." if outage_model else "")
    caption = (f"Capacity in {BIN_S:g} s bins over one period of each trace (at most its first "
               f"{WINDOW_MAX_S / 60:.0f} minutes), as replication 0 at {rate_text(rate)} meets it{elsewhere}. "
               f"Shaded: the trace's own gaps longer than {STALL_MIN_S:g} s and the scenario's outage windows, in "
               f"which nothing crosses; dotted: when each method's run ends.{not_drawn}")
    data = pd.concat([rows for _, rows, _, _ in drawn], ignore_index=True)
    return ReportFigure(name, title, caption, data, render_png(figure),
                        marks=pd.DataFrame(marks, columns=["link", "kind", "start_s", "end_s", "method"]))


def fig_worst_outage(run: RunData) -> ReportFigure:
    """Uplink backlog around the longest stall, a row per method, a column per model."""
    name, title = "fig_worst_outage.png", "The longest uplink stall: backlog and dropped batches"
    stalls, rate = run.stalls, run.rates_mbps[0]
    if stalls is None or stalls.empty:
        return skipped(name, title, "Not drawn: no run met an uplink stall (stalls.csv has no rows).")
    chosen = stalls[(stalls.replication == 0) & (stalls.uplink_mbps == rate) & stalls.method.isin(STALL_METHODS)]
    setting_note, policy = "", run.scenario["network"].get("uplink_buffer_policy", "block")
    if "setting" in chosen.columns and not chosen.empty:  # a sweep: the first setting that dropped, else the first
        dropping = chosen[(chosen.kind == "drop")].setting
        index = int(dropping.min()) if len(dropping) else int(chosen.setting.min())
        chosen = chosen[chosen.setting == index]
        swept = [c for c in chosen.columns if "." in c]
        setting_note = f" Sweep setting {index} ({', '.join(f'{c}={chosen[c].iloc[0]}' for c in swept)})" + (
            ", the first whose hierarchical run dropped batches." if len(dropping) else ".")
        policy = chosen["network.uplink_buffer_policy"].iloc[0] if "network.uplink_buffer_policy" in swept \
            else policy
    methods = [m for m in STALL_METHODS if m in set(chosen.method)]
    models = [m for m in run.models if m in set(chosen.model)]
    if not methods:
        return skipped(name, title, f"Not drawn: stalls.csv has no hierarchical or split learning run of "
                                    f"replication 0 at {rate_text(rate)}.")
    capacity = run.scenario["network"].get("uplink_buffer_batches")
    figure = new_figure(5.2 * len(models) + 0.4, 0.8 + 2.8 * len(methods))
    axes = figure.subplots(len(methods), len(models), squeeze=False)
    parts = []
    for row, method in zip(axes, methods):
        for ax, model in zip(row, models):
            mine = chosen[(chosen.method == method) & (chosen.model == model)]
            if mine.empty:
                ax.set_visible(False)
                continue
            stall = mine[mine.kind == "stall"].iloc[0]
            backlog = (mine[mine.kind == "backlog"].sort_values("time_s", kind="stable")
                       .drop_duplicates("time_s", keep="last"))  # one level per instant: the last
            drops = mine[mine.kind == "drop"]
            parts += [mine[mine.kind == "stall"], backlog, drops]
            ax.axvspan(stall.time_s, stall.end_s, facecolor=OUTAGE_COLOUR, alpha=0.25, lw=0)
            ax.step(backlog.time_s, backlog.value, where="post", color=colour(method), lw=1.6)
            ax.plot(drops.time_s, [0.93] * len(drops), "x", color=DROP_COLOUR, ms=6,
                    transform=ax.get_xaxis_transform())
            if capacity:
                ax.axhline(capacity, color="#444444", ls="--", lw=1)
            top = max(capacity or 0, backlog.value.max() if len(backlog) else 0)
            low_s = min([stall.time_s, *backlog.time_s, *drops.time_s])
            high_s = max([stall.end_s, *backlog.time_s, *drops.time_s])
            ax.set(xlim=(low_s - 1, high_s + 1), ylim=(0, top * 1.3 + 1))
            ax.set_title(f"{label(method)}, {model}: stall of {stall.end_s - stall.time_s:.1f} s at "
                         f"{stall.time_s:.1f} s; {len(drops)} batch{'es' if len(drops) != 1 else ''} dropped",
                         fontsize=9.5, loc="left", color=colour(method))
            ax.grid(True, alpha=0.3)
        row[0].set_ylabel("batches in the uplink buffer")
    for ax in axes[-1]:
        ax.set_xlabel(f"simulated time (s) at {rate_text(rate)}{', replication 0' if run.replications > 1 else ''}")
    handles = [Patch(facecolor=OUTAGE_COLOUR, alpha=0.25, label="the stall: no uplink capacity"),
               Line2D([], [], color="#444444", ls="--", label="buffer capacity"),
               Line2D([], [], color=DROP_COLOUR, marker="x", ls="", label="a feature batch dropped")]
    figure.legend(handles=handles, loc="outside upper center", ncols=3, fontsize=8.5)
    caption = (f"The longest stall of each run (an outage or a trace gap > {STALL_MIN_S:g} s) with the uplink "
               f"backlog from 20 s before it to 40 s after it (stalls.csv), replication 0 at {rate_text(rate)}. "
               f"Buffer policy {policy}: "
               + ("the edge waits while the buffer is full." if policy == "block" else
                  "hierarchical training's edge never waits; a full buffer discards a feature batch (x; "
                  f"{'the oldest waiting' if policy == 'drop_oldest' else 'the arriving one'}), which the cloud "
                  "never trains.") + setting_note)
    return ReportFigure(name, title, caption, pd.concat(parts, ignore_index=True), render_png(figure))
