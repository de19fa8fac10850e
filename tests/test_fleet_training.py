"""Real training of a fleet: the data split, FedAvg, each method's fleet semantics, the cache,
exactness against single-edge training with one edge, and a run on Fashion-MNIST that learns."""
import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from conftest import needs_fashion_mnist

from simulator.training import fleet as fleet_module
from simulator.training.fleet import (
    FleetTrainingRun,
    fleet_accuracy,
    fleet_trainer,
    train_fleet,
)
from simulator.training.fleet_trainer import federated_average, round_robin
from simulator.training.optimizer import OptimizerConfig
from simulator.training.partition import partition
from simulator.training.runs import TrainingRun, batch_loaders, load_data, train

# ---- the data split ---------------------------------------------------------------------------

LABELS = np.repeat(np.arange(10), 100)  # 1,000 samples, 100 of each of 10 classes


def covers_once(pieces: list[np.ndarray], n: int) -> bool:
    return np.array_equal(np.sort(np.concatenate(pieces)), np.arange(n))


def mean_label_entropy_nats(pieces: list[np.ndarray]) -> float:
    entropies = []
    for piece in pieces:
        p = np.bincount(LABELS[piece], minlength=10) / len(piece)
        entropies.append(-sum(q * math.log(q) for q in p if q > 0))
    return float(np.mean(entropies))


def test_iid_split_is_disjoint_complete_and_proportional_to_the_shares():
    pieces = partition(LABELS, (300, 100, 100), None, seed=0)
    assert covers_once(pieces, 1000) and [len(p) for p in pieces] == [600, 200, 200]
    assert all(np.all(np.diff(p) > 0) for p in pieces)  # sorted, no repeats
    # 1000 / 3 = 333.33 each: the one leftover sample goes to the first edge (ties: lower index)
    assert [len(p) for p in partition(LABELS, (7, 7, 7), None, seed=0)] == [334, 333, 333]
    assert mean_label_entropy_nats(pieces) > 2.2  # every edge sees nearly all classes (log 10 = 2.30)


@pytest.mark.parametrize("alpha", [None, 0.5])
def test_one_edge_gets_every_sample_in_order(alpha):
    [piece] = partition(LABELS, (5,), alpha, seed=3)
    assert np.array_equal(piece, np.arange(1000))


def test_dirichlet_split_skews_labels_more_for_small_alpha():
    shares = (100,) * 5
    skewed, mild = partition(LABELS, shares, 0.1, seed=0), partition(LABELS, shares, 100.0, seed=0)
    assert covers_once(skewed, 1000) and covers_once(mild, 1000)
    assert mean_label_entropy_nats(mild) > 2.2
    assert mean_label_entropy_nats(skewed) < mean_label_entropy_nats(mild) - 1.0


def test_dirichlet_sizes_follow_the_shares_on_average():
    sizes = np.mean([[len(p) for p in partition(LABELS, (300, 100), 100.0, seed=s)] for s in range(5)], axis=0)
    assert sizes[0] == pytest.approx(750, abs=40) and sizes[1] == pytest.approx(250, abs=40)


def test_dirichlet_split_is_reproducible_and_differs_across_seeds():
    first = partition(LABELS, (1, 1, 1), 0.5, seed=7)
    assert all(np.array_equal(a, b) for a, b in zip(first, partition(LABELS, (1, 1, 1), 0.5, seed=7)))
    assert not all(np.array_equal(a, b) for a, b in zip(first, partition(LABELS, (1, 1, 1), 0.5, seed=8)))
    assert not all(np.array_equal(a, b) for a, b in zip(partition(LABELS, (1, 1), None, seed=1),
                                                        partition(LABELS, (1, 1), None, seed=2)))


def test_every_edge_gets_a_batch_or_else_an_equal_floor_share():
    for seed in range(5):  # alpha 0.05 leaves most edges with next to nothing before the top-up
        pieces = partition(LABELS[:320], (1,) * 8, 0.05, seed=seed, min_samples=32)
        assert covers_once(pieces, 320) and min(len(p) for p in pieces) >= 32
    pieces = partition(LABELS[:100], (1,) * 8, 0.05, seed=0, min_samples=32)  # 8 x 32 > 100: floor(100 / 8) = 12
    assert covers_once(pieces, 100) and min(len(p) for p in pieces) >= 12
    with pytest.raises(ValueError, match="3 training samples across 4 edges"):
        partition(LABELS[:3], (1,) * 4, None, seed=0)


