"""Sweeps, targets and each method at its own separation point (README, "Sweeps", "Targets",
"Choosing the separation point")."""
import itertools
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import ROOT, assert_user_error, run_process, write_scenario

from simulator.scenario.config import TargetConfig
from simulator.scenario.build import scenario_from_data
from simulator.scenario.grid import METRICS, Setting, settings, with_values
from simulator.scenario.load import load_scenario
from simulator.sweep.runner import RESULT_COLUMNS, simulate_scenario
from simulator.sweep.targets import REPRODUCED, TARGET_COLUMNS, match

SHIPPED = sorted((ROOT / "scenarios").glob("*.yaml"))
ONE_EDGE = [p for p in SHIPPED if "edges" not in yaml.safe_load(p.read_text())]  # fleets: tests/test_fleet_scenario.py
SMALL = {"workload.epochs": 2, "network.uplink_mbps": [0.5, 2.0, 10.0], "accuracy.enabled": False}


def small(tmp_path: Path, changes: dict | None = None, name: str = "s") -> Path:
    return write_scenario(tmp_path, {**SMALL, **(changes or {})}, name=name)


# ---- each method at its own point ---------------------------------------------------------

def rate_monotone(table: pd.DataFrame) -> None:
    """Every method's time is non-increasing in the rate; except a hierarchical edge that drops
    batches (drop_*), whose run ends sooner the more it drops: a slower link can then finish first."""
    for (model, method), rows in table.groupby(["model", "method"]):
        if method == "hierarchical" and (rows.batches_dropped > 0).any():
            continue
        times = rows.sort_values("uplink_mbps").total_time_s.to_numpy()
        assert all(b <= a * (1 + 1e-12) for a, b in itertools.pairwise(times)), (model, method, times)


@pytest.mark.parametrize("path", ONE_EDGE, ids=lambda p: p.stem)
def test_every_method_is_non_increasing_in_the_rate_in_every_shipped_scenario(path):
    scenario = load_scenario(path)
    if len(scenario.network.uplink_mbps) < 2:  # a trace at one scale: order its first setting over scales
        assert scenario.network.uplink_trace is not None, path
        first = settings(scenario)[0]
        data = with_values(scenario.data, {**first.values, "network.trace_scale": [0.5, 1.0, 2.0],
                                           "workload.epochs": 1, "replications": 1})
        scenario = scenario_from_data(data, str(path))
        assert len(scenario.network.uplink_mbps) == 3
    grid = settings(scenario)
    for setting in grid if len(grid) <= 4 else grid[:2] + grid[-2:]:  # a sweep: its corners
        table, _ = simulate_scenario(setting.scenario, progress=False, trace=False)
        rate_monotone(table)


def test_low_bitrate_runs_each_method_at_its_own_fastest_point():
    scenario = load_scenario(ROOT / "scenarios" / "low_bitrate.yaml")
    from simulator.sweep.split_table import search_splits

    search = search_splits(scenario, None, confirm=False)
    table, _ = simulate_scenario(scenario, progress=False, search=search, trace=False)
    points = search.table[search.table.split_learning_edge_memory_mib <= scenario.edge.memory_mib]
    fastest = points.loc[points.groupby(["model", "uplink_mbps"]).split_learning_time_s.idxmin()]
    used = table[table.method == "split_learning"].set_index(["model", "uplink_mbps"]).split
    assert used.to_dict() == fastest.set_index(["model", "uplink_mbps"]).split.to_dict()
    # the case: VGG-16 at 25 Mbit/s is no longer forced onto hierarchical's stage4
    vgg = table[(table.model == "vgg16") & (table.method == "split_learning")].set_index("uplink_mbps")
    assert vgg.total_time_s[25.0] <= vgg.total_time_s[10.0]


