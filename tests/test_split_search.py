"""Choosing the separation point: the choice equals a brute-force search, on generated
candidates and on hand-written profiles; infeasible limits are clear errors."""
import json
import math

import pandas as pd
import pytest
import yaml
from conftest import assert_user_error, needs_fashion_mnist, write_scenario
from hand_profiles import VGG16_BLOCKS, vgg16_profile
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.costmodel.analytic import analytic_time_s
from simulator.costmodel.costs import LinkSpec, batch_costs
from simulator.costmodel.memory import MIB, edge_memory
from simulator.scenario.load import load_scenario
from simulator.sweep.choose_split import Candidate, NoFeasiblePoint, brute_force, choose
from simulator.sweep.split_table import SPLIT_COLUMNS, search_splits
from simulator.training.runs import TrainingResults

RATES = [0.5, 5.0, 100.0]


@st.composite
def instances(draw):
    n = draw(st.integers(1, 7))
    times = st.floats(1.0, 1e4, allow_nan=False)
    candidates = [Candidate(f"p{i}", draw(st.integers(1, 100)), {r: draw(times) for r in RATES}) for i in range(n)]
    drops = {c.split: draw(st.sampled_from([-0.01, 0.0, 0.005, 0.02, 0.05])) for c in candidates}
    return candidates, drops, draw(st.integers(0, 110)), draw(st.sampled_from([0.0, 0.01, 0.03]))


@settings(max_examples=300, deadline=None)
@given(instances())
def test_choice_equals_brute_force_and_asks_only_the_points_it_must(instance):
    candidates, drops, budget, max_drop = instance
    for rate in RATES:
        expected = brute_force(candidates, rate, budget, drops.get, max_drop)
        asked = []
        try:
            choice = choose(candidates, rate, budget, lambda p: asked.append(p) or drops[p], max_drop)
        except NoFeasiblePoint:
            assert expected is None
            continue
        assert choice.split == expected
        chosen = next(c for c in candidates if c.split == expected)
        # accuracy was needed only for the chosen point and fitting points at least as fast
        assert asked[-1] == expected
        assert all(c.time_s[rate] <= chosen.time_s[rate] for c in candidates if c.split in asked)


def test_ties_go_to_less_memory_then_the_earlier_point():
    same = {1.0: 10.0}
    candidates = [Candidate("a", 50, same), Candidate("b", 20, same), Candidate("c", 20, same)]
    assert choose(candidates, 1.0, 100, None, 0.0).split == "b"


# ---- hand-written VGG-16 profiles: the choice on real scenario files ----------------------------------------

STAGES = VGG16_BLOCKS


def hand_scenario(tmp_path, memory_mib=None, **extra) -> str:
    (tmp_path / "edge.json").write_text(json.dumps(vgg16_profile("cpu", [40, 30, 20, 15, 10, 1]).to_dict()))
    (tmp_path / "cloud.json").write_text(json.dumps(vgg16_profile("cuda", [2, 1.5, 1, 0.8, 0.5, 0.1]).to_dict()))
    data = {"workload": {"dataset": "cifar10", "epochs": 2, "train_samples": 640, "models": [
                {"name": "vgg16", "split": "auto"}]},
            "edge": {"profiles": {"vgg16": "edge.json"}, "memory_mib": memory_mib},
            "cloud": {"profiles": {"vgg16": "cloud.json"}},
            "network": {"uplink_mbps": RATES, "latency_ms": 20.0, "uplink_buffer_batches": 4},
            "accuracy": {"enabled": False}, "output_dir": str(tmp_path / "out"), **extra}
    path = tmp_path / "hand.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def brute_force_by_hand(scenario, budget_mib: float) -> dict[float, str]:
    """Every point's closed-form time and memory from the profiles directly; the fastest that fits."""
    edge, cloud = scenario.edge_profiles["vgg16"], scenario.cloud_profiles["vgg16"]
    best = {}
    for rate in RATES:
        timed = []
        for index, point in enumerate(STAGES[:-1]):
            memory = edge_memory(edge, point, 4).peak_bytes
            if memory > budget_mib * MIB:
                continue
            link = LinkSpec(rate_mbps=rate, latency_ms=20.0)
            time_s = analytic_time_s("hierarchical", batch_costs(edge, cloud, point, "fp32"), link, link,
                                     scenario.batches_per_epoch, 2)
            timed.append((time_s, memory, index, point))
        best[rate] = min(timed)[3]
    return best


@pytest.mark.parametrize("memory_mib", [None, 400.0, 150.0])
def test_scenario_choice_equals_brute_force_on_hand_written_profiles(tmp_path, memory_mib):
    scenario = load_scenario(hand_scenario(tmp_path, memory_mib))
    search = search_splits(scenario, training=None)
    expected = brute_force_by_hand(scenario, math.inf if memory_mib is None else memory_mib)
    assert {rate: search.split_of("vgg16", "hierarchical", rate) for rate in RATES} == expected
    if memory_mib is None:
        assert len(set(expected.values())) > 1  # the hand profiles make the best point move with the rate
    table = search.table
    assert list(table.columns) == SPLIT_COLUMNS and len(table) == 5 * len(RATES)
    chosen = table[table.chosen]
    assert len(chosen) == len(RATES) and chosen.reason.str.contains("fastest").all()
    assert ((chosen.des_time_s - chosen.hierarchical_time_s).abs() <= 1e-9 * chosen.hierarchical_time_s).all()


