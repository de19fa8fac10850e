"""A network as an ordered list of named blocks, the unit of profiling and splitting.

Every block boundary except the last is a candidate separation point. The same names are
used in the model (`BlockNet.blocks`), in a profile file (`layers[].name`) and in a
scenario's `split` key.
"""
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class FeatureInfo:
    """Shape of the tensor leaving a block, per sample (timm's `feature_info`)."""

    name: str
    channels: int
    height: int
    width: int
    reduction: int  # input height / feature height

    @property
    def shape(self) -> tuple[int, ...]:
        if self.height == 0:
            return (self.channels,)
        return (self.channels, self.height, self.width)


class Stage(nn.Module):
    """Runs a contiguous run of named blocks in order."""

    def __init__(self, blocks: dict[str, nn.Module]):
        super().__init__()
        self.blocks = nn.ModuleDict(blocks)

    @property
    def block_names(self) -> list[str]:
        return list(self.blocks.keys())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks.values():
            x = block(x)
        return x


class BlockNet(Stage):
    """A whole model: named blocks, the last of which is the classifier head."""

    def __init__(self, arch: str, blocks: dict[str, nn.Module], input_shape: tuple[int, int, int],
                 num_classes: int, width: float):
        super().__init__(blocks)
        self.arch = arch
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.width = width
        self.feature_info = self._trace_features()

    @property
    def split_points(self) -> list[str]:
        """Block names after which the network may be cut (all but the head)."""
        return self.block_names[:-1]

    def _trace_features(self) -> list[FeatureInfo]:
        """Run one zero sample through the blocks (eval mode, no grad) to record shapes."""
        was_training = self.training
        self.eval()
        infos = []
        with torch.no_grad():
            x = torch.zeros(1, *self.input_shape)
            for name, block in self.blocks.items():
                x = block(x)
                if x.dim() == 4:
                    c, h, w = x.shape[1:]
                    infos.append(FeatureInfo(name, c, h, w, self.input_shape[1] // max(h, 1)))
                else:
                    infos.append(FeatureInfo(name, x.shape[1], 0, 0, 0))
        self.train(was_training)
        return infos

    def feature(self, name: str) -> FeatureInfo:
        for info in self.feature_info:
            if info.name == name:
                return info
        raise KeyError(name)


def scaled(channels: int, width: float) -> int:
    """Channel count under a width multiplier; never below 4."""
    return max(4, int(round(channels * width)))
