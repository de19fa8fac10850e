"""The report's "Traffic against the raw data" section and split_points.csv's raw_bytes_per_sample.

A real run (`simulate --no-train`) of scenarios/low_bitrate.yaml shrunk to 2 epochs, with the raw
data streamed every epoch and a sweep over the link codec and the latency. Expectations are
hand-computed (VGG-16's cut tensors at 32x32x3, the 3,073-byte raw sample) or read from the
CSVs with plain pandas, and the report's text is parsed back, not re-formatted.
"""
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, run_in_process, write_scenario

from simulator.report import load_run
from simulator.report.traffic import ranges_text
from simulator.report.traffic_figure import fig_traffic

RATES = [0.25, 0.5, 1.0, 2.0, 10.0, 100.0]
CODECS = ["fp32", "fp16", "int8"]
LATENCIES_MS = [20.0, 50.0]
RAW_BYTES = 32 * 32 * 3 + 1  # a CIFAR-10 sample as uint8 RGB, and its label
# VGG-16 at 32x32: each stage halves the map; elements per sample after stage1..stage5.
VGG_ELEMENTS = {"stage1": 64 * 16 * 16, "stage2": 128 * 8 * 8, "stage3": 256 * 4 * 4, "stage4": 512 * 2 * 2,
                "stage5": 512 * 1 * 1}
ELEMENT_BYTES = {"fp32": 4, "fp16": 2, "int8": 1}
INT8_HEADER_BYTES = 8  # per batch tensor: fp32 scale and minimum
BATCH = 32
TITLE = "## Traffic against the raw data"


def simulate(*args) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)
        proc = run_in_process(*args)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("traffic")
    path = write_scenario(tmp, {"workload.epochs": 2, "workload.train_samples": 3200, "network.uplink_mbps": RATES,
                                "full_cloud.raw_upload": "every_epoch", "accuracy": {"enabled": False},
                                "sweep": {"network.codec": CODECS, "network.latency_ms": LATENCIES_MS}})
    simulate(path, "--no-train", "--no-progress")
    return tmp / "out"


def section(folder: Path) -> str:
    text = (folder / "report.md").read_text()
    assert text.count(TITLE) == 1
    return text.split(TITLE, 1)[1].split("\n## ", 1)[0]


def tables(text: str) -> list[pd.DataFrame]:
    """The Markdown tables of `text`, every cell a string."""
    found, rows = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif rows:
            found.append(pd.DataFrame(rows[2:], columns=rows[0]))  # rows[1] is the |---| line
            rows = []
    return found


def expand(text: str) -> set[float]:
    """'0.25-2, 10 Mbit/s' -> the swept rates it names; 'all'; 'none'."""
    if text == "none":
        return set()
    if text == "all":
        return set(RATES)
    rates = set()
    for part in text.removesuffix(" Mbit/s").split(", "):
        low, _, high = part.partition("-")
        rates |= {r for r in RATES if float(low) <= r <= float(high or low)}
    return rates


def test_split_points_has_the_raw_sample_beside_the_bytes_sent(swept):
    points = pd.read_csv(swept / "split_points.csv")
    columns = list(points.columns)
    assert columns.index("raw_bytes_per_sample") == columns.index("bytes_up_per_sample") + 1
    assert (points.raw_bytes_per_sample == RAW_BYTES).all()
    vgg = points[points.model == "vgg16"]
    for row in vgg.to_dict("records"):
        codec = row["network.codec"]
        header = INT8_HEADER_BYTES / BATCH if codec == "int8" else 0
        assert row["bytes_up_per_sample"] == VGG_ELEMENTS[row["split"]] * ELEMENT_BYTES[codec] + header + 1


def test_traffic_table_names_the_points_below_the_raw_sample(swept):
    first, _ = tables(section(swept))
    assert list(first.columns) == ["model", "codec", "raw sample + label", "points sending less", "least traffic"]
    # the latency changes no byte: one row per model and codec, models in the scenario's order
    assert list(zip(first.model, first.codec)) == [(m, c) for m in ("vgg16", "resnet18") for c in CODECS]
    assert (first["raw sample + label"] == "3.07 kB").all()
    below = dict(zip(zip(first.model, first.codec), first["points sending less"]))
    # hand-computed: stage5 (512 elements) is below 3,073 B in every codec, stage4 (2,048) only in int8;
    # ResNet-18's smallest cut, 512x4x4, is 8,192 elements: above raw even in int8
    assert below[("vgg16", "fp32")] == below[("vgg16", "fp16")] == "1 of 5: stage5"
    assert below[("vgg16", "int8")] == "2 of 5: stage4, stage5"
    assert all(below[("resnet18", c)] == "none of 9" for c in CODECS)
    least = dict(zip(zip(first.model, first.codec), first["least traffic"]))
    assert least[("vgg16", "fp32")] == "stage5: 2.05 kB (0.667x raw)"  # 2,049 / 3,073
    assert least[("vgg16", "int8")] == "stage5: 513 B (0.167x raw)"  # 512 + 8 / 32 + 1 = 513.25 B
    # and the same sets from the CSV itself
    points = pd.read_csv(swept / "split_points.csv").drop_duplicates(["network.codec", "model", "split"])
    for (model, codec), rows in points.groupby(["model", "network.codec"]):
        names = list(rows.split[rows.bytes_up_per_sample < rows.raw_bytes_per_sample])
        assert below[(model, codec)].startswith(f"{len(names)} of {len(rows)}" if names else "none")
        assert all(name in below[(model, codec)] for name in names)
        assert least[(model, codec)].startswith(rows.loc[rows.bytes_up_per_sample.idxmin(), "split"] + ":")


