"""Real PyTorch training of one split model under each method.

The three methods train the same `split(model, point)` parts:

    full_cloud      logits = cloud(edge(x)); one loss; one backward; one step over everything.
    split_learning  a = edge(x); the cloud receives a' = codec(a) and computes the final loss;
                    its backward gives dL/da', which travels back as codec(dL/da') and
                    continues the backward through the edge. Edge and cloud step.
                    With the lossless fp32 codec this is exactly full_cloud.
    hierarchical    a = edge(x); the edge's loss is the early exit's, exit(a); its backward
                    and step touch only the edge blocks and the exit. The cloud receives
                    codec(a) detached - no gradient ever returns to the edge - and trains
                    its blocks on the final loss. A batch the edge dropped (`step(..., cloud=False)`)
                    trains the edge and the exit only: no cloud forward, backward or step.

Each optimizer is SGD with momentum (per-parameter, so one optimizer over all parameters
and one per part are the same update).
"""
import math
import re
import time
import warnings
from dataclasses import dataclass

import torch
from torch import nn

from ..core.names import METHODS
from ..models import BlockNet, split
from ..models.codecs import roundtrip
from .optimizer import OptimizerConfig, sgd

SCHEDULE_FIRST_WARNING = "Detected call of `lr_scheduler.step()` before `optimizer.step()`"


@dataclass(frozen=True)
class StepLosses:
    loss: float  # final-exit cross-entropy; nan when the cloud skipped the batch
    exit_loss: float  # early-exit cross-entropy (hierarchical), else nan


class MethodTrainer:
    """Trains `model` cut at `point` with one method, sending tensors through `codec`."""

    def __init__(self, model: BlockNet, point: str, method: str, codec: str, optimizer: OptimizerConfig,
                 total_steps: int):
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}")
        self.method, self.codec = method, codec
        self.parts = split(model, point)
        edge, cloud, head = self.parts.edge, self.parts.cloud, self.parts.early_exit
        groups = {"full_cloud": [list(edge.parameters()) + list(cloud.parameters())],
                  "split_learning": [list(edge.parameters()), list(cloud.parameters())],
                  "hierarchical": [list(edge.parameters()) + list(head.parameters()), list(cloud.parameters())]}
        self.optimizers = [sgd(params, optimizer) for params in groups[method]]
        self.schedulers = [torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(total_steps, 1))
                           for opt in self.optimizers] if optimizer.schedule == "cosine" else []

    def modules(self) -> list[nn.Module]:
        return list(self.parts.modules().values())

    def to(self, device: torch.device) -> "MethodTrainer":
        for module in self.modules():
            module.to(device)
        return self

    def train(self, mode: bool = True) -> None:
        for module in self.modules():
            module.train(mode)

    def step(self, x: torch.Tensor, y: torch.Tensor, cloud: bool = True) -> StepLosses:
        """One training step on the batch (x, y).

        `cloud=False` (hierarchical only): the batch never reached the cloud. The edge and its
        exit train as usual; the cloud part does no forward, backward or optimizer step (its
        parameters, momentum and BatchNorm statistics stay as they were) and the loss is nan.
        Every LR schedule still advances, so the cloud's learning rate follows the run's progress
        (batch k of the run), not the number of batches the cloud has trained on.
        """
        if not cloud and self.method != "hierarchical":
            raise ValueError(f"only hierarchical training can skip the cloud's step, not {self.method}")
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)
        if self.method == "hierarchical":
            losses = self._step_hierarchical(x, y, cloud)
        else:
            losses = getattr(self, f"_step_{self.method}")(x, y)
        stepped = self.optimizers if cloud else self.optimizers[:1]  # hierarchical: [edge + exit, cloud]
        for opt in stepped:
            opt.step()
        if cloud:
            for scheduler in self.schedulers:
                scheduler.step()
        else:
            with warnings.catch_warnings():
                # the cloud's schedule may advance before its optimizer's first step (the run's first
                # batches dropped): on purpose, though torch warns about it
                warnings.filterwarnings("ignore", message=re.escape(SCHEDULE_FIRST_WARNING))
                for scheduler in self.schedulers:
                    scheduler.step()
        return losses

    def _step_full_cloud(self, x: torch.Tensor, y: torch.Tensor) -> StepLosses:
        loss = nn.functional.cross_entropy(self.parts.cloud(self.parts.edge(x)), y)
        loss.backward()
        return StepLosses(loss.item(), math.nan)

    def _step_split_learning(self, x: torch.Tensor, y: torch.Tensor) -> StepLosses:
        activations = self.parts.edge(x)
        received = roundtrip(self.codec, activations).requires_grad_(True)  # uplink
        loss = nn.functional.cross_entropy(self.parts.cloud(received), y)
        loss.backward()
        activations.backward(roundtrip(self.codec, received.grad))  # downlink, then edge backward
        return StepLosses(loss.item(), math.nan)

    def _step_hierarchical(self, x: torch.Tensor, y: torch.Tensor, cloud: bool = True) -> StepLosses:
        features = self.parts.edge(x)
        exit_loss = nn.functional.cross_entropy(self.parts.early_exit(features), y)
        exit_loss.backward()  # edge + exit only
        if not cloud:  # the edge dropped the batch: it never reaches the cloud
            return StepLosses(math.nan, exit_loss.item())
        received = roundtrip(self.codec, features)  # detached: nothing flows back to the edge
        loss = nn.functional.cross_entropy(self.parts.cloud(received), y)
        loss.backward()  # cloud only
        return StepLosses(loss.item(), exit_loss.item())

    @torch.no_grad()
    def evaluate(self, batches) -> tuple[float, float]:
        """(final-exit accuracy, early-exit accuracy) over (x, y) batches; the final exit sees
        the features through the link codec, as in training."""
        self.train(False)
        correct = exit_correct = total = 0
        for x, y in batches:
            features = self.parts.edge(x)
            received = features if self.method == "full_cloud" else roundtrip(self.codec, features)
            correct += (self.parts.cloud(received).argmax(1) == y).sum().item()
            exit_correct += (self.parts.early_exit(features).argmax(1) == y).sum().item()
            total += len(y)
        self.train(True)
        return correct / total, exit_correct / total


def bare_training_loop(model: nn.Module, batches, optimizer: OptimizerConfig) -> float:
    """A plain PyTorch loop over `batches` (the throughput reference); returns images/s."""
    opt = sgd(model.parameters(), optimizer)
    model.train()
    images, start = 0, time.perf_counter()
    for x, y in batches:
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        images += len(y)
    return images / (time.perf_counter() - start)
