"""Fleet scenarios (`edges:`) as a user runs them: outputs, the sweep over the fleet size, one
edge giving the single-edge scenario's numbers, and one-line errors for bad fleets."""
import math
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from conftest import DELETE, ROOT, assert_user_error, run_in_process, scenario_data

from simulator.fleet.runs import EDGE_COLUMNS

PI = {"vgg16": str(ROOT / "profiles/raspberry-pi-4_vgg16_fashion-mnist_b32.json"),
      "resnet18": str(ROOT / "profiles/raspberry-pi-4_resnet18_fashion-mnist_b32.json")}


def fleet_data(tmp_path, changes: dict | None = None) -> dict:
    """scenarios/fleet.yaml made small: 2 epochs, 64 samples per edge, no sweep, no training."""
    data = scenario_data(tmp_path, {"workload.epochs": 2, "sweep": DELETE, "accuracy.enabled": False}, base="fleet")
    for group in data["edges"]:
        group["train_samples"] = 64
    for key, value in (changes or {}).items():
        node, *path = key.split(".")
        target = data
        for part in [node, *path][:-1]:
            target = target[int(part)] if isinstance(target, list) else target.setdefault(part, {})
        last = [node, *path][-1]
        if isinstance(target, list):
            target[int(last)] = value
        elif value is DELETE:
            target.pop(last, None)
        else:
            target[last] = value
    return data