def test_a_per_method_split_pins_each_method(tmp_path, cli):
    path = small(tmp_path, {"workload.models": [{"name": "vgg16",
                                                  "split": {"split_learning": "stage2", "hierarchical": "stage4"}}]})
    proc = cli(path, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    results = pd.read_csv(tmp_path / "out" / "results.csv", keep_default_na=False)
    assert set(results[results.method == "split_learning"].split) == {"stage2"}
    assert set(results[results.method == "hierarchical"].split) == {"stage4"}
    assert set(results[results.method == "full_cloud"].split) == {""}


def test_a_per_method_split_left_out_is_auto(tmp_path, cli):
    path = small(tmp_path, {"workload.models": [{"name": "vgg16", "split": {"hierarchical": "stage4"}}]})
    proc = cli(path, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    points = pd.read_csv(tmp_path / "out" / "split_points.csv")
    assert points.groupby("uplink_mbps").split_learning_chosen.sum().eq(1).all()


@pytest.mark.parametrize("split, fragments", [
    ({"split_learning": "stage9"}, ["workload.models[0].split.split_learning", "stage9", "valid: auto, stage1"]),
    ({"full_cloud": "stage2"}, ["unknown key workload.models[0].split.full_cloud", "split_learning, hierarchical"]),
    (3, ["workload.models[0].split must be"]),
])
def test_bad_per_method_splits(tmp_path, cli, split, fragments):
    path = small(tmp_path, {"workload.models": [{"name": "vgg16", "split": split}]})
    assert_user_error(cli("validate", path), str(path), *fragments)


# ---- sweeps -------------------------------------------------------------------------------

# (write_scenario writes keys sorted, so this is also the order of the file)
SWEEP = {"edge.profiles": ["jetson-orin-nano", "raspberry-pi-4", "jetson-nano"], "network.latency_ms": [10.0, 100.0]}


def test_the_sweep_is_the_grid_and_each_setting_equals_its_own_scenario(tmp_path, cli):
    path = small(tmp_path, {"sweep": SWEEP, "edge.compute": "auto"})
    proc = cli(path, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    results = pd.read_csv(tmp_path / "out" / "results.csv")
    assert list(results.columns) == ["scenario", "setting", *SWEEP] + RESULT_COLUMNS[1:]
    grid = results.drop_duplicates("setting")[["setting", *SWEEP]].values.tolist()
    assert grid == [[i, device, latency] for i, (device, latency) in
                    enumerate((d, l) for d in SWEEP["edge.profiles"] for l in SWEEP["network.latency_ms"])]
    assert len(results) == 6 * 2 * 3 * 3  # settings x models x rates x methods
    # one setting, run as a scenario of its own with those values written in: the same numbers
    (tmp_path / "alone").mkdir()
    alone = small(tmp_path / "alone", {"network.latency_ms": 100.0, "edge.profiles": "raspberry-pi-4",
                                       "edge.compute": "auto", "output_dir": str(tmp_path / "alone_out")})
    assert cli(alone, "--no-progress").returncode == 0
    mine = results[results.setting == 3].drop(columns=["setting", *SWEEP]).reset_index(drop=True)
    direct = pd.read_csv(tmp_path / "alone_out" / "results.csv")
    pd.testing.assert_frame_equal(mine.drop(columns="scenario"), direct.drop(columns="scenario"))
    split_points = pd.read_csv(tmp_path / "out" / "split_points.csv")
    assert set(split_points.setting) == set(range(6))
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Sweep" in report
    for figure in ("fig_sweep_lines.png", "fig_sweep_pairs_split_learning.png", "fig_sweep_pairs_full_cloud.png"):
        assert (tmp_path / "out" / figure).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("sweep, fragments", [
    ({"network.latncy_ms": [1.0]}, ["sweep.network.latncy_ms is not a scenario key", "valid keys of network:",
                                    "latency_ms"]),
    ({"network.latency_ms": [10.0, "fast"]}, ["sweep.network.latency_ms[1]", "must be a number"]),
    ({"network.latency_ms": [10.0, -1.0]}, ["sweep.network.latency_ms[1]", "must be >= 0"]),
    ({"network.latency_ms": []}, ["sweep.network.latency_ms is empty"]),
    ({"network.latency_ms": [1.0, 1.0]}, ["sweep.network.latency_ms[1]", "listed twice"]),
    ({"network.uplink_mbps": [[1.0]]}, ["sweep.network.uplink_mbps cannot be swept", "inner axis"]),
    ({"edge.profiles": ["no-such-device"]}, ["sweep.edge.profiles[0]", "no profile profiles/no-such-device_vgg16",
                                             "devices with one:", "jetson-orin-nano"]),
    ({"network.codec": ["fp8"]}, ["sweep.network.codec[0]", "valid: fp32, fp16, int8"]),
    ({"seed.x": [1]}, ["sweep.seed.x", "seed has no keys inside it"]),
    ({"network.latency_ms": list(range(1001))}, ["over the limit of 1,000 values"]),
])
def test_bad_sweeps_fail_in_one_line(tmp_path, cli, sweep, fragments):
    path = small(tmp_path, {"sweep": sweep})
    assert_user_error(cli("validate", path), str(path), *fragments)
    assert not (tmp_path / "out").exists()


def test_a_combination_that_cannot_run_names_the_setting(tmp_path, cli):
    # each value is valid alone; fashion-mnist has no shipped Jetson Nano profile: one combination fails
    path = small(tmp_path, {"sweep": {"edge.profiles": ["jetson-orin-nano", "jetson-nano"],
                                      "workload.dataset": ["cifar10", "fashion-mnist"]},
                            "edge.profiles": "jetson-orin-nano", "cloud.profiles": "a100", "edge.compute": "auto"})
    for proc in (cli("validate", path), cli(path, "--no-progress")):
        assert_user_error(proc, "sweep setting edge.profiles=jetson-nano, workload.dataset=fashion-mnist",
                          "no profile profiles/jetson-nano_vgg16_fashion-mnist_b32.json")
    assert not (tmp_path / "out" / "results.csv").exists()


def test_a_setting_that_fails_in_its_split_search_is_named(tmp_path, cli):
    path = small(tmp_path, {"sweep": {"edge.memory_mib": [4096, 1]}})
    assert_user_error(cli(path, "--no-progress"), "sweep setting edge.memory_mib=1", "too small")
    assert not (tmp_path / "out" / "results.csv").exists()


def test_simulate_split_refuses_a_sweep(tmp_path, cli):
    path = small(tmp_path, {"sweep": {"network.latency_ms": [10.0, 100.0]}})
    assert_user_error(cli("split", path), "simulate split compares the points of one setting", "network.latency_ms")


# ---- targets ------------------------------------------------------------------------------

def test_the_matcher_picks_the_closest_and_counts_those_within(tmp_path):
    scenario = load_scenario(small(tmp_path))
    grid = [Setting(i, {"network.latency_ms": v}, scenario) for i, v in enumerate((10.0, 50.0, 100.0))]
    table = pd.DataFrame({"setting": [0, 0, 1, 1, 2, 2], "model": "vgg16", "method": "hierarchical",
                          "dataset": "cifar10", "uplink_mbps": [0.5, 2.0] * 3,
                          "reduction_vs_split_learning": [0.10, 0.20, 0.28, 0.31, 0.40, math.nan]})
    target = TargetConfig(model="vgg16", dataset="cifar10", metric="reduction_vs_split_learning", value=0.30,
                          tolerance=0.025)
    row = match(target, table, grid, "out")
    assert (row["simulated_value"], row["uplink_mbps"], row["settings_within"]) == (0.31, 2.0, 2)
    assert row["verdict"] == REPRODUCED and row["network.latency_ms"] == 50.0
    assert row["difference"] == pytest.approx(0.01)
    only_low = match(TargetConfig(**{**vars(target), "uplink_mbps": [0.5], "tolerance": 0.015}), table, grid, "out")
    assert (only_low["simulated_value"], only_low["settings_within"]) == (0.28, 0)
    assert only_low["verdict"] == "not reproduced"
    high = match(TargetConfig(**{**vars(target), "value": 0.81}), table, grid, "out")
    assert high["verdict"] == "not reproduced" and "above the largest" in high["reason"]
    assert "0.1 to 0.4" in high["reason"]


def test_targets_csv_and_each_rerun_give_the_recorded_value(tmp_path, cli):
    target = {"name": "vgg", "model": "vgg16", "dataset": "cifar10", "metric": "reduction_vs_split_learning",
              "value": 0.3, "tolerance": 0.05, "uplink_mbps": [0.5, 2.0], "source": "a test"}
    path = small(tmp_path, {"sweep": SWEEP, "edge.compute": "auto", "targets": [target]})
    proc = cli(path, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    targets = pd.read_csv(tmp_path / "out" / "targets.csv")
    assert list(targets.columns[:len(TARGET_COLUMNS)]) == TARGET_COLUMNS
    assert list(targets.columns[len(TARGET_COLUMNS):len(TARGET_COLUMNS) + 2]) == list(SWEEP)
    row = targets.iloc[0]
    results = pd.read_csv(tmp_path / "out" / "results.csv")
    hier = results[(results.method == "hierarchical") & (results.model == "vgg16") & results.uplink_mbps.isin([0.5, 2.0])]
    closest = hier.loc[(hier.reduction_vs_split_learning - 0.3).abs().idxmin()]
    assert row.simulated_value == pytest.approx(closest.reduction_vs_split_learning, abs=1e-9)
    assert row["network.latency_ms"] == closest["network.latency_ms"]
    assert row.settings_within == int(((hier.reduction_vs_split_learning - 0.3).abs() <= 0.05).sum())
    rerun = Path(row.scenario_file)
    data = yaml.safe_load(rerun.read_text())
    assert "sweep" not in data and data["network"]["uplink_mbps"] == [row.uplink_mbps]
    proc = run_process(rerun, "--no-progress", cwd=tmp_path)  # from another folder: its paths hold
    assert proc.returncode == 0, proc.stderr
    again = pd.read_csv(tmp_path / "reports" / data["name"] / "targets.csv").iloc[0]
    assert abs(again.simulated_value - row.simulated_value) <= 0.01
    assert "## Targets" in (tmp_path / "out" / "report.md").read_text()


@pytest.mark.parametrize("target, fragments", [
    ({"metric": "speed"}, ["targets[0].metric 'speed' is not valid", "reduction_vs_split_learning"]),
    ({"dataset": "tiny-imagenet"}, ["targets[0].dataset 'tiny-imagenet' is never simulated"]),
    ({"uplink_mbps": [3.0]}, ["targets[0].uplink_mbps[0] 3 is not one of network.uplink_mbps"]),
    ({"model": "resnet18"}, ["targets[0].model 'resnet18' is not in workload.models"]),
    ({"tolerance": -0.1}, ["targets[0].tolerance must be >= 0"]),
    ({"valu": 0.3}, ["unknown key targets[0].valu"]),
    ({"name": "../../evil"}, ["targets[0].name '../../evil' is not a file name"]),
    ({"name": "x" * 81}, ["is not a file name", "1-80 letters"]),
    ({"metric": "final_accuracy"}, ["needs real training; accuracy.enabled is false"]),
])
def test_bad_targets_fail_in_one_line(tmp_path, cli, target, fragments):
    base = {"model": "vgg16", "dataset": "cifar10", "metric": "reduction_vs_split_learning", "value": 0.3,
            "tolerance": 0.05}
    path = small(tmp_path, {"workload.models": [{"name": "vgg16", "split": "auto"}], "targets": [{**base, **target}]})
    assert_user_error(cli("validate", path), str(path), *fragments)


def test_a_reduction_target_needs_its_baseline(tmp_path, cli):
    target = {"model": "vgg16", "dataset": "cifar10", "metric": "reduction_vs_split_learning", "value": 0.3,
              "tolerance": 0.05}
    path = small(tmp_path, {"methods": ["full_cloud", "hierarchical"], "targets": [target]})
    assert_user_error(cli("validate", path), "needs split_learning in methods")


def test_a_rerun_repeats_jitter_and_loss_and_stale_targets_go(tmp_path, cli):
    target = {"name": "t", "model": "vgg16", "dataset": "cifar10", "metric": "total_time_s", "value": 1.0,
              "tolerance": 1e9, "uplink_mbps": [2.0]}
    path = small(tmp_path, {"sweep": {"network.latency_ms": [10.0, 100.0]}, "network.jitter_ms": 20.0,
                            "network.loss_rate": 0.01, "targets": [target]})
    assert cli(path, "--no-progress").returncode == 0
    row = pd.read_csv(tmp_path / "out" / "targets.csv").iloc[0]
    proc = run_process(row.scenario_file, "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    name = yaml.safe_load(Path(row.scenario_file).read_text())["name"]
    assert pd.read_csv(tmp_path / "reports" / name / "targets.csv").simulated_value[0] == row.simulated_value
    # the same folder run again without targets keeps nothing of them
    again = small(tmp_path, {"network.jitter_ms": 20.0, "network.loss_rate": 0.01}, name="again")
    assert cli(again, "--no-progress").returncode == 0
    assert not (tmp_path / "out" / "targets.csv").exists() and not list((tmp_path / "out" / "targets").glob("*"))
    assert "## Targets" not in (tmp_path / "out" / "report.md").read_text()


def test_every_target_metric_is_a_results_column():
    assert set(METRICS) <= set(RESULT_COLUMNS)