# ---- averaging and order ----------------------------------------------------------------------

def test_federated_average_is_the_sample_weighted_mean_of_parameters_and_buffers():
    modules = [torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.BatchNorm1d(1)) for _ in range(2)]
    for module, value, batches in zip(modules, (1.0, 5.0), (2, 7)):
        for tensor in module.state_dict().values():
            tensor.fill_(value if tensor.is_floating_point() else batches)
    federated_average(modules, [1, 3])  # (1 x 1 + 3 x 5) / 4 = 4
    for module in modules:
        state = module.state_dict()
        assert torch.equal(state["0.weight"], torch.full((1, 2), 4.0)) and state["0.bias"].item() == 4.0
        assert state["1.running_mean"].item() == 4.0 and state["1.running_var"].item() == 4.0
        assert state["1.num_batches_tracked"].item() == 7  # an integer buffer: the largest


def test_round_robin_drops_an_edge_whose_share_is_done():
    order = [item for _, item in round_robin([["a0", "a1", "a2"], ["b0"], ["c0", "c1"]])]
    assert order == ["a0", "b0", "c0", "a1", "c1", "a2"]


# ---- each method's fleet, on random tensors ---------------------------------------------------

EDGE_BATCHES = [3, 1, 2]  # batches per epoch of the three edges
EDGE_SAMPLES = [24, 8, 16]


def tiny_run(method: str, codec: str = "fp32", epochs: int = 1, **fleet) -> FleetTrainingRun:
    run = TrainingRun(model="vgg16", method=method, split="stage2", codec=codec, dataset="fashion-mnist",
                      width=0.0625, epochs=epochs, train_subset=None, test_subset=None, batch_size=8,
                      optimizer=OptimizerConfig(), seed=0, device="cpu")
    return FleetTrainingRun(run, (24, 8, 16), None, **fleet)


def edge_loaders() -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
    generator = torch.Generator().manual_seed(0)
    return [[(torch.randn(8, 1, 28, 28, generator=generator), torch.randint(0, 10, (8,), generator=generator))
             for _ in range(n)] for n in EDGE_BATCHES]


def recorded(fleet) -> list[int]:
    """The edge of every step the fleet takes from now on, in order."""
    trace = []
    for i, trainer in enumerate(fleet.trainers):
        trainer.step = lambda x, y, i=i, step=trainer.step: (trace.append(i), step(x, y))[1]
    return trace


def floats(module: torch.nn.Module) -> torch.Tensor:
    """Every floating-point parameter and buffer, flattened."""
    return torch.cat([v.flatten() for v in module.state_dict().values() if v.is_floating_point()]).clone()


def test_sequential_split_learning_hands_one_edge_part_from_edge_to_edge():
    fleet = fleet_trainer(tiny_run("split_learning", "int8", split_learning="sequential"), EDGE_BATCHES, EDGE_SAMPLES)
    initial = floats(fleet.trainers[0].parts.edge)
    trace = recorded(fleet)
    fleet.train_epoch(edge_loaders())
    assert trace == [0, 0, 0, 1, 2, 2]  # in turns
    edge = fleet.trainers[0].parts.edge
    assert all(t.parts.edge is edge and t.parts.cloud is fleet.trainers[0].parts.cloud for t in fleet.trainers)
    assert not torch.equal(floats(edge), initial)
    # each edge its own optimizer, each with momentum from its own turn
    optimizers = [t.optimizers[0] for t in fleet.trainers]
    assert len(set(map(id, optimizers))) == 3
    assert all("momentum_buffer" in opt.state[next(edge.parameters())] for opt in optimizers)
    assert not torch.equal(optimizers[0].state[next(edge.parameters())]["momentum_buffer"],
                           optimizers[1].state[next(edge.parameters())]["momentum_buffer"])


