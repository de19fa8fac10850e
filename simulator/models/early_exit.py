"""The early-exit classifier the edge trains as its local loss in hierarchical training.

Design, for a feature map of C channels and H x W pixels at the separation point:

    Conv2d(C, E, 3x3, padding 1, no bias) -> BatchNorm2d(E) -> ReLU
    -> AdaptiveAvgPool2d(P) -> Flatten -> Linear(E * P * P, classes)

with E = min(C, 128 x width) exit channels (never below 4) and P = 2 when H >= 2, else 1.
Parameters: 9*C*E (conv) + 2*E (batch norm) + E*P*P*classes + classes (linear).
The conv gives the exit some capacity of its own near the input, where features are weak;
capping E keeps the head small next to the blocks it serves deep in the network.

For a token sequence of N tokens of D features (a vision transformer's encoder):

    LayerNorm(D) -> mean over the N tokens -> Linear(D, classes)

Parameters: 2*D + D*classes + classes. For a flat vector of F features (after a global pool):
Linear(F, classes), F*classes + classes parameters.
`simulate models` prints the head's parameter count at every separation point.
"""
import torch
from torch import nn

from ..core.errors import UserError
from .blocks import FeatureInfo, scaled

EXIT_CHANNELS = 128


def exit_channels(feature: FeatureInfo, width: float) -> int:
    return min(feature.channels, scaled(EXIT_CHANNELS, width))


class TokenMean(nn.Module):
    """Mean over the token axis: (B, N, D) -> (B, D)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1)


def early_exit_head(feature: FeatureInfo, num_classes: int, width: float = 1.0) -> nn.Sequential:
    if feature.kind == "tokens":
        return nn.Sequential(nn.LayerNorm(feature.channels), TokenMean(), nn.Linear(feature.channels, num_classes))
    if feature.kind == "vector":
        return nn.Sequential(nn.Linear(feature.channels, num_classes))
    if feature.kind != "map":
        raise UserError(f"no early exit for the {len(feature.shape)}-dimensional tensor after {feature.name}")
    channels = exit_channels(feature, width)
    pool = 2 if feature.height >= 2 else 1
    return nn.Sequential(
        nn.Conv2d(feature.channels, channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(pool),
        nn.Flatten(),
        nn.Linear(channels * pool * pool, num_classes),
    )


def early_exit_param_count(feature: FeatureInfo, num_classes: int, width: float = 1.0) -> int:
    """Closed-form parameter count of `early_exit_head` (see the module docstring)."""
    if feature.kind == "tokens":
        return 2 * feature.channels + feature.channels * num_classes + num_classes
    if feature.kind == "vector":
        return feature.channels * num_classes + num_classes
    channels = exit_channels(feature, width)
    pool = 2 if feature.height >= 2 else 1
    return 9 * feature.channels * channels + 2 * channels + channels * pool * pool * num_classes + num_classes
