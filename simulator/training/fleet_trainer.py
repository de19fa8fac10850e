"""Training one split model across a fleet of edges that share one cloud part.

`FleetTrainer` turns one `MethodTrainer` (split learning or hierarchical) into one trainer per
edge, so every step runs MethodTrainer's own step code (codec round trips, detached features,
optimizer and LR-schedule steps) unchanged. Every edge's trainer holds

    the cloud part        the same module and the same optimizer for every edge (one cloud);
    the edge part (+exit) its own deep copy of the first edge's, so all start from the same
                          weights - or, in sequential split learning, the very same modules,
                          whose weights the cloud hands from edge to edge;
    the edge optimizer    its own, so its own momentum buffers, in every mode: a device keeps
                          its optimizer state; only weights travel (hand-over, averaging).

Order of the steps within an epoch:
    sequential   edge 0 trains all its batches, then edge 1, ... (edges take turns);
    otherwise    round robin: edge 0's batch 0, edge 1's batch 0, ..., edge 0's batch 1, ...;
                 an edge whose share is done leaves the rotation.

Averaging (`average`, with more than one edge) after every epoch: the edge parts (hierarchical:
and the early exits) are set to their FedAvg mean, weighted by each edge's training samples
(`federated_average`); the momentum buffers stay each edge's own.

LR schedule (cosine): each optimizer decays over the steps it takes in the run - an edge's
over epochs x its own batches, the shared cloud's over epochs x all edges' batches - so an
edge needs no clock but its own. With one edge both equal the single-edge schedule.
"""
import copy
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

import torch
from torch import nn

from ..core.names import HIERARCHICAL, SPLIT_LEARNING
from .methods import MethodTrainer, StepLosses
from .optimizer import OptimizerConfig, sgd

_DONE = object()


@torch.no_grad()
def federated_average(modules: list[nn.Module], weights: list[float]) -> None:
    """Set every module's parameters and buffers to their weighted mean, in place (FedAvg).

    Floating-point entries (weights, BatchNorm running mean and variance) become
    sum_i w_i x_i / sum_i w_i; integer buffers (BatchNorm's num_batches_tracked) the largest.
    """
    if len(modules) != len(weights) or not modules or sum(weights) <= 0:
        raise ValueError(f"need one positive total of weights for {len(modules)} modules, got {weights!r}")
    states = [module.state_dict() for module in modules]
    total = float(sum(weights))
    for name, first in states[0].items():
        values = [state[name] for state in states]
        if first.is_floating_point():
            mean = sum(float(w) * value for w, value in zip(weights, values)) / total
        else:
            mean = torch.stack(values).amax(0)
        for value in values:
            value.copy_(mean)


def round_robin(iterables: list[Iterable]) -> Iterator[tuple[int, object]]:
    """(index, item): one item of each iterable in turn; an exhausted one leaves the rotation."""
    iterators = [iter(iterable) for iterable in iterables]
    active = list(range(len(iterators)))
    while active:
        still = []
        for i in active:
            item = next(iterators[i], _DONE)
            if item is not _DONE:
                still.append(i)
                yield i, item
        active = still


def in_turns(iterables: list[Iterable]) -> Iterator[tuple[int, object]]:
    """(index, item): every item of the first iterable, then every item of the second, ..."""
    for i, iterable in enumerate(iterables):
        for item in iterable:
            yield i, item


def _cosine(optimizer: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(steps, 1))


class FleetTrainer:
    """Trains a fleet: one MethodTrainer per edge around one shared cloud part (module docstring).

    `first` is the first edge's trainer, freshly built (no step taken yet); `edge_batches[i]`
    is edge i's batches per epoch and `edge_samples[i]` its training samples (FedAvg weights).
    `sequential`: one edge part handed from edge to edge, edges in turns (split learning's
    original form); else every edge has its own copy, steps round robin. `average`: FedAvg of
    the edge parts (and exits) at each epoch's end.
    """

    def __init__(self, first: MethodTrainer, edge_batches: list[int], edge_samples: list[int], epochs: int,
                 optimizer: OptimizerConfig, sequential: bool, average: bool):
        if first.method not in (SPLIT_LEARNING, HIERARCHICAL):
            raise ValueError(f"a fleet trains split_learning or hierarchical, not {first.method}")
        if len(edge_batches) != len(edge_samples) or not edge_batches:
            raise ValueError("need the batches and the samples of every edge")
        self.method, self.sequential = first.method, sequential
        self.average = average and len(edge_batches) > 1  # averaging one model changes nothing
        self.edge_samples = list(edge_samples)
        cloud_optimizer = first.optimizers[1]  # MethodTrainer's groups: [edge (+ exit), cloud]
        cosine = optimizer.schedule == "cosine"
        cloud_schedule = _cosine(cloud_optimizer, epochs * sum(edge_batches)) if cosine else None
        self.trainers: list[MethodTrainer] = []
        for i, batches in enumerate(edge_batches):
            trainer = first if i == 0 else self._fork(first, optimizer)
            edge_optimizer = trainer.optimizers[0]
            trainer.optimizers = [edge_optimizer, cloud_optimizer]
            trainer.schedulers = [_cosine(edge_optimizer, epochs * batches), cloud_schedule] if cosine else []
            self.trainers.append(trainer)

    def _fork(self, first: MethodTrainer, optimizer: OptimizerConfig) -> MethodTrainer:
        """Another edge's trainer: `first`'s cloud part; a copy of its edge part and exit (the same
        modules when sequential); a new edge optimizer over them."""
        fork = copy.copy(first)
        if not self.sequential:
            fork.parts = replace(first.parts, edge=copy.deepcopy(first.parts.edge),
                                 early_exit=copy.deepcopy(first.parts.early_exit))
        trained = list(fork.parts.edge.parameters())
        if self.method == HIERARCHICAL:
            trained += list(fork.parts.early_exit.parameters())
        fork.optimizers = [sgd(trained, optimizer)]
        return fork

    @property
    def shared_edge(self) -> bool:
        """Whether every edge holds the same edge part after an epoch (one model, or averaged)."""
        return self.sequential or self.average or len(self.trainers) == 1

    def train_batches(self, loaders: list[Iterable], on_step: Callable[[], None] = lambda: None) -> list[StepLosses]:
        """One epoch's steps: every batch of every edge's loader, in the fleet's order."""
        order = in_turns if self.sequential else round_robin
        losses = []
        for i, (x, y) in order(loaders):
            losses.append(self.trainers[i].step(x, y))
            on_step()
        return losses

    def end_epoch(self) -> None:
        """Average the edge parts (and exits) when the fleet averages."""
        if self.average:
            federated_average([t.parts.edge for t in self.trainers], self.edge_samples)
            if self.method == HIERARCHICAL:
                federated_average([t.parts.early_exit for t in self.trainers], self.edge_samples)

    def train_epoch(self, loaders: list[Iterable], on_step: Callable[[], None] = lambda: None) -> list[StepLosses]:
        losses = self.train_batches(loaders, on_step)
        self.end_epoch()
        return losses

    def evaluate(self, batches: Iterable) -> list[tuple[float, float]]:
        """(final-exit, early-exit) test accuracy of each edge's part with the cloud part
        (`MethodTrainer.evaluate`); computed once when the edges share one edge part."""
        if self.shared_edge:
            return [self.trainers[0].evaluate(batches)] * len(self.trainers)
        return [trainer.evaluate(batches) for trainer in self.trainers]