def test_parallel_split_learning_averages_the_edge_parts_at_the_epoch_end():
    fleet = fleet_trainer(tiny_run("split_learning", "fp16", split_learning="parallel"), EDGE_BATCHES, EDGE_SAMPLES)
    trace = recorded(fleet)
    fleet.train_batches(edge_loaders())
    assert trace == [0, 1, 2, 0, 2, 0]  # round robin
    before = [floats(t.parts.edge) for t in fleet.trainers]
    assert not torch.equal(before[0], before[1]) and not torch.equal(before[1], before[2])
    fleet.end_epoch()
    expected = (24 * before[0] + 8 * before[1] + 16 * before[2]) / 48
    for trainer in fleet.trainers:
        assert torch.allclose(floats(trainer.parts.edge), expected, rtol=1e-5, atol=1e-6)
        assert trainer.parts.edge.state_dict()["blocks.stage1.1.num_batches_tracked"].item() == 3  # the most: edge 0's 3


@pytest.mark.parametrize("sync", ["none", "epoch"])
def test_hierarchical_edges_diverge_unless_synchronised(sync):
    fleet = fleet_trainer(tiny_run("hierarchical", edge_sync=sync), EDGE_BATCHES, EDGE_SAMPLES)
    fleet.train_epoch(edge_loaders())
    for part in ("edge", "early_exit"):
        states = [floats(getattr(t.parts, part)) for t in fleet.trainers]
        assert all(torch.equal(states[0], s) for s in states[1:]) == (sync == "epoch"), part


def test_hierarchical_fleet_edges_never_see_the_cloud():
    """Every edge and exit trains identically whatever the shared cloud part holds."""
    plain = fleet_trainer(tiny_run("hierarchical", "int8", edge_sync="none"), EDGE_BATCHES, EDGE_SAMPLES)
    perturbed = fleet_trainer(tiny_run("hierarchical", "int8", edge_sync="none"), EDGE_BATCHES, EDGE_SAMPLES)
    with torch.no_grad():
        for p in perturbed.trainers[0].parts.cloud.parameters():
            p.add_(torch.randn_like(p))
    for fleet in (plain, perturbed):
        fleet.train_epoch(edge_loaders())
    for a, b in zip(plain.trainers, perturbed.trainers):
        assert torch.equal(floats(a.parts.edge), floats(b.parts.edge))
        assert torch.equal(floats(a.parts.early_exit), floats(b.parts.early_exit))
    assert not torch.equal(floats(plain.trainers[0].parts.cloud), floats(perturbed.trainers[0].parts.cloud))


def test_each_optimizer_decays_over_its_own_steps():
    """Cosine over 2 epochs: after the first, every optimizer is at lr x (1 + cos(pi / 2)) / 2 = lr / 2,
    whether it took 3, 1 or 2 steps (an edge) or 6 (the cloud)."""
    fleet = fleet_trainer(tiny_run("hierarchical", epochs=2, edge_sync="none"), EDGE_BATCHES, EDGE_SAMPLES)
    fleet.train_epoch(edge_loaders())
    for trainer in fleet.trainers:
        assert [opt.param_groups[0]["lr"] for opt in trainer.optimizers] == pytest.approx([0.025, 0.025])


def test_run_validation_and_key():
    run = tiny_run("hierarchical", edge_sync="none")
    assert run.key() == tiny_run("hierarchical", edge_sync="none").key() and len(run.key()) == 20
    changed = [dataclasses.replace(run, shares=(24, 8, 17)), dataclasses.replace(run, dirichlet_alpha=0.5),
               dataclasses.replace(run, edge_sync="epoch"), dataclasses.replace(run, run=dataclasses.replace(
                   run.run, seed=1)), tiny_run("hierarchical", "int8", edge_sync="none")]
    assert len({run.key(), *(c.key() for c in changed)}) == 6
    with pytest.raises(ValueError, match="split_learning needs split_learning one of sequential, parallel"):
        tiny_run("split_learning")
    with pytest.raises(ValueError, match="hierarchical needs split_learning"):
        tiny_run("hierarchical", split_learning="parallel", edge_sync="none")
    with pytest.raises(ValueError, match="1 to 8 edges"):
        dataclasses.replace(run, shares=(1,) * 9)


# ---- on Fashion-MNIST -------------------------------------------------------------------------

