"""The fleet report (simulator/report/fleet.py, fleet_document.py) on hand-written run folders.

The folder is a sweep of the fleet size (edges.0.count: 10, 40 edges) and of a key that leaves it
alone (network.latency_ms: 20, 50 ms); at 50 ms every time is doubled and every offered load
tripled, so a figure or table that mixed the two settings would show it. Expectations are
hand-computed: the cloud's saturation point in log-log, each group's times and waits.
"""
import itertools
import math

import numpy as np
import pandas as pd
import pytest

from simulator.core.errors import UserError
from simulator.report.fleet import (
    fig_fleet_scaling,
    fig_fleet_spread,
    one_fleet_per_size,
    saturation_edges,
)
from simulator.report.fleet_document import (
    FLEET_REPORT_FILES,
    is_fleet_run,
    write_fleet_report,
)

SIZES = (10, 40)
LATENCIES_MS = (20.0, 50.0)
# (method, fleet_mode) -> {edges: (time per epoch s, offered load in GPUs)} at 20 ms
RUNS = {("full_cloud", "once"): {10: (50.0, 0.1), 40: (55.0, 0.4)},
        ("split_learning", "sequential"): {10: (100.0, 1.5), 40: (400.0, 1.5)},
        ("hierarchical", "fifo, edge_sync none"): {10: (12.0, 0.5), 40: (30.0, 2.0)}}
CAMERA_TIMES_S = (30.0, 32.0)  # alternately, per camera; every gateway takes 45 s
CAMERA_WAITS_S, GATEWAY_WAITS_S = (2.0, 0.5), (5.0, 1.5)  # (wait for the cloud, wait for the cell)


def results_table(sizes=SIZES, rate_mbps=1.0) -> pd.DataFrame:
    rows = []
    for setting, (size, latency) in enumerate(itertools.product(sizes, LATENCIES_MS)):
        slower = 1 if latency == 20 else 2
        for (method, mode), runs in RUNS.items():
            time_s, load = runs[size]
            rows.append({"scenario": "fleet_demo", "setting": setting, "edges.0.count": size - 10,
                         "network.latency_ms": latency, "model": "vgg16", "dataset": "cifar10", "method": method,
                         "fleet_mode": mode, "split": "stage2", "codec": "fp32", "uplink_mbps": rate_mbps,
                         "cell_uplink_mbps": 20.0, "edges": size, "groups": 2, "cloud_gpus": 1, "epochs": 2,
                         "total_time_s": 2 * time_s * slower, "time_per_epoch_s": time_s * slower,
                         "cloud_busy_s": 1.0, "cloud_utilisation": 0.5, "cloud_offered_load": load * (1 + 2 * (slower - 1)),
                         "bytes_up": size * 1e6, "bytes_down": 0.0, "sync_bytes": 0.0, "batches_trained": 100,
                         "batches_dropped": 0, "mean_wait_cloud_s": 1.0, "mean_wait_cell_s": 0.0,
                         "final_accuracy": 0.8 if method == "hierarchical" else math.nan,
                         "early_exit_accuracy": math.nan, "accuracy_proxy": ""})
    return pd.DataFrame(rows)


def edges_table(sizes=SIZES, groups=True) -> pd.DataFrame:
    """A quarter of each fleet are gateways (the last edges); with groups=False, one group of equal edges."""
    rows = []
    for setting, (size, latency) in enumerate(itertools.product(sizes, LATENCIES_MS)):
        for method, mode in RUNS:
            for edge in range(size):
                camera = not groups or edge < size * 3 // 4
                time_s = (CAMERA_TIMES_S[edge % 2] if groups else 30.0) if camera else 45.0
                waits = CAMERA_WAITS_S if camera else GATEWAY_WAITS_S
                rows.append({"method": method, "group": "cameras" if camera else "gateways", "edge": edge,
                             "total_time_s": time_s * (1 if latency == 20 else 2), "wait_cloud_s": waits[0],
                             "wait_cell_s": waits[1], "bytes_up": 1e6, "bytes_down": 0.0, "batches_trained": 10,
                             "batches_dropped": 0, "model": "vgg16", "fleet_mode": mode, "split": "stage2",
                             "uplink_mbps": 1.0, "fleet_edges": size, "setting": setting,
                             "edges.0.count": size - 10, "network.latency_ms": latency,
                             "final_accuracy": math.nan, "early_exit_accuracy": 0.6 if method == "hierarchical"
                             else math.nan})
    return pd.DataFrame(rows)