def test_faster_table_holds_the_rates_where_hierarchical_beats_full_cloud(swept):
    _, second = tables(section(swept))
    keys = [k for k in ("network.latency_ms",) if k in second.columns]
    assert list(second.columns) == ["model", "codec", *keys, "hierarchical faster at", "its point there",
                                    "best vs full-cloud"]
    results = pd.read_csv(swept / "results.csv")
    hier = results[results.method == "hierarchical"]
    checked = 0
    for row in second.to_dict("records"):
        mine = hier[(hier.model == row["model"]) & (hier["network.codec"] == row["codec"])]
        if keys:
            mine = mine[mine["network.latency_ms"] == float(row["network.latency_ms"])]
        for _, runs in mine.groupby("network.latency_ms"):  # a folded key: the row holds at each of its values
            faster = runs[runs.reduction_vs_full_cloud > 0]
            assert expand(row["hierarchical faster at"]) == set(faster.uplink_mbps), row
            named = re.sub(r" \([^)]*\)", "", row["its point there"])  # 'stage3 (0.5-1 Mbit/s), stage4 (...)'
            assert set(named.split(", ")) == (set(faster.split) if len(faster) else {"-"}), row
            checked += 1
    assert checked == 2 * len(CODECS) * len(LATENCIES_MS)
    # VGG-16 at stage5 sends 2/3 of the raw sample per epoch: it must win at the lowest rate
    assert (second[second.model == "vgg16"]["hierarchical faster at"] != "none").all()


def test_traffic_figure_draws_each_codec_against_the_raw_sample(swept):
    assert (swept / "fig_traffic.png").read_bytes()[:4] == b"\x89PNG"
    assert "](fig_traffic.png)" in (swept / "report.md").read_text()
    figure = fig_traffic(load_run(swept))
    points = pd.read_csv(swept / "split_points.csv")
    first_latency = points[points["network.latency_ms"] == LATENCIES_MS[0]].drop_duplicates(
        ["network.codec", "model", "split"])
    drawn = figure.data.set_index(["model", "codec", "split"]).sort_index()
    expected = first_latency.set_index(["model", "network.codec", "split"]).sort_index()
    assert len(drawn) == len(expected) == 3 * (5 + 9)
    assert (drawn.bytes_up_per_sample.values == expected.bytes_up_per_sample.values).all()
    assert set(figure.data.line) == set(CODECS)


def test_older_folders_and_runs_without_full_cloud_say_why(swept, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(swept, old)
    points = pd.read_csv(old / "split_points.csv")
    points.drop(columns="raw_bytes_per_sample").to_csv(old / "split_points.csv", index=False)
    simulate("report", old)
    text = section(old)
    assert "> Not shown: split_points.csv has no column 'raw_bytes_per_sample'" in text
    assert "| hierarchical faster at |" in text  # the time comparison needs results.csv only
    assert not (old / "fig_traffic.png").exists()  # the copied figure is removed, not left stale
    (old / "split_points.csv").unlink()
    simulate("report", old)
    assert "> Not shown: this run folder has no split_points.csv." in section(old)


def test_one_codec_without_full_cloud(tmp_path):
    path = write_scenario(tmp_path, {"workload.epochs": 1, "workload.train_samples": 640, "network.uplink_mbps": [1.0],
                                     "workload.models": [{"name": "vgg16", "split": "stage3"}],
                                     "methods": ["split_learning", "hierarchical"], "network.codec": "fp16"})
    simulate(path, "--no-train", "--no-progress")
    text = section(tmp_path / "out")
    (first,) = tables(text)
    assert first.to_dict("records") == [{"model": "vgg16", "codec": "fp16", "raw sample + label": "3.07 kB",
                                         "points sending less": "1 of 5: stage5",
                                         "least traffic": "stage5: 1.02 kB (0.334x raw)"}]  # 1,025 / 3,073
    assert "> Not shown: this run did not simulate both full-cloud and hierarchical training." in text
    assert not (tmp_path / "out" / "fig_traffic.png").exists()  # one line per model: the table says it all


def test_ranges_text_joins_consecutive_swept_rates():
    rates = [0.25, 0.5, 1.0, 2.0, 5.0, 10.0]
    assert ranges_text([0.5, 1.0, 2.0, 10.0], rates) == "0.5-2, 10 Mbit/s"
    assert ranges_text([0.25], rates) == "0.25 Mbit/s"
    assert ranges_text([], rates) == "none"
    assert ranges_text(rates, rates) == "all"
