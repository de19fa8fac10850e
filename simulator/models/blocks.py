"""A network as an ordered list of named blocks, the unit of profiling and splitting.

Every block boundary except the last is a candidate separation point. The same names are
used in the model (`BlockNet.block(name)`), in a profile file (`layers[].name`) and in a
scenario's `split` key. Names may be dotted module paths (`features.7`); the ModuleDict that
holds the blocks keys them with `/` for `.`, which torch does not allow in a key.
"""
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class FeatureInfo:
    """Shape of the tensor leaving a block, per sample (timm's `feature_info`): a feature map
    (C, H, W), a token sequence (N, D) or a vector (F)."""

    name: str
    shape: tuple[int, ...]
    reduction: int  # input height / feature height (feature maps), else 0

    @property
    def kind(self) -> str:
        return {3: "map", 2: "tokens", 1: "vector"}.get(len(self.shape), "other")

    @property
    def channels(self) -> int:
        """C of a map, D of tokens, F of a vector."""
        return self.shape[0] if self.kind == "map" else self.shape[-1]

    @property
    def height(self) -> int:
        return self.shape[1] if self.kind == "map" else 0

    @property
    def width(self) -> int:
        return self.shape[2] if self.kind == "map" else 0


def module_key(name: str) -> str:
    return name.replace(".", "/")


class Stage(nn.Module):
    """Runs a contiguous run of named blocks in order."""

    def __init__(self, blocks: dict[str, nn.Module]):
        super().__init__()
        self.blocks = nn.ModuleDict({module_key(name): block for name, block in blocks.items()})
        self.names = list(blocks)

    @property
    def block_names(self) -> list[str]:
        return list(self.names)

    def block(self, name: str) -> nn.Module:
        return self.blocks[module_key(name)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks.values():
            x = block(x)
        return x


class BlockNet(Stage):
    """A whole model: named blocks, the last of which is the classifier head."""

    def __init__(self, arch: str, blocks: dict[str, nn.Module], input_shape: tuple[int, int, int],
                 num_classes: int, width: float, source: str = "paper"):
        super().__init__(blocks)
        self.arch = arch
        self.source = source  # "paper" (vgg16, resnet18), "torchvision" or "import" (a user's factory)
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
            for name, block in zip(self.names, self.blocks.values()):
                x = block(x)
                shape = tuple(int(d) for d in x.shape[1:])
                reduction = self.input_shape[1] // max(shape[1], 1) if len(shape) == 3 else 0
                infos.append(FeatureInfo(name, shape, reduction))
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
