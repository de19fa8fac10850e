"""The report of a run on a cellular link, with replications: means over the replications in every
table and figure, the 95% confidence band of summary.csv around them, the link-capacity and
worst-outage figures, and none of that where the run has no trace, outage or replication.

Inputs come from the real CLI run in-process on a tiny copy of scenarios/low_bitrate.yaml on the
shipped T-Mobile UMTS trace (3 replications at 2 trace scales, a 20 s outage, drop_oldest).
"""
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import DELETE, ROOT, write_scenario
from matplotlib.collections import LineCollection, PolyCollection
from test_report import FIGURE_FILES, RUN_KEYS, assert_png, csv, run_cli

from simulator.core.text import duration_text
from simulator.report import REPORT_FILES, load_run, runtime_figures
from simulator.report.data import replication_means
from simulator.report.network_figures import fig_link_traces, fig_worst_outage
from simulator.report.runtime_figures import fig_reduction, fig_time_vs_bitrate

UMTS = ROOT / "traces" / "TMobile-UMTS-driving.up"
NETWORK_FIGURES = ["fig_link_traces.png", "fig_worst_outage.png"]
T_975_2 = 4.302652729911275  # Student t, 0.975 quantile, 2 degrees of freedom (tables)
OUTAGE_S = (5.0, 25.0)
TINY = {"workload.epochs": 1, "workload.train_samples": 1600, "accuracy.enabled": False,
        "workload.models": [{"name": "vgg16", "split": "stage5"}]}


@pytest.fixture(scope="module")
def cellular(tmp_path_factory) -> Path:
    """vgg16, 3 methods, 1 epoch of 50 batches on the UMTS trace x 1 and x 4, 3 replications."""
    tmp = tmp_path_factory.mktemp("cellular")
    path = write_scenario(tmp, {**TINY, "network.uplink_mbps": DELETE, "network.uplink_trace": str(UMTS),
                                "network.downlink_trace": "paired", "network.trace_scale": [1.0, 4.0],
                                "network.trace_offset_s": "random", "network.uplink_buffer_policy": "drop_oldest",
                                "network.outages": [{"start_s": OUTAGE_S[0], "duration_s": OUTAGE_S[1] - OUTAGE_S[0]}],
                                "replications": 3})
    proc = run_cli(path, "--no-progress")
    assert "report.html" in proc.stdout
    return tmp / "out"


def by_run(table: pd.DataFrame) -> pd.DataFrame:
    return table.set_index(RUN_KEYS).sort_index()


def hand_interval(results: pd.DataFrame, measure: str) -> pd.DataFrame:
    """Mean and 95% Student-t interval over 3 replications, computed here from results.csv."""
    stats = results.groupby(RUN_KEYS)[measure].agg(["mean", "std", "count"])
    assert (stats["count"] == 3).all()
    half = T_975_2 * stats["std"] / math.sqrt(3)
    return stats.assign(ci_low=stats["mean"] - half, ci_high=stats["mean"] + half)


def test_every_figure_is_drawn_with_the_network_ones(cellular):
    for name in [*FIGURE_FILES, *NETWORK_FIGURES]:
        if name != "fig_time_to_accuracy.png":
            assert_png((cellular / name).read_bytes())
    markdown = (cellular / "report.md").read_text()
    for name in NETWORK_FIGURES:
        assert f"]({name})" in markdown
    assert set(NETWORK_FIGURES) <= set(REPORT_FILES)


