"""The comparison report: every figure is a real PNG whose plotted data equals the saved CSVs,
report.html is self-contained, report.md links every figure, small scenarios report cleanly,
and `simulate report` redraws a folder without simulating again.

Inputs come from the real CLI run in-process on shrunken copies of scenarios/low_bitrate.yaml.
"""
import base64
import html.parser
import io
import math
import os
import shutil
import subprocess
from pathlib import Path

import matplotlib.image
import pandas as pd
import pytest
from conftest import ROOT, assert_user_error, run_in_process, write_scenario

from simulator.core.text import duration_text
from simulator.models import build_model
from simulator.report import crossovers, load_run
from simulator.report.accuracy_figure import fig_time_to_accuracy, simulated_epoch
from simulator.report.data import RunData
from simulator.report.runtime_figures import (
    fig_bytes,
    fig_reduction,
    fig_time_vs_bitrate,
)
from simulator.report.split_figure import fig_split
from simulator.report.trace_figures import fig_backlog, fig_timeline

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FIGURE_FILES = ["fig_time_vs_bitrate.png", "fig_reduction.png", "fig_time_to_accuracy.png", "fig_timeline.png",
                "fig_backlog.png", "fig_bytes.png", "fig_split.png"]
FASHION = Path("/usr/share/datasets/fashion-mnist")
needs_fashion_mnist = pytest.mark.skipif(not FASHION.is_dir() and not os.environ.get("CI"),
                                         reason="Debian's dataset-fashion-mnist is not installed (CI installs it)")
RUN_KEYS = ["model", "method", "uplink_mbps"]


def run_cli(*args) -> subprocess.CompletedProcess:
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)
        proc = run_in_process(*args)
    assert proc.returncode == 0, proc.stderr
    return proc


def scenario_file(folder: Path, workload: dict, network: dict, accuracy: dict, methods=None) -> Path:
    changes = {**{f"workload.{k}": v for k, v in workload.items()}, **{f"network.{k}": v for k, v in network.items()},
               "accuracy": accuracy}
    return write_scenario(folder, changes | ({"methods": methods} if methods else {}))


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Both models, 3 methods, 3 rates (3G-class 0.5 and 1 Mbit/s, 50 Mbit/s), 2 epochs of 100 batches, no training."""
    tmp = tmp_path_factory.mktemp("report")
    path = scenario_file(tmp, {"epochs": 2, "train_samples": 3200}, {"uplink_mbps": [0.5, 1.0, 50.0]},
                         {"enabled": False})
    proc = run_cli(path, "--no-progress")
    assert "wrote the report" in proc.stdout and "report.html" in proc.stdout
    return tmp / "out"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny real training run (2 epochs) of a 5-epoch workload, with its own training cache."""
    tmp = tmp_path_factory.mktemp("trained")
    path = scenario_file(tmp, {"epochs": 5, "train_samples": 320, "models": [{"name": "vgg16", "split": "stage3"}]},
                         {"uplink_mbps": [0.5, 1.0, 10.0]},
                         {"dataset": "fashion-mnist", "width": 0.0625, "epochs": 2, "train_subset": 640,
                          "test_subset": 200})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SIMULATOR_CACHE", str(tmp / "cache"))
        run_cli(path, "--no-progress")
    return tmp / "out"


def assert_png(data: bytes) -> None:
    assert data[:8] == PNG_SIGNATURE and len(data) > 10_000
    image = matplotlib.image.imread(io.BytesIO(data), format="png")
    assert image.shape[0] > 250 and image.shape[1] > 400
    assert image[..., :3].std() > 0.05  # not a blank canvas


def csv(folder: Path, name: str) -> pd.DataFrame:
    table = pd.read_csv(folder / name)
    if "uplink_mbps" in table:
        table["uplink_mbps"] = table.uplink_mbps.astype(float)
    return table


@pytest.mark.parametrize("name", [f for f in FIGURE_FILES if f != "fig_time_to_accuracy.png"])
def test_every_figure_is_a_valid_png(folder, name):
    assert_png((folder / name).read_bytes())