def test_an_infeasible_budget_names_the_smallest_feasible_one(cli, tmp_path):
    path = hand_scenario(tmp_path, memory_mib=1.0)
    scenario = load_scenario(path)
    memory = {p: edge_memory(scenario.edge_profiles["vgg16"], p, 4).peak_bytes / MIB for p in STAGES[:-1]}
    lightest = min(memory, key=memory.get)
    smallest = memory[lightest]
    for command in (["split", path], [path, "--no-train"]):
        proc = cli(*command)
        assert_user_error(proc, path, "edge.memory_mib 1", "vgg16", f"smallest feasible budget is {smallest:.1f} MiB",
                          f"split after {lightest}")
    assert not (tmp_path / "out").exists()
    # that budget itself is feasible
    ok = hand_scenario(tmp_path, memory_mib=math.ceil(smallest * 10) / 10)
    assert cli("split", ok, "--no-progress").returncode == 0


def test_accuracy_tolerance_walks_past_points_that_lose_too_much():
    candidates = [Candidate("s1", 10, {1.0: 3.0}), Candidate("s2", 20, {1.0: 1.0}), Candidate("s3", 30, {1.0: 2.0})]
    drops = {"s1": 0.0, "s2": 0.05, "s3": 0.01}
    choice = choose(candidates, 1.0, 100, drops.get, 0.02)
    assert choice.split == "s3" and "s2 loses 5.0" in choice.reason
    with pytest.raises(NoFeasiblePoint, match="accuracy"):
        choose(candidates, 1.0, 100, drops.get, 0.0 - 1e-9)


def test_split_command_writes_the_table_and_the_figure(cli, tmp_path):
    path = hand_scenario(tmp_path, memory_mib=400.0)
    proc = cli("split", path, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(tmp_path / "out" / "split_points.csv")
    assert list(table.columns) == SPLIT_COLUMNS
    assert table.groupby("uplink_mbps").chosen.sum().eq(1).all()
    assert (table[~table.fits_memory].chosen == False).all()  # noqa: E712
    assert (tmp_path / "out" / "fig_split.png").read_bytes()[:4] == b"\x89PNG"
    assert "chosen points" in proc.stdout and "* = chosen" in proc.stdout and "accuracy: unchecked" in proc.stdout


def test_a_run_with_split_auto_simulates_the_chosen_points(cli, tmp_path):
    path = hand_scenario(tmp_path, memory_mib=400.0)
    proc = cli(path, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out"
    results, points = pd.read_csv(out / "results.csv"), pd.read_csv(out / "split_points.csv")
    for method, chosen_column in (("hierarchical", "chosen"), ("split_learning", "split_learning_chosen")):
        chosen = points[points[chosen_column]].set_index("uplink_mbps").split
        rows = results[results.method == method].set_index("uplink_mbps").split
        assert rows.to_dict() == chosen.to_dict()  # each method at its own point
    fastest = points.loc[points.groupby("uplink_mbps").split_learning_time_s.idxmin()].set_index("uplink_mbps")
    assert fastest.split.to_dict() == chosen.to_dict()  # split learning: no memory limit binds it here
    hier = results[results.method == "hierarchical"].set_index("uplink_mbps").total_time_s
    assert points[points.chosen].set_index("uplink_mbps").des_time_s.to_dict() == hier.to_dict()
    assert "separation points chosen" in proc.stdout
    report = (out / "report.md").read_text()
    assert "Separation points" in report and "fig_split.png" in report


def test_bad_split_search_keys(cli, tmp_path):
    path = hand_scenario(tmp_path, split_search={"max_accuracy_drop": 1.5})
    assert_user_error(cli("validate", path), path, "split_search.max_accuracy_drop", "[0, 1)")
    path = hand_scenario(tmp_path, memory_mib=-5)
    assert_user_error(cli("validate", path), path, "edge.memory_mib", "> 0")


def test_shipped_scenario_chooses_per_rate_without_training(cli, tmp_path):
    path = write_scenario(tmp_path)
    proc = cli("split", path, "--no-train", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(tmp_path / "out" / "split_points.csv")
    assert table.groupby(["model", "uplink_mbps"]).chosen.sum().eq(1).all()
    assert set(table.model) == {"vgg16", "resnet18"}


@needs_fashion_mnist
def test_accuracy_check_trains_only_the_points_the_walk_reaches(tmp_path, monkeypatch):
    monkeypatch.setenv("SIMULATOR_CACHE", str(tmp_path / "cache"))
    accuracy = {"dataset": "fashion-mnist", "width": 0.0625, "epochs": 1, "train_subset": 640, "test_subset": 200}
    path = hand_scenario(tmp_path, memory_mib=400.0, accuracy=accuracy, split_search={"max_accuracy_drop": 0.05})
    scenario = load_scenario(path)
    search = search_splits(scenario, TrainingResults(scenario, progress=False))
    table = search.table
    trained = table.dropna(subset=["final_accuracy"]).drop_duplicates("split")
    chosen = table[table.chosen]
    # the chosen points were trained and are within the tolerance; every trained point that
    # was passed over lost too much; full-cloud plus the trained points are all that ran
    assert chosen.final_accuracy.notna().all() and chosen.within_accuracy.astype(bool).all()
    assert (trained[~trained.split.isin(chosen.split)].accuracy_drop > 0.05).all()
    assert len(list((tmp_path / "cache" / "training").iterdir())) == len(trained) + 1
    assert (chosen.accuracy_drop == chosen.full_cloud_accuracy - chosen.final_accuracy).all()
    for rate in RATES:  # brute force with the trained accuracies (untrained points are slower)
        drops = dict(zip(trained.split, trained.accuracy_drop))
        fits = table[(table.uplink_mbps == rate) & table.fits_memory]
        ok = fits[fits.split.map(lambda p: drops.get(p, math.inf) <= 0.05)]
        assert search.split_of("vgg16", "hierarchical", rate) == ok.sort_values("hierarchical_time_s").split.iloc[0]
