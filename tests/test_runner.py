"""A scenario end to end: the sweep, results.csv, the terminal summary, reproducibility."""
import math

import pandas as pd
import pytest
import yaml
from conftest import write_scenario

from simulator.core.text import reduction_text
from simulator.sweep.runner import RESULT_COLUMNS

ISSUE_COLUMNS = ["scenario", "model", "dataset", "method", "split", "uplink_mbps", "downlink_mbps", "total_time_s",
                 "analytic_time_s", "reduction_vs_split_learning", "reduction_vs_full_cloud", "bytes_up",
                 "bytes_down", "raw_bytes_sent", "edge_busy_frac", "uplink_busy_frac", "cloud_busy_frac",
                 "max_uplink_backlog"]


def small_scenario(tmp_path, **network) -> tuple:
    path = write_scenario(tmp_path, {"workload.epochs": 2, "workload.train_samples": 3200,  # 100 batches per epoch
                                     "network.uplink_mbps": [0.5, 2.0, 50.0],
                                     **{f"network.{k}": v for k, v in network.items()},
                                     "accuracy": {"enabled": False}})  # the simulation alone; training has its own tests
    return path, tmp_path / "out" / "results.csv"


def test_run_writes_every_row_and_column(cli, tmp_path):
    path, csv = small_scenario(tmp_path)
    proc = cli(path, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(csv)
    assert list(table.columns) == RESULT_COLUMNS and set(ISSUE_COLUMNS) <= set(table.columns)
    assert len(table) == 2 * 3 * 3  # models x rates x methods
    assert set(table.method) == {"full_cloud", "split_learning", "hierarchical"}
    # Deterministic network: the DES equals the closed form.
    assert ((table.total_time_s - table.analytic_time_s).abs() <= 1e-3 * table.analytic_time_s).all()
    # Reductions are relative to the baseline at the same model and rate.
    for (model, rate), group in table.groupby(["model", "uplink_mbps"]):
        times = group.set_index("method").total_time_s
        hier = group[group.method == "hierarchical"].iloc[0]
        assert hier.reduction_vs_split_learning == pytest.approx(1 - times.hierarchical / times.split_learning)
        assert hier.reduction_vs_full_cloud == pytest.approx(1 - times.hierarchical / times.full_cloud)
    # Only full-cloud sends raw data; only split learning uses the downlink.
    assert (table[table.method != "full_cloud"].raw_bytes_sent == 0).all()
    assert (table[table.method != "split_learning"].bytes_down == 0).all()
    assert (table[table.method == "full_cloud"].raw_bytes_sent == 100 * 32 * (3072 + 1)).all()
    # Faster uplinks are never slower.
    for _, group in table.groupby(["model", "method"]):
        assert group.sort_values("uplink_mbps").total_time_s.is_monotonic_decreasing
    assert "hier vs split_learning" in proc.stdout and "wrote" in proc.stdout


def test_same_seed_gives_an_identical_csv_and_another_seed_does_not(cli, tmp_path):
    path, csv = small_scenario(tmp_path, jitter_ms=20.0, loss_rate=0.01)
    assert cli(path, "--no-progress").returncode == 0
    first = csv.read_bytes()
    assert cli(path, "--no-progress").returncode == 0
    assert csv.read_bytes() == first
    data = yaml.safe_load(path.read_text())
    data["seed"] = 1
    path.write_text(yaml.safe_dump(data))
    assert cli(path, "--no-progress").returncode == 0
    assert csv.read_bytes() != first
    table = pd.read_csv(csv)
    assert (table.total_time_s >= table.analytic_time_s * (1 - 1e-9)).all()  # jitter and loss never help


def test_reduction_text():
    assert reduction_text(0.29) == "+29%" and reduction_text(-0.5) == "-50%"
    assert reduction_text(-2.1) == "3.1x longer" and reduction_text(math.nan) == "-"


def test_shipped_pi_scenario_runs_end_to_end(cli, tmp_path):
    """The small shipped example (jitter, loss, fp16, CPU edge) as a user runs it, without training."""
    path = write_scenario(tmp_path, base="pi_edge_fashion_mnist")
    proc = cli(path, "--no-progress", "--no-train")
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(tmp_path / "out" / "results.csv")
    rates = yaml.safe_load(path.read_text())["network"]["uplink_mbps"]
    assert len(table) == 2 * 3 * len(rates)
    assert (table.total_time_s >= table.analytic_time_s * (1 - 1e-9)).all()
    assert (table.codec == "fp16").all() and table.final_accuracy.isna().all()