@pytest.fixture
def folder(tmp_path):
    results_table().to_csv(tmp_path / "results.csv", index=False)
    edges_table().to_csv(tmp_path / "edges.csv", index=False)
    return tmp_path


def test_saturation_is_interpolated_in_log_log():
    assert saturation_edges([10, 40], [0.5, 2.0], 1) == pytest.approx(20.0)  # load ~ n: 0.5 x 20/10 = 1
    assert saturation_edges([40, 10], [4.0, 1.0], 2) == pytest.approx(20.0)  # unsorted; 2 GPUs
    # load ~ n^2 between 20 and 40 edges (0.8 -> 3.2): 0.8 (n/20)^2 = 1 at n = 20 sqrt(1.25)
    assert saturation_edges([10, 20, 40], [0.2, 0.8, 3.2], 1) == pytest.approx(20 * math.sqrt(1.25))
    assert saturation_edges([10, 100], [0.25, 1.0], 1) == pytest.approx(100.0)  # reached at the last point
    assert saturation_edges([10, 20], [0.0, 2.0], 1) == pytest.approx(10 * math.sqrt(2))  # linear in load from 0
    assert math.isnan(saturation_edges([10, 40], [0.1, 0.4], 1))  # never reached
    assert math.isnan(saturation_edges([10, 40], [1.5, 3.0], 1))  # saturated from the start: no crossing


def test_two_settings_of_one_fleet_size_keep_the_first():
    table = pd.DataFrame({"setting": [0, 1, 2], "edges.0.count": [10, 20, 20], "edges.1.count": [20, 10, 20],
                          "model": "m", "uplink_mbps": 1.0, "method": "hierarchical", "fleet_mode": "fifo",
                          "edges": [30, 30, 40]})
    rows, held = one_fleet_per_size(table, "edges", ["edges.0.count", "edges.1.count"])
    assert list(rows.setting) == [0, 2] and held == {}


def test_scaling_figure_plots_the_held_setting_and_marks_saturation():
    figure = fig_fleet_scaling(results_table())
    assert figure.png is not None
    plotted = {(r.method, r.fleet_mode, r.edges): (r.time_per_epoch_s, r.cloud_offered_load)
               for r in figure.data.itertuples()}
    assert plotted == {(m, mode, n): RUNS[(m, mode)][n] for (m, mode) in RUNS for n in SIZES}  # 20 ms only
    marks = figure.marks.set_index("method")
    assert marks.loc["hierarchical", "saturation_edges"] == pytest.approx(20.0)
    assert marks.state.to_dict() == {"full_cloud": "below", "split_learning": "already", "hierarchical": "saturates"}
    assert "network.latency_ms = 20.0" in figure.caption


def test_scaling_figure_needs_two_fleet_sizes_and_draws_one_rate_of_many():
    one = fig_fleet_scaling(results_table(sizes=(10,)))
    assert one.png is None and "one fleet size" in one.note
    rates = pd.concat([results_table(rate_mbps=r) for r in (0.5, 1.0, 2.0, 5.0, 10.0)], ignore_index=True)
    many = fig_fleet_scaling(rates)
    assert list(many.data.uplink_mbps.unique()) == [0.5] and "first of 5 rates" in many.caption
    own = fig_fleet_scaling(results_table(rate_mbps=math.nan))  # every group sets its own rate
    assert own.png is not None and len(own.data) == 6


def test_spread_figure_shows_the_largest_fleet_per_edge_and_group():
    figure = fig_fleet_spread(edges_table())
    assert figure.png is not None
    assert len(figure.data) == 3 * 40  # every edge of the 40-edge fleet, per method
    hier = figure.data[figure.data.method == "hierarchical"]
    assert sorted(set(hier.total_time_s)) == [30.0, 32.0, 45.0]  # 20 ms, not the doubled 50 ms times
    assert hier.groupby("group").size().to_dict() == {"cameras": 30, "gateways": 10}
    assert hier.x.between(2 - 0.3, 2 + 0.3).all()  # the third column
    waits = figure.marks[figure.marks.method == "hierarchical"].set_index("group")
    assert tuple(waits.loc["gateways", ["wait_cloud_s", "wait_cell_s"]]) == GATEWAY_WAITS_S
    assert waits.loc["cameras", "edges"] == 30


