"""Users' own networks for tests/test_any_model.py, named as `tests.user_models:FACTORY`.

Each factory takes the class count and returns an nn.Module, as registry.load_factory expects.
"""
import torch
from torch import nn

# tiny_net's separation points, in execution order. Inside the residual branch (conv2a, conv2b)
# the branch's input is still needed by the add, so neither is a point; head.1 is the classifier.
TINY_NET_POINTS = ["conv1", "relu1", "pool", "head.0"]


class TinyNet(nn.Module):
    """28x28 grey image -> conv -> ReLU -> residual (conv, ReLU, conv) add -> 4x4 max pool -> linear."""

    def __init__(self, num_classes: int, channels: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 8, 3, padding=1)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2a = nn.Conv2d(8, 8, 3, padding=1)
        self.conv2b = nn.Conv2d(8, 8, 3, padding=1)
        self.pool = nn.AdaptiveMaxPool2d(4)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(8 * 4 * 4, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.conv1(x))
        x = x + self.conv2b(torch.relu(self.conv2a(x)))
        return self.head(self.pool(x))


def tiny_net(num_classes: int) -> nn.Module:
    """TinyNet for a 1-channel dataset (Fashion-MNIST)."""
    return TinyNet(num_classes, channels=1)


def tiny_rgb_net(num_classes: int) -> nn.Module:
    """TinyNet that only runs on 3 channels: a grey dataset must be repeated to RGB for it."""
    return TinyNet(num_classes, channels=3)


class DynamicNet(nn.Module):
    """Data-dependent control flow in the top-level forward: torch.fx cannot trace it."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if x.sum() > 0:
            x = torch.relu(x)
        return self.head(x)


def dynamic_net(num_classes: int) -> nn.Module:
    return DynamicNet(num_classes)


class GatedBody(nn.Module):
    """A stack of convs followed by a data-dependent gate. The tracer goes inside it (it holds a
    ModuleList) and fails on the `if`, unless it is declared a separation point (a leaf)."""

    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        if x.mean() > 0:
            x = torch.relu(x)
        return x


class GatedNet(nn.Module):
    def __init__(self, num_classes: int):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, stride=2, padding=1)
        self.body = GatedBody()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.body(self.stem(x))), 1))


def gated_net(num_classes: int) -> nn.Module:
    return GatedNet(num_classes)
