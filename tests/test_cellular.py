"""Scenarios on measured traces: keys, errors, replications and their summary, end to end."""
import pandas as pd
import pytest
from conftest import DELETE, ROOT, assert_user_error, write_scenario

from simulator.report import load_run
from simulator.report.accuracy_figure import fig_time_to_accuracy
from simulator.report.sweep_figures import fig_sweep_lines

UMTS = str(ROOT / "traces" / "TMobile-UMTS-driving.up")


def cellular(tmp_path, changes: dict | None = None, name: str = "scenario"):
    base = {"network.uplink_mbps": DELETE, "network.uplink_trace": UMTS, "network.downlink_trace": "paired",
            "network.trace_offset_s": "random", "network.uplink_buffer_policy": "drop_oldest",
            "network.outages": [{"start_s": 5.0, "duration_s": 20.0}], "replications": 3,
            "workload.epochs": 1, "workload.train_samples": 1600,
            "workload.models": [{"name": "vgg16", "split": "stage5"}], "accuracy.enabled": False}
    return write_scenario(tmp_path, {**base, **(changes or {})}, name=name)


def test_replications_are_deterministic_and_summarised(tmp_path, cli):
    path = cellular(tmp_path)
    first = cli(path, "--no-progress")
    assert first.returncode == 0, first.stderr
    out = tmp_path / "out"
    files = {name: (out / name).read_bytes() for name in ("results.csv", "summary.csv", "stalls.csv")}
    again = cli(path, "--no-progress")
    assert again.returncode == 0, again.stderr
    assert files == {name: (out / name).read_bytes() for name in files}  # the same seed: byte-identical

    results = pd.read_csv(out / "results.csv")
    assert sorted(results.replication.unique()) == [0, 1, 2] and len(results) == 9
    assert results.uplink_trace.unique().tolist() == ["TMobile-UMTS-driving.up"]
    assert results.downlink_trace.unique().tolist() == ["TMobile-UMTS-driving.down"]
    assert results.uplink_mbps.iloc[0] == pytest.approx(0.9432, abs=1e-4)
    offsets = results.groupby("replication").trace_offset_s.nunique()
    assert (offsets == 1).all() and results.trace_offset_s.nunique() == 3  # shared by the methods, own per replication
    hier = results[results.method == "hierarchical"]
    assert (hier.batches_dropped > 0).all() and (hier.cloud_batches_trained + hier.batches_dropped == 50).all()
    assert (results[results.method != "hierarchical"].batches_dropped == 0).all()

    summary = pd.read_csv(out / "summary.csv")
    row = summary[summary.method == "split_learning"].iloc[0]
    times = results[results.method == "split_learning"].total_time_s
    assert row.replications == 3 and row.total_time_s_mean == pytest.approx(times.mean())
    assert row.total_time_s_std == pytest.approx(times.std(ddof=1))
    half = 4.302652729911275 * times.std(ddof=1) / 3 ** 0.5  # t(0.975, 2)
    assert row.total_time_s_ci_low == pytest.approx(times.mean() - half)
    assert row.total_time_s_ci_high == pytest.approx(times.mean() + half)


def test_another_seed_moves_the_trace_offsets(tmp_path, cli):
    for seed in (0, 1):
        assert cli(cellular(tmp_path, {"seed": seed, "output_dir": str(tmp_path / f"o{seed}")}, name=f"s{seed}"),
                   "--no-progress").returncode == 0
    a, b = (pd.read_csv(tmp_path / f"o{seed}" / "results.csv") for seed in (0, 1))
    assert set(a.trace_offset_s) != set(b.trace_offset_s)


def test_a_deterministic_scenario_runs_once_whatever_replications_says(tmp_path, cli):
    path = cellular(tmp_path, {"network.trace_offset_s": 100.0})
    proc = cli(path, "--no-progress")
    assert proc.returncode == 0 and "nothing in the scenario is random" in proc.stdout
    results = pd.read_csv(tmp_path / "out" / "results.csv")
    assert results.replication.unique().tolist() == [0] and (results.trace_offset_s == 100.0).all()


def test_a_trace_scale_is_the_rate_axis(tmp_path, cli):
    path = cellular(tmp_path, {"network.trace_scale": [1.0, 4.0], "replications": 1,
                               "network.uplink_buffer_policy": "block"})
    assert cli(path, "--no-progress").returncode == 0
    results = pd.read_csv(tmp_path / "out" / "results.csv")
    rates = sorted(results.uplink_mbps.unique())
    assert rates[1] == pytest.approx(4 * rates[0]) and sorted(results.trace_scale.unique()) == [1.0, 4.0]
    for _, rows in results.groupby("method"):
        slow, fast = rows.sort_values("uplink_mbps").total_time_s
        assert fast < slow