def test_spread_figure_is_skipped_for_a_homogeneous_fleet():
    figure = fig_fleet_spread(edges_table(groups=False))
    assert figure.png is None and "homogeneous" in figure.note
    varied = edges_table(groups=False)
    varied.loc[varied.edge == 0, "total_time_s"] += 1.0  # one group, but one edge slower
    assert fig_fleet_spread(varied).png is not None


def test_report_names_the_saturation_points(folder):
    written = write_fleet_report(folder)
    assert sorted(p.name for p in written) == sorted(FLEET_REPORT_FILES)
    assert all(p.stat().st_size > 0 for p in written)
    text = (folder / "report.md").read_text()
    assert text.startswith("# fleet_demo: fleet training comparison")
    assert "the cloud (1 GPU) saturates at about 20 edges under hierarchical training (fifo, edge_sync none)" in text
    assert "does not saturate up to 40 edges under full-cloud training (once): offered load 0.4 GPUs there" in text
    assert "is saturated already at 10 edges, the smallest fleet, under split learning (sequential)" in text
    assert "| hierarchical | fifo, edge_sync none | 40 | 30.0 s | 50.0% | 1.00 MB |" in text
    # gateways: 10 edges at 45 s, waits 5 s and 1.5 s; cameras alternate 30 s and 32 s
    assert "| hierarchical | fifo, edge_sync none | gateways | 10 | 45.0 s | 45.0 s | 45.0 s | 5.0 s | 1.5 s |" in text
    assert "| hierarchical | fifo, edge_sync none | cameras | 30 | 31.0 s | 30.0 s | 32.0 s | 2.0 s | 0.5 s |" in text
    assert "| hierarchical | fifo, edge_sync none | - | 40 | 80.0% | 60.0% | 60.0% - 60.0% |" in text  # accuracy
    assert "data:image/png;base64" in (folder / "report.html").read_text()
    assert is_fleet_run(folder)


def test_a_stale_figure_is_removed_and_noted(folder):
    edges_table(groups=False).to_csv(folder / "edges.csv", index=False)
    (folder / "fig_fleet_spread.png").write_bytes(b"an earlier run's figure")
    written = write_fleet_report(folder)
    assert not (folder / "fig_fleet_spread.png").exists()
    assert "fig_fleet_spread.png" not in {p.name for p in written}
    assert "> Not drawn: a homogeneous fleet" in (folder / "report.md").read_text()


def test_untrained_run_has_no_accuracy_section(folder):
    results = results_table().assign(final_accuracy=np.nan)
    results.to_csv(folder / "results.csv", index=False)
    edges_table().assign(early_exit_accuracy=np.nan).to_csv(folder / "edges.csv", index=False)
    write_fleet_report(folder)
    assert "## Accuracy" not in (folder / "report.md").read_text()


def test_groups_come_from_scenario_json_where_written(folder):
    (folder / "scenario.json").write_text('{"name": "cameras_and_gateways", "description": "Two groups.", '
                                          '"edges": [{"name": "cameras", "count": 30, "compute": "cpu"}, '
                                          '{"name": "gateways", "count": 10, "network": {"uplink_mbps": 5}}]}')
    write_fleet_report(folder)
    text = (folder / "report.md").read_text()
    assert text.startswith("# cameras_and_gateways:")
    assert "cameras: 30 edges (cpu); gateways: 10 edges (5 Mbit/s uplink)" in text


def test_a_folder_without_edges_or_a_column_is_a_user_error(folder, tmp_path_factory):
    other = tmp_path_factory.mktemp("single")
    results_table().to_csv(other / "results.csv", index=False)
    assert not is_fleet_run(other)
    with pytest.raises(UserError, match="edges.csv is missing"):
        write_fleet_report(other)
    results_table().drop(columns="cloud_offered_load").to_csv(folder / "results.csv", index=False)
    with pytest.raises(UserError, match="results.csv: missing column 'cloud_offered_load'"):
        write_fleet_report(folder)
