"""VGG-16 with batch norm, as five named conv stages and a linear head.

Built from a config list as in torchvision (`cfgs` + `make_layers`). Each stage ends with a
2x2 max pool, skipped when the feature map is already 1x1 (28x28 inputs reach 1x1 after
stage 4). The head is global average pooling and one linear layer (the CIFAR-style VGG).
Blocks: stage1 .. stage5, head. Separation points: stage1 .. stage5.
"""
from torch import nn

from .blocks import BlockNet, scaled

# Output channels of the conv layers of each stage.
VGG16_STAGES: list[list[int]] = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]


def make_stage(in_channels: int, channels: list[int], pool: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for out_channels in channels:
        layers += [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                   nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]
        in_channels = out_channels
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


def vgg16(input_shape: tuple[int, int, int], num_classes: int, width: float = 1.0) -> BlockNet:
    in_channels, size, _ = input_shape
    blocks: dict[str, nn.Module] = {}
    for index, stage in enumerate(VGG16_STAGES, start=1):
        channels = [scaled(c, width) for c in stage]
        pool = size >= 2
        blocks[f"stage{index}"] = make_stage(in_channels, channels, pool)
        in_channels, size = channels[-1], size // 2 if pool else size
    blocks["head"] = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_channels, num_classes))
    return BlockNet("vgg16", blocks, input_shape, num_classes, width)