@pytest.mark.parametrize("changes, fragments", [
    ({"network.uplink_mbps": [1.0]}, ["network.uplink_mbps and network.uplink_trace exclude each other"]),
    ({"network.uplink_trace": DELETE, "network.uplink_mbps": [1.0]}, ["network.downlink_trace: paired needs"]),
    ({"network.uplink_trace": "traces/nothing.up"}, ["network.uplink_trace", "traces/nothing.up", "not found"]),
    ({"network.uplink_trace": str(ROOT / "traces" / "README.md")}, ["network.uplink_trace", "line 1"]),
    ({"network.uplink_trace": DELETE, "network.downlink_trace": DELETE, "network.uplink_mbps": [1.0],
      "network.trace_scale": [1.0, 2.0]}, ["network.trace_scale", "uplink trace"]),
    ({"network.trace_scale": [0.0]}, ["network.trace_scale[0]", "> 0"]),
    ({"network.trace_offset_s": "later"}, ["network.trace_offset_s", "random"]),
    ({"network.outages": [{"start_s": 1.0, "duration_s": 0}]}, ["network.outages[0].duration_s", "> 0"]),
    ({"network.outage_model": {"mean_up_s": 10.0}}, ["network.outage_model", "mean_down_s"]),
    ({"network.uplink_buffer_policy": "drop_all"}, ["network.uplink_buffer_policy", "drop_oldest"]),
    ({"replications": 0}, ["replications", "> 0"]),
    ({"network.uplink_trace": DELETE, "network.downlink_trace": DELETE, "network.uplink_mbps": [1.0]},
     ["network.trace_offset_s: random needs a trace"]),
    ({"sweep": {"network.trace_scale": [[1.0], [2.0]]}}, ["network.trace_scale", "inner axis"]),
])
def test_bad_cellular_keys_are_one_line_errors(tmp_path, cli, changes, fragments):
    proc = cli(cellular(tmp_path, changes), "--no-progress")
    assert_user_error(proc, "scenario.yaml", *fragments)
    assert not (tmp_path / "out").exists()


def test_a_sweep_over_traces(tmp_path, cli):
    evdo = str(ROOT / "traces" / "Verizon-EVDO-driving.up")
    path = cellular(tmp_path, {"sweep": {"network.uplink_trace": [UMTS, evdo]}, "replications": 2})
    proc = cli(path, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    results = pd.read_csv(tmp_path / "out" / "results.csv")
    assert set(results.uplink_trace) == {"TMobile-UMTS-driving.up", "Verizon-EVDO-driving.up"}
    assert set(results.downlink_trace) == {"TMobile-UMTS-driving.down", "Verizon-EVDO-driving.down"}
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert len(summary) == 2 * 3 and (summary.replications == 2).all()
    lines = fig_sweep_lines(load_run(str(tmp_path / "out")))  # each trace has its own rate: compared at one scale
    assert set(lines.data.value) == {UMTS, evdo} and lines.caption.startswith("At trace scale 1")


def test_accuracy_under_drops_is_trained_per_drop_pattern(tmp_path, cli):
    path = cellular(tmp_path, {"replications": 2, "accuracy.enabled": True, "accuracy.width": 0.0625,
                               "accuracy.epochs": 1, "accuracy.train_subset": 640, "accuracy.test_subset": 200,
                               "accuracy.dataset": "fashion-mnist"})
    proc = cli(path, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out"
    results = pd.read_csv(out / "results.csv")
    hier = results[results.method == "hierarchical"]
    assert (hier.batches_dropped > 0).all() and hier.accuracy_proxy.str.contains("the cloud skipped").all()
    training = pd.read_csv(out / "training.csv")
    skipping = training[training.cloud_skipped > 0]
    assert skipping.cache_key.nunique() == 2  # one real training run per replication's drop pattern
    assert set(skipping.exit_train_loss) <= set(training[training.cloud_skipped == 0].exit_train_loss)  # edge alike
    figure = fig_time_to_accuracy(load_run(str(out)))  # a dropping run has no one accuracy curve: left out
    assert "hierarchical" not in set(figure.data.method) and figure.caption.startswith("Hierarchical runs whose")
