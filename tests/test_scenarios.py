"""Scenario files: every shipped scenario validates; bad input fails in one line, writes nothing."""
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, assert_user_error, run_process, scenario_data, write_scenario

from simulator.scenario.load import load_scenario

SHIPPED = sorted((ROOT / "scenarios").glob("*.yaml"))


def test_scenarios_are_shipped():
    names = {path.name for path in SHIPPED}
    assert "low_bitrate.yaml" in names and len(names) >= 5


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_scenario_validates(path, cli):
    proc = cli("validate", path)
    assert proc.returncode == 0, proc.stderr
    assert "valid" in proc.stdout


def write(tmp_path: Path, data: dict | str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def with_change(change) -> dict:
    data = scenario_data(ROOT)
    change(data)
    return data


def set_key(*keys_and_value):
    *keys, value = keys_and_value

    def change(data):
        node = data
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return change


def first_profile(side):
    def change(data):
        model = data["workload"]["models"][0]["name"]
        data[side]["profiles"][model] = "profiles/does_not_exist.json"
    return change


BAD = {
    "unknown top key": (set_key("networkk", {}), ["unknown key networkk", "network"]),
    "misspelt nested key": (set_key("network", "latency", 5), ["unknown key network.latency", "latency_ms"]),
    "wrong type": (set_key("workload", "epochs", "many"), ["workload.epochs", "integer"]),
    "zero bit rate": (set_key("network", "uplink_mbps", [1.0, 0]), ["network.uplink_mbps[1]", "> 0"]),
    "negative bit rate": (set_key("network", "uplink_mbps", [-2]), ["network.uplink_mbps[0]", "> 0"]),
    "unknown method": (set_key("methods", ["hierarchical", "federated"]), ["methods[1]", "split_learning"]),
    "unknown codec": (set_key("network", "codec", "jpeg"), ["network.codec", "fp16", "int8"]),
    "bad split": (lambda d: d["workload"]["models"][0].update(split="stage9"),
                  ["workload.models[0].split", "stage9", "valid:"]),
    "missing profile file": (first_profile("edge"), ["does_not_exist.json", "not found"]),
    "batch size mismatch": (set_key("workload", "batch_size", 64), ["batch_size 32", "64"]),
    "dataset mismatch": (set_key("workload", "dataset", "cifar100"), ["dataset 'cifar10'", "cifar100"]),
    "loss rate out of range": (set_key("network", "loss_rate", 1.5), ["network.loss_rate", "[0, 1)"]),
    "edge compute mismatch": (set_key("edge", "compute", "cpu"), ["edge.profiles", "cuda profile", "cpu"]),
    "not a number": (set_key("network", "latency_ms", float("nan")), ["network.latency_ms", "finite number", "nan"]),
    "infinite bit rate": (set_key("network", "uplink_mbps", [1.0, float("inf")]), ["network.uplink_mbps[1]", "finite"]),
    "a rate listed twice": (set_key("network", "uplink_mbps", [1.0, 2.0, 1.0]), ["network.uplink_mbps[2]", "twice"]),
    "epochs over the limit": (set_key("workload", "epochs", 10**12), ["workload.epochs", "limit of 10,000 epochs"]),
    "a rate of 1 Tbit/s x 4": (set_key("network", "uplink_mbps", [1e9]), ["downlink_ratio 4 x", "limit of 1e+09"]),
    "negative seed": (set_key("seed", -3), ["seed", ">= 0"]),
    "training subset over the dataset": (set_key("accuracy", "train_subset", 60_001),
                                         ["accuracy.train_subset 60,001", "fashion-mnist has (60,000)"]),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_scenarios_fail_in_one_line_and_write_nothing(case, cli, tmp_path):
    change, fragments = BAD[case]
    data = with_change(change)
    data["output_dir"] = str(tmp_path / "out")
    path = write(tmp_path, data)
    for command in ("validate", "run"):
        proc = cli(command, path)
        assert_user_error(proc, str(path), *fragments)
    assert not (tmp_path / "out").exists()


def test_profile_for_another_model_is_rejected(cli, tmp_path):
    data = scenario_data(tmp_path)
    models = [m["name"] for m in data["workload"]["models"]]
    data["cloud"]["profiles"][models[0]] = data["cloud"]["profiles"][models[1]]
    assert_user_error(cli("validate", write(tmp_path, data)), f"cloud.profiles.{models[0]}", "model")


def test_malformed_yaml(cli, tmp_path):
    path = write(tmp_path, "workload: [unclosed\nnetwork: {")
    assert_user_error(cli("validate", path), str(path), "malformed YAML", "line")


def test_missing_scenario_file_as_a_real_process(tmp_path):
    proc = run_process(tmp_path / "nope.yaml")
    assert_user_error(proc, "nope.yaml", "not found")
    assert proc.stdout == ""


def test_defaults_fill_in(tmp_path):
    data = scenario_data(tmp_path)
    for key in ("seed", "name", "output_dir", "methods", "full_cloud"):
        data.pop(key, None)
    scenario = load_scenario(write(tmp_path, data))
    assert scenario.name == "scenario" and scenario.output_dir == "reports/scenario"
    assert scenario.methods == ["full_cloud", "split_learning", "hierarchical"]
    assert scenario.full_cloud.raw_upload == "once"


def test_every_shipped_scenario_is_within_the_limits_with_room():
    """The limits refuse only what no one means: 10x the shipped epochs, rates and batches still validate."""
    from simulator.scenario.limits import MAX_EPOCHS, MAX_UPLINK_RATES

    for path in SHIPPED:
        scenario = load_scenario(path)
        assert 10 * scenario.workload.epochs <= MAX_EPOCHS.value
        assert 10 * len(scenario.network.uplink_mbps) <= MAX_UPLINK_RATES.value


def test_paper_workloads_with_jitter_fit_the_event_by_event_limit(tmp_path):
    """100 epochs of Tiny ImageNet (3,125 batches each) with jitter: 312,500 batches per run, allowed."""
    path = write_scenario(tmp_path, {"network.jitter_ms": 5.0}, base="paper_vgg16_tiny_imagenet")
    scenario = load_scenario(path)
    assert scenario.workload.epochs * scenario.batches_per_epoch == 312_500
