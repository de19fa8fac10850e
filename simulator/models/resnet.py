"""ResNet-18 as a stem, eight named basic blocks and a linear head.

CIFAR-style stem: 3x3 conv, stride 1, batch norm, ReLU; for inputs of 64x64 and larger
(Tiny ImageNet) a 2x2 max pool follows, so the basic blocks see the same 32x32 grid as on
CIFAR. Blocks: stem, layer1_0, layer1_1, layer2_0, ..., layer4_1, head.
Separation points: stem and every basic block.
"""
import torch
from torch import nn

from .blocks import BlockNet, scaled


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection (He et al. 2016)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


def resnet18(input_shape: tuple[int, int, int], num_classes: int, width: float = 1.0) -> BlockNet:
    in_channels, size, _ = input_shape
    stem_channels = scaled(64, width)
    stem: list[nn.Module] = [nn.Conv2d(in_channels, stem_channels, 3, 1, 1, bias=False),
                             nn.BatchNorm2d(stem_channels), nn.ReLU(inplace=True)]
    if size >= 64:
        stem.append(nn.MaxPool2d(2))
    blocks: dict[str, nn.Module] = {"stem": nn.Sequential(*stem)}
    channels = stem_channels
    for layer, base in enumerate([64, 128, 256, 512], start=1):
        out_channels = scaled(base, width)
        for index in range(2):
            stride = 2 if (layer > 1 and index == 0) else 1
            blocks[f"layer{layer}_{index}"] = BasicBlock(channels, out_channels, stride)
            channels = out_channels
    blocks["head"] = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))
    return BlockNet("resnet18", blocks, input_shape, num_classes, width)
