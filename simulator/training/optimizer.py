"""The optimizer every part of the simulator trains with, built from settings in one place.

SGD with momentum: per-parameter state, so one optimizer over all parameters and one per
part of a split model make the same update. Real training (`methods`), the emulation's
workers, the profiler's timed step and the memory probe all build it here.
"""
from collections.abc import Iterable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class OptimizerConfig:
    lr: float = 0.05  # initial learning rate
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"  # "cosine" (to 0 over the run) or "constant"


# What `simulate profile` times and the memory probe measures: the training step's cost does not
# depend on the learning rate, only on momentum (one buffer per weight) and weight decay.
PROFILED = OptimizerConfig(lr=0.01, schedule="constant")


def sgd(params: Iterable[torch.nn.Parameter], config: OptimizerConfig) -> torch.optim.SGD:
    """SGD with `config`'s learning rate, momentum and weight decay over `params`."""
    return torch.optim.SGD(list(params), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
