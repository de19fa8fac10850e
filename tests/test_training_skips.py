"""Hierarchical training whose cloud part skips the batches the edge dropped: the skip text, the
mapping of a simulated run onto the proxy's batches, and real training that honours the skips."""
import json
import math
import random
import warnings
from dataclasses import astuple, replace
from fractions import Fraction
from typing import ClassVar

import pytest
import torch
from conftest import needs_fashion_mnist

from simulator.training import runs
from simulator.training.optimizer import OptimizerConfig
from simulator.training.runs import TrainingCache, TrainingResult, TrainingRun, train
from simulator.training.skips import (
    decode_skips,
    encode_skips,
    proxy_skips,
    skip_fraction,
)

F, T = False, True


# ---- text form -----------------------------------------------------------------------------------

@pytest.mark.parametrize("skips,text", [
    ([[F, T, F, F, F, T], [F, F, F, F, F, F]], "44.00"),  # 010001|00, 000000|00
    ([[T], [F], [T]], "8.0.8"),
    ([[T, T, T, T]], "f"),
    ([[F, F, F, F, T]], "08"),  # 0000, 1|000
    ([[T, F, F, F, F, F, F, F, F, T]], "804"),  # 1000, 0000, 01|00
    ([[F, F, F], [F, F, F]], ""),  # nothing skipped
])
def test_skips_encode_by_hand_and_decode_back(skips, text):
    assert encode_skips(skips) == text
    assert decode_skips(text, len(skips), len(skips[0])) == skips


def test_random_skips_round_trip():
    rng = random.Random(0)
    for _ in range(200):
        epochs, batches = rng.randint(1, 5), rng.randint(1, 40)
        skips = [[rng.random() < 0.3 for _ in range(batches)] for _ in range(epochs)]
        assert decode_skips(encode_skips(skips), epochs, batches) == skips


@pytest.mark.parametrize("text,epochs,batches,fragment", [
    ("44", 2, 6, "1 epoch fields"),
    ("44.00.00", 2, 6, "3 epoch fields"),
    ("4g.00", 2, 6, "hex digits"),
    ("4A.00", 2, 6, "hex digits"),  # upper case: one text per skip list
    ("44.", 2, 6, "hex digits"),
    ("44.0", 2, 6, "epoch 0 has 2"),
    ("044.000", 2, 6, "need 2"),
    ("45.00", 2, 6, "past the last of 6"),  # 0100 0101: bit 7 marks batch 7 of 6
    ("8", 0, 6, "0 epochs"),
])
def test_malformed_skip_texts_are_rejected(text, epochs, batches, fragment):
    with pytest.raises(ValueError, match=fragment):
        decode_skips(text, epochs, batches)


def test_skips_of_no_batch_or_of_uneven_epochs_are_rejected():
    for skips in ([], [[]], [[T, F], [T]]):
        with pytest.raises(ValueError):
            encode_skips(skips)


# ---- the simulated run onto the proxy's batches -----------------------------------------------------

def test_proxy_skips_by_hand():
    drops = {3, 4, 5, 15}  # simulated 2 epochs x 10 batches
    # 1 x 5 proxy steps at run fractions 0, .2, .4, .6, .8 -> simulated batches 0, 4, 8, 12, 16
    assert proxy_skips(drops, 2, 10, 1, 5) == [[F, T, F, F, F]]
    # 2 x 5 steps -> simulated batches 0, 2, ..., 18: only 4 was dropped
    assert proxy_skips(drops, 2, 10, 2, 5) == [[F, F, T, F, F], [F, F, F, F, F]]
    # 4 x 5 = 20 steps, one per simulated batch: the drops themselves
    assert proxy_skips(drops, 2, 10, 4, 5) == [[F, F, F, T, T], [T, F, F, F, F], [F, F, F, F, F], [T, F, F, F, F]]
    # 1 x 40 steps, two per simulated batch (k // 2): steps 6-11 and 30-31
    assert [k for k, s in enumerate(proxy_skips(drops, 2, 10, 1, 40)[0]) if s] == [6, 7, 8, 9, 10, 11, 30, 31]
    assert proxy_skips([], 2, 10, 2, 3) == [[F, F, F], [F, F, F]]
    assert proxy_skips(range(20), 2, 10, 2, 3) == [[T, T, T], [T, T, T]]