def test_split_figure_plots_split_points_at_three_rates_with_the_chosen_points(folder):
    figure = fig_split(load_run(folder))
    points = pd.read_csv(folder / "split_points.csv")
    assert sorted(set(figure.data.uplink_mbps)) == [0.5, 1.0, 50.0]
    drawn = figure.data[figure.data.chosen].set_index(["model", "uplink_mbps"]).split
    expected = points[points.chosen].set_index(["model", "uplink_mbps"]).split
    assert drawn.to_dict() == expected.to_dict()
    assert len(figure.data) == len(points)  # every point at every one of the three rates


def test_untrained_run_skips_time_to_accuracy_with_a_note(folder):
    assert not (folder / "fig_time_to_accuracy.png").exists()
    assert "Not drawn: this run did not train" in (folder / "report.md").read_text()


def test_time_vs_bitrate_plots_results_total_time(folder):
    figure, results = fig_time_vs_bitrate(load_run(folder)), csv(folder, "results.csv")
    merged = figure.data.merge(results, on=RUN_KEYS, suffixes=("", "_csv"), validate="one_to_one")
    assert len(merged) == len(results) == 2 * 3 * 3
    assert (merged.total_time_s == merged.total_time_s_csv).all()
    assert figure.marks.empty  # hierarchical beats split learning and loses to full-cloud at every rate here
    assert "crosses no baseline" in figure.caption


def test_crossover_is_interpolated_on_the_log_scale():
    rows = [("hierarchical", 1.0, 20.0), ("split_learning", 1.0, 10.0), ("hierarchical", 10.0, 5.0),
            ("split_learning", 10.0, 10.0), ("hierarchical", 100.0, 1.0), ("split_learning", 100.0, 10.0)]
    results = pd.DataFrame(rows, columns=["method", "uplink_mbps", "total_time_s"]).assign(model="m")
    marks = crossovers(results)
    # ln(T_h/T_sl) goes from ln 2 to -ln 2 between 1 and 10 Mbit/s: zero half-way on the log axis.
    assert len(marks) == 1 and marks.baseline[0] == "split_learning" and marks.hierarchical_faster[0] == "above"
    assert marks.uplink_mbps[0] == pytest.approx(10 ** 0.5) and marks.time_s[0] == pytest.approx(10.0)
    assert crossovers(results[results.uplink_mbps > 1]).empty  # no sign change, no mark
    results = results.assign(reduction_vs_split_learning=1 - results.total_time_s / 10.0,
                             reduction_vs_full_cloud=float("nan"))
    figure = fig_time_vs_bitrate(RunData(Path("."), {}, results, *[pd.DataFrame()] * 3, None))
    pd.testing.assert_frame_equal(figure.marks, marks)  # the figure draws the interpolated crossing
    assert "ring mark where hierarchical and that baseline swap places" in figure.caption


def test_reduction_plots_the_reduction_columns_in_percent(folder):
    figure, results = fig_reduction(load_run(folder)), csv(folder, "results.csv")
    hier = results[results.method == "hierarchical"]
    for baseline in ("split_learning", "full_cloud"):
        mine = figure.data[figure.data.baseline == baseline].merge(hier, on=["model", "uplink_mbps"])
        assert len(mine) == 2 * 3
        assert (mine.reduction == mine[f"reduction_vs_{baseline}"]).all()
        assert (mine.reduction_percent == 100 * mine[f"reduction_vs_{baseline}"]).all()
    assert "symlog" in figure.caption