def write(tmp_path, data: dict, name: str = "fleet_test.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def run(path, *flags):
    proc = run_in_process("run", path, "--no-progress", "--workers", "1", *flags)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_a_swept_fleet_writes_results_edges_and_its_report(tmp_path):
    data = fleet_data(tmp_path, {"sweep": {"edges.0.count": [1, 3]}})
    proc = run(write(tmp_path, data), "--no-train")
    out = tmp_path / "out"
    results, edges = pd.read_csv(out / "results.csv"), pd.read_csv(out / "edges.csv")
    assert list(edges.columns[:10]) == EDGE_COLUMNS[:10]  # the columns, in its order
    assert sorted(set(results.edges)) == [3, 5]  # 1 or 3 Jetsons with 2 Pis
    assert set(results.method) == {"full_cloud", "split_learning", "hierarchical"}
    assert list(results["edges.0.count"].drop_duplicates()) == [1, 3]
    for (method, size), rows in edges.groupby(["method", "fleet_edges"]):
        assert len(rows) == size and list(rows.edge) == list(range(size))
        assert list(rows.group) == ["jetson-lte"] * (size - 2) + ["pi-3g"] * 2
        total = results[(results.method == method) & (results.edges == size)].total_time_s.iloc[0]
        assert rows.total_time_s.max() == pytest.approx(total)
    assert (results.cloud_utilisation > 0).all() and (results.cloud_utilisation <= 1).all()
    for name in ("report.md", "report.html", "fig_fleet_scaling.png", "fig_fleet_spread.png", "scenario.json"):
        assert (out / name).is_file(), name
    assert "time per epoch" in proc.stdout
    assert results.accuracy_proxy.isna().all() and edges.early_exit_accuracy.isna().all()  # --no-train: empty
    again = run_in_process("report", out)
    assert again.returncode == 0 and "fig_fleet_scaling.png" in again.stdout


def test_sequential_split_learning_grows_with_the_fleet_and_hierarchical_does_not(tmp_path):
    data = fleet_data(tmp_path, {"sweep": {"edges.0.count": [1, 4]}, "network.cell_uplink_mbps": DELETE})
    data["edges"] = data["edges"][:1]  # Jetsons on their own LTE-class links
    run(write(tmp_path, data), "--no-train")
    results = pd.read_csv(tmp_path / "out/results.csv").set_index(["method", "edges"]).time_per_epoch_s
    assert results["split_learning", 4] > 3.5 * results["split_learning", 1]  # the edges take turns
    assert results["hierarchical", 4] < 1.1 * results["hierarchical", 1]  # they stream at once


def test_one_edge_fleet_gives_the_single_edge_scenarios_numbers(tmp_path):
    single = scenario_data(tmp_path, {"output_dir": str(tmp_path / "single"), "accuracy.enabled": False},
                           base="pi_edge_fashion_mnist")
    fleet = dict(single, output_dir=str(tmp_path / "fleet"))
    edge = fleet.pop("edge")
    fleet["edges"] = [{"count": 1, "name": "pi", "profiles": PI, "compute": edge["compute"]}]
    run(write(tmp_path, single, "single.yaml"))
    run(write(tmp_path, fleet, "fleet.yaml"))
    a = pd.read_csv(tmp_path / "single/results.csv").set_index(["model", "method", "uplink_mbps"])
    b = pd.read_csv(tmp_path / "fleet/results.csv").set_index(["model", "method", "uplink_mbps"])
    assert len(a) == len(b) == 30
    for column in ("total_time_s", "bytes_up", "bytes_down", "batches_dropped"):
        assert b[column].reindex(a.index).to_numpy() == pytest.approx(a[column].to_numpy(), rel=1e-9), column


@pytest.mark.parametrize("changes, fragments", [
    ({"edge": {"profiles": PI}}, ["edge and edges exclude each other"]),
    ({"edges": DELETE}, ["missing key edge"]),
    ({"edges.1.network.codex": "fp16"}, ["unknown key edges[1].network.codex", "valid keys"]),
    ({"edges.1.network.codec": "int8"}, ["edges[1].network.codec cannot be set per group"]),
    ({"edges.0.network.latency_ms": -1}, ["edges[0].network.latency_ms", ">= 0"]),
    ({"edges.1.profiles": "pi-9000"}, ["edges[1].profiles 'pi-9000'", "devices with one"]),
    ({"edges.1.count": 0}, ["edges[1].count must be >= 1"]),
    ({"edges.1.name": "jetson-lte"}, ["edges[1].name 'jetson-lte' is given twice"]),
    ({"edges.1.network": {"uplink_trace": str(ROOT / "traces/TMobile-UMTS-driving.up")}},
     ["edges[1].network.uplink_trace cannot be combined with network.cell_uplink_mbps"]),
    ({"edges.1.network": {"uplink_mbps": [1.0, 2.0]}}, ["edges[1].network.uplink_mbps must be one rate"]),
    ({"workload.models": [{"name": "vgg16", "split": "auto"}]}, ["workload.models[0].split: auto", "fleet"]),
    ({"cloud.gpus": 0}, ["cloud.gpus must be >= 1"]),
    ({"edges.1.train_samples": 0}, ["edges[1].train_samples must be > 0"]),
    ({"network.uplink_mbps": [5.0]}, ["network.uplink_mbps is not used", "every group sets its own uplink"]),
    ({"fleet.cloud_order": "lifo"}, ["fleet.cloud_order", "fifo", "round_robin"]),
    ({"fleet.dirichlet_alpha": 0}, ["fleet.dirichlet_alpha must be > 0"]),
    ({"sweep": {"edges.2.count": [1, 2]}}, ["sweep.edges.2.count", "edges has 2 entries"]),
])
def test_a_bad_fleet_is_one_line(tmp_path, changes, fragments):
    path = write(tmp_path, fleet_data(tmp_path, changes))
    assert_user_error(run_in_process("validate", path), str(path), *fragments)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("changes, fragments", [
    ({"cloud.gpus": 2}, ["cloud.gpus 2 needs a fleet (edges:)"]),
    ({"network.cell_uplink_mbps": 10.0}, ["network.cell_uplink_mbps needs a fleet (edges:)"]),
    ({"fleet.edge_sync": "epoch"}, ["fleet.edge_sync needs a fleet (edges:)"]),
])
def test_fleet_keys_need_a_fleet(tmp_path, changes, fragments):
    path = write(tmp_path, scenario_data(tmp_path, changes, base="pi_edge_fashion_mnist"))
    assert_user_error(run_in_process("validate", path), str(path), *fragments)


@pytest.mark.parametrize("command", ["split", "emulate"])
def test_one_edge_commands_refuse_a_fleet(tmp_path, command):
    path = write(tmp_path, fleet_data(tmp_path))
    assert_user_error(run_in_process(command, path), f"simulate {command} runs one edge device")


def test_the_fast_engine_refuses_a_fleet(tmp_path):
    path = write(tmp_path, fleet_data(tmp_path))
    assert_user_error(run_in_process("run", path, "--engine", "fast", "--no-train"), "does not simulate fleets")


def test_groups_with_their_own_rates_need_no_scenario_rate(tmp_path):
    data = fleet_data(tmp_path, {"network.uplink_mbps": DELETE})
    assert "uplink_mbps" not in data["network"]
    run(write(tmp_path, data), "--no-train")
    results = pd.read_csv(tmp_path / "out/results.csv")
    assert len(results) == 3 and results.uplink_mbps.isna().all()
    assert not math.isnan(results.total_time_s.iloc[0])


def test_one_and_two_workers_write_the_same_files(tmp_path):
    data = fleet_data(tmp_path, {"sweep": {"edges.0.count": [1, 2]}, "network.jitter_ms": 2.0})
    one, two = dict(data, output_dir=str(tmp_path / "one")), dict(data, output_dir=str(tmp_path / "two"))
    run(write(tmp_path, one, "one.yaml"), "--no-train")
    proc = run_in_process("run", write(tmp_path, two, "two.yaml"), "--no-progress", "--workers", "2", "--no-train")
    assert proc.returncode == 0, proc.stderr
    for name in ("results.csv", "edges.csv"):
        first, second = (tmp_path / "one" / name).read_text(), (tmp_path / "two" / name).read_text()
        assert first.replace("one", "two") == second.replace("one", "two"), name


def test_a_cell_late_in_a_long_run_ends(tmp_path):
    """A transfer's last bits once needed a wake-up shorter than the clock's resolution at t = 2,000 s:
    the run looped for ever at one instant. It must end (in about a second)."""
    data = fleet_data(tmp_path, {"workload.epochs": 30, "methods": ["split_learning"], "network.cell_uplink_mbps": 10.0})
    for group in data["edges"]:
        group["train_samples"] = 320
    data["edges"][0]["count"] = 2
    proc = subprocess.run([sys.executable, "-m", "simulator", "run", write(tmp_path, data), "--no-train",
                           "--no-progress", "--workers", "1"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert pd.read_csv(tmp_path / "out/results.csv").total_time_s.iloc[0] > 2000


def test_a_folder_switches_between_a_fleet_and_one_edge(tmp_path):
    fleet = fleet_data(tmp_path, {"output_dir": str(tmp_path / "shared")})
    run(write(tmp_path, fleet, "fleet.yaml"), "--no-train")
    assert (tmp_path / "shared/edges.csv").is_file()
    single = scenario_data(tmp_path, {"output_dir": str(tmp_path / "shared"), "accuracy.enabled": False,
                                      "network.uplink_mbps": [1.0], "workload.epochs": 1},
                           base="pi_edge_fashion_mnist")
    run(write(tmp_path, single, "single.yaml"))
    assert not (tmp_path / "shared/edges.csv").exists() and not (tmp_path / "shared/fig_fleet_scaling.png").exists()
    assert "fig_time_vs_bitrate.png" in (tmp_path / "shared/report.md").read_text()
    run(write(tmp_path, fleet, "fleet.yaml"), "--no-train")
    assert not (tmp_path / "shared/trace.csv").exists() and not (tmp_path / "shared/fig_time_vs_bitrate.png").exists()
    assert "fleet training comparison" in (tmp_path / "shared/report.md").read_text()


def test_the_scaling_figure_has_a_line_per_mode_of_a_swept_mode(tmp_path):
    from simulator.report.fleet import fig_fleet_scaling

    data = fleet_data(tmp_path, {"sweep": {"edges.0.count": [1, 2], "fleet.split_learning": ["sequential", "parallel"],
                                           "cloud.gpus": [1, 2]}, "methods": ["split_learning", "hierarchical"]})
    run(write(tmp_path, data), "--no-train")
    figure = fig_fleet_scaling(pd.read_csv(tmp_path / "out/results.csv"))
    modes = set(zip(figure.data.method, figure.data.fleet_mode))
    assert modes == {("split_learning", "sequential"), ("split_learning", "parallel"),
                     ("hierarchical", "round_robin, edge_sync none")}  # fleet.yaml: cloud_order round_robin
    report = (tmp_path / "out/report.md").read_text()
    assert "| split learning | parallel | jetson-lte |" in report  # the groups table keeps every mode


def test_a_group_with_its_own_rate_leaves_the_scenarios_trace(tmp_path):
    data = fleet_data(tmp_path, {"network.cell_uplink_mbps": DELETE,
                                 "network.uplink_trace": str(ROOT / "traces/TMobile-UMTS-driving.up"),
                                 "network.downlink_trace": "paired", "network.trace_offset_s": "random"})
    data["edges"][0]["network"] = {"latency_ms": 40.0}  # follows the scenario's trace
    proc = run_in_process("validate", write(tmp_path, data))
    assert proc.returncode == 0, proc.stderr


def test_replications_of_a_stochastic_fleet_draw_anew_and_the_report_shows_the_first(tmp_path):
    data = fleet_data(tmp_path, {"network.jitter_ms": 20.0, "replications": 2, "methods": ["hierarchical"]})
    run(write(tmp_path, data), "--no-train")
    results = pd.read_csv(tmp_path / "out/results.csv")
    assert list(results.replication) == [0, 1]
    assert results.total_time_s.iloc[0] != results.total_time_s.iloc[1]
    assert pd.read_csv(tmp_path / "out/edges.csv").replication.value_counts().to_dict() == {0: 3, 1: 3}
    report = (tmp_path / "out/report.md").read_text()
    assert report.count("| hierarchical | round_robin, edge_sync none | 3 |") == 1  # the scaling table: once
