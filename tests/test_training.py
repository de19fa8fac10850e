"""Real training semantics of the three methods, link codecs, the cache, and a run that learns."""
import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import assert_user_error, needs_fashion_mnist, write_scenario

from simulator.models import build_model
from simulator.models.codecs import CODECS, decode, encode, encoded_bytes, roundtrip
from simulator.scenario.load import load_scenario
from simulator.training.methods import MethodTrainer
from simulator.training.optimizer import OptimizerConfig
from simulator.training.runs import TrainingCache, TrainingRun, scenario_accuracy


def batches(n: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 3, 32, 32, generator=generator), torch.randint(0, 10, (8,), generator=generator))
            for _ in range(n)]


def trained(arch: str, point: str, method: str, codec: str = "fp32", steps: int = 5, perturb_cloud: bool = False):
    torch.manual_seed(0)
    model = build_model(arch, "cifar10", 0.125)
    trainer = MethodTrainer(model, point, method, codec, OptimizerConfig(schedule="constant"), steps)
    if perturb_cloud:
        with torch.no_grad():
            for p in trainer.parts.cloud.parameters():
                p.add_(torch.randn_like(p))
    trainer.initial_edge = flat(trainer.parts.edge).clone()
    for x, y in batches(steps):
        trainer.step(x, y)
    return trainer