def fmnist_run(method: str, codec: str, shares: tuple[int, ...], alpha: float | None = None, width: float = 0.0625,
               train_subset: int = 256, epochs: int = 2, **fleet) -> FleetTrainingRun:
    run = TrainingRun(model="vgg16", method=method, split="" if method == "full_cloud" else "stage3", codec=codec,
                      dataset="fashion-mnist", width=width, epochs=epochs, train_subset=train_subset, test_subset=128,
                      batch_size=32, optimizer=OptimizerConfig(), seed=0, device="cpu")
    return FleetTrainingRun(run, shares, alpha, **fleet)


def without_wall_time(epochs) -> str:
    return json.dumps([{**dataclasses.asdict(e), "wall_time_s": 0} for e in epochs])


@needs_fashion_mnist
@pytest.mark.parametrize("method,codec,fleet", [
    ("hierarchical", "fp32", {"edge_sync": "none"}), ("hierarchical", "int8", {"edge_sync": "epoch"}),
    ("split_learning", "int8", {"split_learning": "parallel"}), ("split_learning", "fp16", {"split_learning": "sequential"})])
def test_a_one_edge_fleet_trains_exactly_as_a_single_edge(method, codec, fleet):
    run = fmnist_run(method, codec, (500,), alpha=0.5, **fleet)
    data = load_data("fashion-mnist", 256, 128, 0, None, "never")
    single = train(run.run, *batch_loaders(run.run, *data), progress=False)
    fleet_result = train_fleet(run, *data, progress=False)
    assert without_wall_time(fleet_result.epochs) == without_wall_time(single.epochs)
    assert fleet_result.edge_samples == (256,)


FLEETS = [("full_cloud", "", None, {}), ("full_cloud", "", 0.5, {}),
          ("split_learning", "fp16", None, {"split_learning": "sequential"}),
          ("split_learning", "fp16", None, {"split_learning": "parallel"}),
          ("hierarchical", "fp32", None, {"edge_sync": "none"}),
          ("hierarchical", "fp32", 0.5, {"edge_sync": "epoch"})]


@pytest.fixture(scope="module")
def trained_fleets(tmp_path_factory):
    cache = tmp_path_factory.mktemp("fleet-cache")
    runs = [fmnist_run(method, codec, (300, 100, 200), alpha, width=0.125, train_subset=1500, epochs=1, **fleet)
            for method, codec, alpha, fleet in FLEETS]
    return runs, cache, fleet_accuracy(runs, None, "never", progress=False, cache_root=cache)


@needs_fashion_mnist
def test_every_fleet_method_learns_on_fashion_mnist(trained_fleets):
    runs, _, results = trained_fleets
    for run in runs:
        result = results[run]
        assert not result.cached and sum(result.edge_samples) == 1500
        assert 0 < result.final.final_accuracy <= 1 and result.final.wall_time_s > 0
        weighted = np.average(result.edge_final_accuracy, weights=run.shares)
        assert result.final.final_accuracy == pytest.approx(weighted), run.mode
        if run.run.method == "hierarchical":
            assert 0 < result.final.early_exit_accuracy <= 1
        else:
            assert math.isnan(result.final.early_exit_accuracy) and all(map(math.isnan, result.edge_exit_accuracy))
    iid, non_iid = results[runs[0]], results[runs[1]]
    assert iid.final.final_accuracy > 0.3  # chance is 0.1
    assert without_wall_time(iid.epochs) == without_wall_time(non_iid.epochs)  # full cloud trains on the union
    assert iid.edge_samples == (750, 250, 500) and non_iid.edge_samples != iid.edge_samples
    sync_none = results[runs[4]]
    assert len(set(sync_none.edge_exit_accuracy)) > 1  # three edge parts, each tested on its own


@needs_fashion_mnist
def test_a_second_call_reads_every_fleet_from_the_cache(trained_fleets, monkeypatch):
    runs, cache, first = trained_fleets
    monkeypatch.setattr(fleet_module, "train_fleet", lambda *args, **kw: pytest.fail("trained again"))
    again = fleet_accuracy(runs, None, "never", progress=False, cache_root=cache)
    assert list(again) == runs and all(result.cached for result in again.values())
    assert all(again[run].to_json() == first[run].to_json() for run in runs)
    assert len(list(cache.glob("*.json"))) == len(runs)