def test_proxy_skips_match_the_documented_formula_with_exact_fractions():
    """Oracle: f = Fraction(e * P + i, E * P) and floor(f * S * B); run lengths where k * S * B
    overflows int64, so the code's overflow-free integer form is checked too."""
    rng = random.Random(1)
    for sim_epochs, sim_batches, proxy_epochs, proxy_batches in [(7, 3, 2, 5), (3, 11, 5, 7), (10**6, 10**9, 30, 401),
                                                                 (2, 5, 3, 4)]:
        total, steps = sim_epochs * sim_batches, proxy_epochs * proxy_batches
        sampled = [math.floor(Fraction(k, steps) * total) for k in range(steps)]
        drops = set(rng.sample(sampled, len(sampled) // 3)) | {rng.randrange(total) for _ in range(50)}
        expected = [[math.floor(Fraction(e * proxy_batches + i, steps) * total) in drops
                     for i in range(proxy_batches)] for e in range(proxy_epochs)]
        assert proxy_skips(drops, sim_epochs, sim_batches, proxy_epochs, proxy_batches) == expected


def test_proxy_skips_over_a_million_simulated_batches():
    """Simulated 100 x 10^4 batches, the odd ones dropped; proxy step k of 30 x 400 = 12,000 sits at
    batch floor(10^6 k / 12000) = floor(250 k / 3): 250 j (even) for k = 3j, 250 j + 83 (odd) for
    k = 3j + 1, 250 j + 166 (even) for k = 3j + 2. So exactly the steps k = 1 (mod 3) are skipped."""
    skips = proxy_skips(range(1, 10**6, 2), 100, 10**4, 30, 400)
    assert len(skips) == 30 and all(len(epoch) == 400 for epoch in skips)
    flat = [s for epoch in skips for s in epoch]
    assert flat == [k % 3 == 1 for k in range(12000)]
    assert skip_fraction(skips) == 4000 / 12000


def test_proxy_skips_reject_drops_outside_the_run_and_empty_runs():
    with pytest.raises(ValueError, match="dropped batch 20 is outside"):
        proxy_skips({3, 20}, 2, 10, 1, 5)
    with pytest.raises(ValueError, match="dropped batch -1"):
        proxy_skips({-1}, 2, 10, 1, 5)
    with pytest.raises(ValueError, match="proxy_epochs is 0"):
        proxy_skips({3}, 2, 10, 0, 5)


def test_skip_fraction():
    assert skip_fraction([[T, F], [F, F]]) == 0.25
    assert skip_fraction([[F, F, F]]) == 0.0
    assert math.isnan(skip_fraction([]))


# ---- runs and their keys -------------------------------------------------------------------------

BASE = {"dataset": "fashion-mnist", "width": 0.25, "epochs": 1, "train_subset": 10, "test_subset": 10,
        "batch_size": 8, "optimizer": OptimizerConfig(), "seed": 0, "device": "cpu"}


def test_a_run_without_skips_keeps_its_key_from_before_the_field(monkeypatch):
    monkeypatch.setattr(torch, "__version__", "2.4.1")
    monkeypatch.setattr(runs, "TRAINING_CODE_VERSION", 1)
    run = TrainingRun.of("vgg16", "hierarchical", "stage2", "fp32", **BASE)
    assert run.key() == "a8ebad7ec48723eab3a7"  # computed by the code before cloud_skip existed
    assert TrainingRun.of("vgg16", "hierarchical", "stage2", "fp32", cloud_skip="", **BASE) == run
    assert TrainingRun.of("vgg16", "hierarchical", "stage2", "fp32", cloud_skip="00", **BASE) == run  # skips nothing
    skipping = TrainingRun.of("vgg16", "hierarchical", "stage2", "fp32", cloud_skip="40", **BASE)
    assert skipping.cloud_skip == "40" and skipping.key() not in (run.key(), "a8ebad7ec48723eab3a7")
    assert TrainingRun.of("vgg16", "hierarchical", "stage2", "fp32", cloud_skip="20", **BASE).key() != skipping.key()


@pytest.mark.parametrize("method,codec", [("full_cloud", ""), ("split_learning", "fp32"), ("split_learning", "int8")])
def test_only_hierarchical_runs_skip_cloud_batches(method, codec):
    with pytest.raises(ValueError, match=f"not {method}"):
        TrainingRun.of("vgg16", method, "stage2", codec, cloud_skip="40", **BASE)


def test_a_malformed_skip_text_is_rejected_when_the_run_is_made():
    with pytest.raises(ValueError, match="2 epoch fields"):
        TrainingRun.of("vgg16", "hierarchical", "stage2", "fp32", cloud_skip="40.00", **BASE)  # 1 epoch


def test_cache_files_from_before_the_skips_still_load():
    old = {"run": {"model": "vgg16", "method": "hierarchical", "split": "stage2", "codec": "fp32",
                   "dataset": "fashion-mnist", "width": 0.25, "epochs": 1, "train_subset": 10, "test_subset": 10,
                   "batch_size": 8, "optimizer": {"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4,
                                                  "schedule": "cosine"}, "seed": 0, "device": "cpu"},
           "device_name": "cpu (1 threads)",
           "epochs": [{"epoch": 1, "train_loss": 2.1, "exit_train_loss": 2.2, "final_accuracy": 0.3,
                       "early_exit_accuracy": 0.25, "wall_time_s": 0.5}]}
    result = TrainingResult.from_json(json.dumps(old))
    assert result.run == TrainingRun.of("vgg16", "hierarchical", "stage2", "fp32", **BASE)
    assert result.final.cloud_skipped_batches == 0 and result.final.train_loss == 2.1


# ---- real training ---------------------------------------------------------------------------------

# vgg16 at width 1/16 on 256 Fashion-MNIST images: 2 epochs of 8 batches of 32
TINY = {"dataset": "fashion-mnist", "width": 0.0625, "epochs": 2, "train_subset": 256, "test_subset": 100,
        "batch_size": 32, "optimizer": OptimizerConfig(), "seed": 0, "device": "cpu"}


def tiny_run(cloud_skip: str = "") -> TrainingRun:
    """The tiny hierarchical run, `cloud_skip` taken as given (not made canonical by `TrainingRun.of`)."""
    return TrainingRun("vgg16", "hierarchical", "stage2", "fp32", **TINY, cloud_skip=cloud_skip)


@pytest.fixture(scope="module")
def tiny_data():
    run = tiny_run()
    return runs.load_data(run.dataset, run.train_subset, run.test_subset, run.seed, None, "never")


class RecordingTrainer(runs.MethodTrainer):
    """A MethodTrainer that keeps itself and its parts' state at the start, for the test to inspect."""

    made: ClassVar[list["RecordingTrainer"]] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial = {part: state(module) for part, module in self.parts.modules().items()}
        RecordingTrainer.made.append(self)


def state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Parameters and buffers (BatchNorm statistics), copied."""
    return {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)


def trained(run: TrainingRun, data, monkeypatch) -> tuple[TrainingResult, RecordingTrainer]:
    monkeypatch.setattr(runs, "MethodTrainer", RecordingTrainer)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # skipping the cloud's first steps must not warn
        result = train(run, *runs.batch_loaders(run, *data), progress=False)
    return result, RecordingTrainer.made[-1]


def without_time(result: TrainingResult) -> list[tuple]:
    return [astuple(replace(e, wall_time_s=0.0)) for e in result.epochs]


def equal_metrics(a: TrainingResult, b: TrainingResult) -> bool:
    """Epoch metrics bit for bit (nan equal to nan), wall time aside."""
    return json.dumps(without_time(a)) == json.dumps(without_time(b))


@needs_fashion_mnist
def test_skipping_every_cloud_batch_leaves_the_cloud_untouched_and_the_edge_as_without_skips(tiny_data, monkeypatch):
    plain, plain_trainer = trained(tiny_run(), tiny_data, monkeypatch)
    everything = encode_skips([[T] * 8, [T] * 8])
    assert everything == "ff.ff"
    skipped, skipped_trainer = trained(tiny_run(everything), tiny_data, monkeypatch)
    cloud_after = state(skipped_trainer.parts.cloud)
    assert same(cloud_after, skipped_trainer.initial["cloud"])  # weights and BatchNorm statistics
    assert not same(state(plain_trainer.parts.cloud), plain_trainer.initial["cloud"])
    for part in ("edge", "early_exit"):  # the edge trains, and exactly as it does when the cloud trains
        assert not same(state(getattr(skipped_trainer.parts, part)), skipped_trainer.initial[part])
        assert same(state(getattr(skipped_trainer.parts, part)), state(getattr(plain_trainer.parts, part)))
    # the cloud's schedule followed the run: both end at the same learning rate
    assert skipped_trainer.optimizers[1].param_groups[0]["lr"] == plain_trainer.optimizers[1].param_groups[0]["lr"]
    assert all(math.isnan(e.train_loss) and e.cloud_skipped_batches == 8 for e in skipped.epochs)
    assert [e.exit_train_loss for e in skipped.epochs] == [e.exit_train_loss for e in plain.epochs]
    assert [e.early_exit_accuracy for e in skipped.epochs] == [e.early_exit_accuracy for e in plain.epochs]


@needs_fashion_mnist
def test_an_explicit_text_skipping_nothing_trains_exactly_the_plain_run(tiny_data, monkeypatch):
    plain, plain_trainer = trained(tiny_run(), tiny_data, monkeypatch)
    none, none_trainer = trained(tiny_run("00.00"), tiny_data, monkeypatch)  # bypasses TrainingRun.of's ""
    assert equal_metrics(plain, none)
    assert all(e.cloud_skipped_batches == 0 for e in none.epochs)
    for part in ("edge", "cloud", "early_exit"):
        assert same(state(getattr(plain_trainer.parts, part)), state(getattr(none_trainer.parts, part)))


@needs_fashion_mnist
def test_partial_skips_average_the_cloud_trained_batches_and_cache_round_trip(tiny_data, monkeypatch, tmp_path):
    skips = [[T] * 8, [F, T, F, F, T, T, F, F]]
    run = TrainingRun.of("vgg16", "hierarchical", "stage2", "fp32", cloud_skip=encode_skips(skips), **TINY)
    assert run.cloud_skip == "ff.4c"
    losses = []
    real_step = RecordingTrainer.step

    def recording_step(self, x, y, cloud=True):
        losses.append(real_step(self, x, y, cloud=cloud))
        return losses[-1]

    monkeypatch.setattr(RecordingTrainer, "step", recording_step)
    result, _ = trained(run, tiny_data, monkeypatch)
    assert [math.isnan(step.loss) for step in losses] == skips[0] + skips[1]
    assert not any(math.isnan(step.exit_loss) for step in losses)
    first, second = result.epochs
    assert math.isnan(first.train_loss) and first.cloud_skipped_batches == 8
    cloud_losses = [step.loss for step in losses[8:] if not math.isnan(step.loss)]
    assert len(cloud_losses) == 5 and second.cloud_skipped_batches == 3
    assert second.train_loss == pytest.approx(sum(cloud_losses) / 5, rel=1e-12)
    assert first.exit_train_loss == pytest.approx(sum(step.exit_loss for step in losses[:8]) / 8, rel=1e-12)

    cache = TrainingCache(tmp_path / "cache")
    assert cache.get(run) is None
    cache.put(result)
    again = cache.get(run)
    assert again is not None and again.cached and again.run == run and again.to_json() == result.to_json()
    assert json.loads(cache.path(run).read_text())["run"]["cloud_skip"] == "ff.4c"
    assert cache.path(tiny_run()) != cache.path(run) and cache.get(tiny_run()) is None