def test_time_figure_plots_the_mean_and_summary_interval(cellular, monkeypatch):
    results, summary = csv(cellular, "results.csv"), csv(cellular, "summary.csv")
    drawn = []
    monkeypatch.setattr(runtime_figures, "render_png", lambda figure: drawn.append(figure) or b"")
    figure = fig_time_vs_bitrate(load_run(cellular))
    data, expected = by_run(figure.data), hand_interval(results, "total_time_s")
    assert len(data) == 3 * 2 and (data.replications == 3).all()
    assert data.total_time_s.to_numpy() == pytest.approx(expected["mean"].to_numpy(), rel=1e-12)
    assert data.ci_low.to_numpy() == pytest.approx(expected.ci_low.to_numpy(), rel=1e-6)
    assert data.ci_high.to_numpy() == pytest.approx(expected.ci_high.to_numpy(), rel=1e-6)
    summary = by_run(summary)
    assert (data.ci_low == summary.total_time_s_ci_low).all() and (data.ci_high == summary.total_time_s_ci_high).all()
    # the shaded bands: one per method, spanning ci_low..ci_high at both rates
    axis = drawn[0].axes[0]
    bands = [c for c in axis.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 3
    corners = {(round(x, 9), round(y, 6)) for band in bands for x, y in band.get_paths()[0].vertices}
    for (_, _, rate), row in data.iterrows():
        assert (round(rate, 9), round(row.ci_low, 6)) in corners and (round(rate, 9), round(row.ci_high, 6)) in corners
    assert "95% confidence interval" in figure.caption and "3 replications" in figure.caption


def test_reduction_band_is_hierarchicals_interval(cellular):
    figure, summary = fig_reduction(load_run(cellular)), csv(cellular, "summary.csv")
    hier = summary[summary.method == "hierarchical"].set_index(["model", "uplink_mbps"])
    for baseline in ("split_learning", "full_cloud"):
        mine = figure.data[figure.data.baseline == baseline].set_index(["model", "uplink_mbps"])
        assert len(mine) == 2
        assert (mine.ci_low == hier.loc[mine.index, f"reduction_vs_{baseline}_ci_low"]).all()
        assert (mine.ci_high == hier.loc[mine.index, f"reduction_vs_{baseline}_ci_high"]).all()
        assert (mine.ci_low <= mine.reduction).all() and (mine.reduction <= mine.ci_high).all()


def test_one_point_lines_get_an_error_bar(cellular, monkeypatch):
    run = load_run(cellular)
    rate = run.rates_mbps[0]
    run.results = run.results[run.results.uplink_mbps == rate]
    drawn = []
    monkeypatch.setattr(runtime_figures, "render_png", lambda figure: drawn.append(figure) or b"")
    figure = fig_time_vs_bitrate(run)
    bars = [c for c in drawn[0].axes[0].collections if isinstance(c, LineCollection)]
    assert len(bars) == 3 and not [c for c in drawn[0].axes[0].collections if isinstance(c, PolyCollection)]
    spans = sorted(np.sort(bar.get_segments()[0][:, 1]).tolist() for bar in bars)
    expected = sorted([low, high] for low, high in zip(figure.data.ci_low, figure.data.ci_high))
    assert np.array(spans) == pytest.approx(np.array(expected))


def test_results_table_shows_mean_plus_minus_half_width(cellular):
    markdown, results = (cellular / "report.md").read_text(), csv(cellular, "results.csv")
    rate = min(results.uplink_mbps)
    hier = hand_interval(results, "total_time_s").loc[("vgg16", "hierarchical", rate)]
    half = (hier.ci_high - hier.ci_low) / 2
    table = markdown.split("## Results")[1]
    row = next(line for line in table.splitlines() if line.startswith(f"| vgg16 | {rate:g} | "))
    assert f"| {duration_text(hier['mean'])} ± {duration_text(half)} |" in row
    assert " pp |" in row or "x |" in row  # the reductions' half-widths
    assert "mean over 3 replications" in markdown


def test_network_section_names_traces_outage_policy_and_drops(cellular):
    markdown, results = (cellular / "report.md").read_text(), csv(cellular, "results.csv")
    network = markdown.split("## Network")[1].split("## Results")[0]
    for text in ("TMobile-UMTS-driving.up: 0.94 Mbit/s on average", "TMobile-UMTS-driving.down: 2.02 Mbit/s",
                 "| outages (both links) | 5-25 s |", "drop_oldest", "random, drawn per replication",
                 "capacity x 1, 4"):
        assert text in network, text
    hier = results[(results.method == "hierarchical") & (results.uplink_mbps == min(results.uplink_mbps))]
    dropped = hier.batches_dropped.mean()
    assert (hier.batches_dropped > 0).all()
    assert f"| hierarchical | {dropped:,.1f} ± " in network or f"| hierarchical | {dropped:,.0f} ± " in network


def test_link_traces_are_the_trace_file_in_one_second_bins(cellular):
    run = load_run(cellular)
    figure, results = fig_link_traces(run), csv(cellular, "results.csv")
    first = results[(results.replication == 0) & (results.uplink_mbps == min(results.uplink_mbps))]
    offset_s = first.trace_offset_s.iloc[0]
    assert set(figure.data.link) == {"uplink", "downlink"}
    # brute force from the file: 1500-byte opportunities at each listed millisecond, repeating every period
    times_ms = np.loadtxt(UMTS, dtype=np.int64)
    period_s = times_ms[-1] / 1e3
    times_s = np.concatenate([times_ms / 1e3 + k * period_s for k in range(3)])
    up = figure.data[figure.data.link == "uplink"]
    assert up.time_s.min() == pytest.approx(math.floor(offset_s) - offset_s) and up.time_s.max() <= 900
    assert len(up) in (899, 900)  # 15 minutes of the 931 s trace, whole bins only
    for row in up.iloc[::37].itertuples():
        start = row.time_s + offset_s
        packets = np.count_nonzero((times_s >= start) & (times_s < start + 1))
        assert row.mbps == pytest.approx(packets * 1500 * 8 / 1e6)
    marks = figure.marks
    outages = marks[marks.kind == "outage"]
    assert sorted(outages.link) == ["downlink", "uplink"] and (outages.start_s == OUTAGE_S[0]).all()
    assert (outages.end_s == OUTAGE_S[1]).all()
    gaps = marks[(marks.kind == "trace gap") & (marks.link == "uplink")]
    assert len(gaps) >= 10  # the drive's 23 gaps over 931 s, 15 minutes of them
    for gap in gaps.itertuples():
        assert gap.end_s - gap.start_s > 1
        inside = (times_s > gap.start_s + offset_s + 1e-9) & (times_s < gap.end_s + offset_s - 1e-9)
        assert not inside.any()
    ends = marks[marks.kind == "run end"]
    assert sorted(ends[ends.link == "uplink"].start_s) == sorted(first.total_time_s)


def test_worst_outage_is_stalls_csv_of_replication_0_at_the_lowest_rate(cellular):
    figure, stalls = fig_worst_outage(load_run(cellular)), csv(cellular, "stalls.csv")
    data = figure.data
    assert set(data.method) == {"hierarchical", "split_learning"} and set(data.replication) == {0}
    assert set(data.uplink_mbps) == {min(stalls.uplink_mbps)}
    for method in ("hierarchical", "split_learning"):
        mine = data[data.method == method]
        stall = mine[mine.kind == "stall"].iloc[0]
        # the 20 s outage is the longest stall (the trace's own gaps last at most 5.8 s)
        assert stall.time_s <= OUTAGE_S[0] and stall.end_s >= OUTAGE_S[1]
        source = stalls[(stalls.method == method) & (stalls.replication == 0) & (stalls.uplink_mbps == stall.uplink_mbps)]
        assert (mine.kind == "drop").sum() == (source.kind == "drop").sum()
        assert not mine[mine.kind == "backlog"].duplicated("time_s").any()  # one level per instant
    assert (data[data.method == "hierarchical"].kind == "drop").sum() > 0  # drop_oldest drops features
    assert (data[data.method == "split_learning"].kind == "drop").sum() == 0


def test_replication_means_average_only_what_differs():
    table = pd.DataFrame({"model": ["m"] * 4, "method": ["h", "h", "h", "s"], "uplink_mbps": [0.1] * 4,
                          "replication": [0, 1, 2, 0], "total_time_s": [1.0, 2.0, 6.0, 5.0],
                          "latency_ms": [0.1, 0.1, 0.1, 0.1], "split": ["a", "a", "a", "b"]})
    means = replication_means(table)
    assert means.to_dict("records") == [
        {"model": "m", "method": "h", "uplink_mbps": 0.1, "total_time_s": 3.0, "latency_ms": 0.1, "split": "a",
         "replications": 3},
        {"model": "m", "method": "s", "uplink_mbps": 0.1, "total_time_s": 5.0, "latency_ms": 0.1, "split": "b",
         "replications": 1}]
    single = table[table.replication == 0]
    assert replication_means(single) is single  # one replication: as it is


def test_report_redraw_removes_network_figures_a_run_no_longer_has(cellular, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(cellular, copy)
    scenario = json.loads((copy / "scenario.json").read_text())
    scenario["network"].update(uplink_trace=None, downlink_trace=None, outages=[])
    (copy / "scenario.json").write_text(json.dumps(scenario))
    stalls = pd.read_csv(copy / "stalls.csv")
    stalls.iloc[:0].to_csv(copy / "stalls.csv", index=False)
    run_cli("report", copy)
    for name in NETWORK_FIGURES:
        assert not (copy / name).exists()
    assert "## Network" in (copy / "report.md").read_text()  # the drop policy is still worth a word


@pytest.mark.parametrize("outages, drawn", [([], []), ([{"start_s": 2.0, "duration_s": 10.0}], NETWORK_FIGURES)])
def test_a_constant_link_draws_the_network_figures_only_with_outages(tmp_path, outages, drawn):
    path = write_scenario(tmp_path, {**TINY, "network.uplink_mbps": [1.0], "network.outages": outages})
    run_cli(path, "--no-progress")
    out = tmp_path / "out"
    markdown = (out / "report.md").read_text()
    for name in NETWORK_FIGURES:
        assert (out / name).exists() == (name in drawn) and (f"]({name})" in markdown) == (name in drawn)
    assert markdown.count("> Not drawn:") == 1  # time to accuracy only: no note for the network figures
    assert ("## Network" in markdown) == bool(outages) and "±" not in markdown
    if outages:
        figure = fig_link_traces(load_run(out))
        assert set(figure.data.mbps) == {1.0} and figure.data.time_s.max() > 12
        assert figure.marks[figure.marks.kind == "outage"][["start_s", "end_s"]].values.tolist() == [[2.0, 12.0]]
