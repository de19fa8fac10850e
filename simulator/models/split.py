"""Cutting a BlockNet at a separation point.

The edge part holds the blocks up to and including the point, the cloud part the rest; both
share the original modules (no copies), so edge followed by cloud is exactly the unsplit
model. The early-exit head is a new module sized for the feature map at the point.
"""
from dataclasses import dataclass

from torch import nn

from ..core.errors import UserError
from .blocks import BlockNet, Stage
from .early_exit import early_exit_head


@dataclass
class SplitModel:
    point: str
    edge: Stage
    cloud: Stage
    early_exit: nn.Module

    def modules(self) -> dict[str, nn.Module]:
        return {"edge": self.edge, "cloud": self.cloud, "early_exit": self.early_exit}


def check_split_point(model: BlockNet, point: str) -> None:
    if point not in model.split_points:
        raise UserError(f"{model.arch} has no separation point {point!r}; valid: {', '.join(model.split_points)}")


def split(model: BlockNet, point: str) -> SplitModel:
    check_split_point(model, point)
    names = model.block_names
    cut = names.index(point) + 1
    edge = Stage({name: model.block(name) for name in names[:cut]})
    cloud = Stage({name: model.block(name) for name in names[cut:]})
    head = early_exit_head(model.feature(point), model.num_classes, model.width)
    return SplitModel(point, edge, cloud, head)