def test_bytes_bars_are_the_bytes_columns(folder):
    figure, results = fig_bytes(load_run(folder)), csv(folder, "results.csv")
    merged = figure.data.merge(results, on=RUN_KEYS, suffixes=("", "_csv"), validate="one_to_one")
    assert len(merged) == 2 * 3 and set(merged.uplink_mbps) == {0.5}
    # By hand: 2 epochs of 100 batches of 32 CIFAR-10 samples (3,072 pixel bytes + a 1-byte label); the
    # training set is uploaded once; features are fp32 at the point each row used, plus the labels.
    for row in merged.itertuples():
        features = 4 * 32 * math.prod(build_model(row.model, "cifar10").feature(row.split).shape) + 32 \
            if row.method != "full_cloud" else 0
        assert row.raw_bytes_sent == (100 * 32 * 3073 if row.method == "full_cloud" else 0)
        assert row.features_bytes_up == 200 * features
        assert row.bytes_down == (200 * (features - 32) if row.method == "split_learning" else 0)
        assert row.bytes_up_csv == row.raw_bytes_sent + row.features_bytes_up and row.bytes_down_csv == row.bytes_down
    assert "0.5 Mbit/s" in figure.caption


def test_timeline_draws_the_trace_of_the_3g_class_rate(folder):
    figure, trace = fig_timeline(load_run(folder)), csv(folder, "trace.csv")
    expected = trace[(trace.model == "vgg16") & (trace.uplink_mbps == 1.0)].reset_index(drop=True)
    pd.testing.assert_frame_equal(figure.data.drop(columns="shown"), expected)
    assert set(figure.data[figure.data.shown].method) == {"full_cloud", "split_learning", "hierarchical"}
    # hierarchical's window is complete: its edge trained several batches ahead of the uplink
    hier = figure.data[(figure.data.method == "hierarchical") & figure.data.shown]
    assert (hier[hier.resource == "edge_gpu"].batch.max() > hier[hier.resource == "cloud_gpu"].batch.max())


def test_backlog_is_backlog_csv_of_hierarchical_at_the_lowest_rate(folder):
    run = load_run(folder)
    figure, backlog = fig_backlog(run), csv(folder, "backlog.csv")
    assert set(figure.data.method) == {"hierarchical"} and set(figure.data.uplink_mbps) == {0.5}
    found = figure.data.merge(backlog.drop_duplicates(), how="left", indicator=True)
    assert (found._merge == "both").all()  # every plotted step is a row of backlog.csv
    assert not figure.data.duplicated(["model", "time_s"]).any()  # one level per instant
    assert figure.data.backlog.max() == run.scenario["network"]["uplink_buffer_batches"]  # the uplink saturates


def test_html_embeds_every_figure_and_md_links_every_file(folder):
    class Images(html.parser.HTMLParser):
        def __init__(self):
            super().__init__()
            self.sources = []

        def handle_starttag(self, tag, attrs):
            if tag == "img":
                self.sources.append(dict(attrs))

    parser = Images()
    parser.feed((folder / "report.html").read_text())
    parser.close()
    drawn = [f for f in FIGURE_FILES if (folder / f).exists()]
    assert [img["data-file"] for img in parser.sources] == drawn and len(drawn) == 6
    for img in parser.sources:
        prefix, payload = img["src"].split(",", 1)
        assert prefix == "data:image/png;base64"
        assert base64.b64decode(payload) == (folder / img["data-file"]).read_bytes()
    markdown = (folder / "report.md").read_text()
    for name in drawn:
        assert f"]({name})" in markdown
    for text in ("| vgg16 | edge | NVIDIA Jetson Orin Nano 8GB (GPU, derived) | derived |", "vgg16 split at the point chosen per bit rate (split: auto)",
                 "hier. vs split learning", "accuracy columns are empty"):
        assert text in markdown
    results = csv(folder, "results.csv").set_index(RUN_KEYS)
    hier_1mbps = results.loc[("vgg16", "hierarchical", 1.0)]
    assert f"| {duration_text(hier_1mbps.total_time_s)} |" in markdown.split("| vgg16 | 1 |")[1].splitlines()[0]