def flat(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


@pytest.mark.parametrize("arch,point", [("vgg16", "stage2"), ("resnet18", "layer2_0")])
def test_split_learning_over_fp32_equals_full_cloud(arch, point):
    full, split = trained(arch, point, "full_cloud"), trained(arch, point, "split_learning")
    for part in ("edge", "cloud"):
        difference = (flat(getattr(full.parts, part)) - flat(getattr(split.parts, part))).abs().max().item()
        assert difference <= 1e-6, (part, difference)
    assert (flat(full.parts.edge) - full.initial_edge).abs().max() > 1e-3  # training did move the weights


def test_lossy_codec_changes_split_learning():
    full, lossy = trained("vgg16", "stage2", "full_cloud"), trained("vgg16", "stage2", "split_learning", "int8")
    assert (flat(full.parts.edge) - flat(lossy.parts.edge)).abs().max() > 1e-6


@pytest.mark.parametrize("arch,point", [("vgg16", "stage3"), ("resnet18", "layer1_1")])
def test_hierarchical_edge_never_sees_the_cloud(arch, point):
    """The edge and its exit train identically whatever the cloud part holds."""
    plain, perturbed = trained(arch, point, "hierarchical"), trained(arch, point, "hierarchical", perturb_cloud=True)
    assert torch.equal(flat(plain.parts.edge), flat(perturbed.parts.edge))
    assert torch.equal(flat(plain.parts.early_exit), flat(perturbed.parts.early_exit))
    assert not torch.equal(flat(plain.parts.cloud), flat(perturbed.parts.cloud))


def test_hierarchical_cloud_loss_leaves_edge_gradients_alone():
    torch.manual_seed(0)
    trainer = MethodTrainer(build_model("vgg16", "cifar10", 0.125), "stage2", "hierarchical", "fp16",
                            OptimizerConfig(), 1)
    seen = []
    for p in trainer.parts.edge.parameters():
        p.register_hook(lambda grad: seen.append(grad))
    x, y = batches(1)[0]
    features = trainer.parts.edge(x)
    torch.nn.functional.cross_entropy(trainer.parts.early_exit(features), y).backward()
    after_exit = len(seen)
    torch.nn.functional.cross_entropy(trainer.parts.cloud(roundtrip("fp16", features)), y).backward()
    assert after_exit > 0 and len(seen) == after_exit  # the cloud's backward reached no edge parameter


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("shape", [(4, 16, 8, 8), (3, 10), (1,)])
def test_codecs_round_trip_within_their_bound_and_count_bytes(codec, shape):
    x = torch.randn(shape) * 3 + 1
    encoded = encode(codec, x)
    assert encoded.nbytes == encoded_bytes(codec, x.numel())
    error = (decode(encoded) - x).abs()
    bound = {"fp32": torch.zeros_like(x), "fp16": x.abs() * 2 ** -11,
             "int8": torch.full_like(x, encoded.scale / 2 + 1e-6)}[codec]
    assert (error <= bound).all()
    assert torch.equal(roundtrip(codec, x), decode(encoded))


def test_int8_codec_uses_all_levels_and_handles_constants():
    x = torch.linspace(-1, 1, 1000)
    q = encode("int8", x).payload
    assert q.min().item() == -128 and q.max().item() == 127
    constant = torch.full((5,), 2.5)
    assert torch.allclose(roundtrip("int8", constant), constant)


def tiny_scenario(tmp_path: Path, **accuracy) -> Path:
    return write_scenario(tmp_path, {
        "workload.epochs": 1, "workload.train_samples": 320,
        "workload.models": [{"name": "vgg16", "split": "stage3"}, {"name": "resnet18", "split": "layer3_1"}],
        "network.uplink_mbps": [1.0, 10.0],
        "accuracy": {"dataset": "fashion-mnist", "width": 0.0625, "epochs": 1, "train_subset": 640,
                     "test_subset": 200, "lr": 0.05, **accuracy}}, name="tiny")


@needs_fashion_mnist
def test_a_short_fashion_mnist_run_learns_well_above_chance(tmp_path):
    scenario = load_scenario(tiny_scenario(tmp_path, width=0.125, epochs=2, train_subset=2000, test_subset=500))
    scenario.methods = ["full_cloud", "hierarchical"]
    scenario.workload.models = scenario.workload.models[:1]  # vgg16
    results = scenario_accuracy(scenario, progress=False, cache=TrainingCache(tmp_path / "cache"))
    for (model, method, _split), result in results.items():
        assert result.final.final_accuracy > 0.5, (method, result.final)  # chance is 0.1
        assert len(result.epochs) == 2 and result.final.wall_time_s > 0
    assert results[("vgg16", "hierarchical", "stage3")].final.early_exit_accuracy > 0.5
    assert math.isnan(results[("vgg16", "full_cloud", "")].final.early_exit_accuracy)


@needs_fashion_mnist
def test_cache_is_reused_and_survives_an_interrupt(tmp_path, monkeypatch):
    scenario = load_scenario(tiny_scenario(tmp_path))
    scenario.workload.models = scenario.workload.models[:1]
    cache = TrainingCache(tmp_path / "cache")
    calls = {"steps": 0}
    real_step = MethodTrainer.step

    def interrupting_step(self, x, y):
        calls["steps"] += 1
        if calls["steps"] == 25:  # part-way through the second run (20 batches per run)
            raise KeyboardInterrupt
        return real_step(self, x, y)

    monkeypatch.setattr(MethodTrainer, "step", interrupting_step)
    with pytest.raises(KeyboardInterrupt):
        scenario_accuracy(scenario, progress=False, cache=cache)
    entries = sorted(cache.root.iterdir())
    assert len(entries) == 1 and json.loads(entries[0].read_text())["epochs"]  # only the finished run, whole
    monkeypatch.setattr(MethodTrainer, "step", real_step)
    first = scenario_accuracy(scenario, progress=False, cache=cache)
    again = scenario_accuracy(scenario, progress=False, cache=cache)
    assert all(result.cached for result in again.values())
    assert {k: v.epochs for k, v in first.items()} == {k: v.epochs for k, v in again.items()}
    # split learning over fp32 shares full-cloud's run; a different codec would not
    assert first[("vgg16", "split_learning", "stage3")].run == first[("vgg16", "full_cloud", "")].run


def test_training_run_key_covers_what_matters():
    base = dict(dataset="fashion-mnist", width=0.25, epochs=1, train_subset=10, test_subset=10, batch_size=8,
                optimizer=OptimizerConfig(), seed=0, device="cpu")
    run = TrainingRun.of("vgg16", "hierarchical", "stage2", "fp32", **base)
    assert run.key() == TrainingRun.of("vgg16", "hierarchical", "stage2", "fp32", **base).key()
    for change in [dict(width=0.5), dict(seed=1), dict(epochs=2), dict(optimizer=OptimizerConfig(lr=0.1))]:
        assert TrainingRun.of("vgg16", "hierarchical", "stage2", "fp32", **{**base, **change}).key() != run.key()
    assert TrainingRun.of("vgg16", "hierarchical", "stage3", "fp32", **base).key() != run.key()
    assert TrainingRun.of("vgg16", "split_learning", "stage2", "int8", **base).method == "split_learning"
    assert TrainingRun.of("vgg16", "split_learning", "stage2", "fp32", **base).method == "full_cloud"


@needs_fashion_mnist
def test_cli_fills_accuracy_columns_and_no_train_leaves_them_empty(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("SIMULATOR_CACHE", str(tmp_path / "cache"))
    path = tiny_scenario(tmp_path)
    proc = cli(path, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(tmp_path / "out" / "results.csv")
    assert table.final_accuracy.between(0, 1).all() and not table.final_accuracy.isna().any()
    assert table[table.method == "hierarchical"].early_exit_accuracy.notna().all()
    assert table[table.method != "hierarchical"].early_exit_accuracy.isna().all()
    assert table.accuracy_proxy.str.contains("fashion-mnist stands in for cifar10").all()
    assert "proxy:" in proc.stdout
    epochs = pd.read_csv(tmp_path / "out" / "training.csv")
    assert set(epochs.method) == {"full_cloud", "split_learning", "hierarchical"} and (epochs.epoch == 1).all()
    assert len(list((tmp_path / "cache" / "training").glob("*.json"))) == 4  # 2 models x (full_cloud, hierarchical)
    proc = cli(path, "--no-progress", "--no-train")
    assert proc.returncode == 0, proc.stderr
    assert pd.read_csv(tmp_path / "out" / "results.csv").final_accuracy.isna().all()


def test_missing_dataset_is_a_clear_error(cli, tmp_path):
    path = tiny_scenario(tmp_path, dataset="cifar10", data_root=str(tmp_path / "nowhere"), download="never")
    assert_user_error(cli(path, "--no-progress"), "cifar10", str(tmp_path / "nowhere"))
    assert not (tmp_path / "out").exists()