@needs_fashion_mnist
def test_time_to_accuracy_places_training_epochs_at_simulated_epoch_ends(trained):
    figure = fig_time_to_accuracy(load_run(trained))
    assert_png((trained / "fig_time_to_accuracy.png").read_bytes())
    training, epochs = csv(trained, "training.csv"), csv(trained, "epochs.csv")
    assert set(figure.data.uplink_mbps) == {0.5, 1.0, 10.0}  # lowest, 3G-class, highest
    # 2 trained epochs of a 5-epoch workload: epoch 1 -> round(2.5) = 3, epoch 2 -> 5
    assert dict(zip(figure.data.epoch, figure.data.sim_epoch)) == {1: 3, 2: 5}
    accuracy = figure.data.merge(training, on=["model", "method", "epoch"], suffixes=("", "_csv"))
    assert len(accuracy) == len(figure.data) == 3 * 3 * 2  # methods x rates x epochs
    assert (accuracy.final_accuracy == accuracy.final_accuracy_csv).all()
    assert accuracy.early_exit_accuracy.equals(accuracy.early_exit_accuracy_csv)
    ends = figure.data.merge(epochs, left_on=[*RUN_KEYS, "sim_epoch"], right_on=[*RUN_KEYS, "epoch"])
    assert len(ends) == len(figure.data) and (ends.time_s == ends.end_s).all()
    assert "round(e x 5 / 2)" in figure.caption and "proxy" in figure.caption


def test_simulated_epoch_rounds_halves_up_and_stays_in_range():
    assert [simulated_epoch(e, 3, 100) for e in (1, 2, 3)] == [33, 67, 100]
    assert simulated_epoch(1, 2, 5) == 3 and simulated_epoch(1, 10, 3) == 1 and simulated_epoch(10, 10, 3) == 3


@pytest.mark.parametrize("methods, rates, notes", [
    (["hierarchical"], [1.0], ["fig_reduction.png"]),
    (["full_cloud", "split_learning"], [0.5], ["fig_reduction.png", "fig_backlog.png"]),
])
def test_one_method_or_one_rate_reports_cleanly(tmp_path, methods, rates, notes):
    workload = {"epochs": 1, "train_samples": 640, "models": [{"name": "vgg16", "split": "stage3"}]}
    path = scenario_file(tmp_path, workload, {"uplink_mbps": rates}, {"enabled": False}, methods)
    run_cli(path, "--no-progress")
    out, markdown = tmp_path / "out", (tmp_path / "out" / "report.md").read_text()
    for name in FIGURE_FILES:
        if name in notes or name == "fig_time_to_accuracy.png":
            assert not (out / name).exists()
        else:
            assert_png((out / name).read_bytes())
            assert f"]({name})" in markdown
    assert markdown.count("> Not drawn:") == len(notes) + 1


def test_report_command_redraws_without_simulating(folder, tmp_path, monkeypatch):
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    for name in [*FIGURE_FILES, "report.md", "report.html"]:
        (copy / name).unlink(missing_ok=True)
    results = (copy / "results.csv").read_bytes()
    import simulator.sweep.runner

    monkeypatch.setattr(simulator.sweep.runner, "simulate_scenario", lambda *a: pytest.fail("simulated again"))
    proc = run_cli("report", copy)
    assert sorted(p.name for p in copy.iterdir()) == sorted(p.name for p in folder.iterdir())
    assert (copy / "results.csv").read_bytes() == results
    assert "report.html" in proc.stdout and proc.stdout.count("\n") == 1
    assert (copy / "report.md").read_text() == (folder / "report.md").read_text().replace(str(folder), str(copy))


def test_report_command_errors_name_the_folder_and_the_file(folder, tmp_path, cli):
    assert_user_error(cli("report", tmp_path / "missing"), str(tmp_path / "missing"), "no such folder")
    partial = tmp_path / "partial"
    shutil.copytree(folder, partial)
    (partial / "trace.csv").unlink()
    before = {p.name: p.read_bytes() for p in partial.iterdir()}
    assert_user_error(cli("report", partial), str(partial), "trace.csv is missing")
    assert {p.name: p.read_bytes() for p in partial.iterdir()} == before  # nothing written
    pd.read_csv(folder / "results.csv").drop(columns="total_time_s").to_csv(partial / "results.csv", index=False)
    assert_user_error(cli("report", partial), str(partial / "results.csv"), "total_time_s")
