"""Model registry: splittable VGG-16 and ResNet-18 for every supported dataset."""
from typing import Callable

from ..core.errors import UserError
from ..data.specs import get_dataset_spec
from .blocks import BlockNet, FeatureInfo, Stage
from .early_exit import early_exit_head, early_exit_param_count
from .resnet import resnet18
from .split import SplitModel, check_split_point, split
from .vgg import vgg16

MODELS: dict[str, Callable[..., BlockNet]] = {"vgg16": vgg16, "resnet18": resnet18}


def build_model(name: str, dataset: str, width: float = 1.0) -> BlockNet:
    """The model `name` sized for `dataset`'s input shape and class count."""
    if name not in MODELS:
        raise UserError(f"unknown model {name!r}; valid: {', '.join(MODELS)}")
    if not width > 0:
        raise UserError(f"width multiplier must be > 0, got {width}")
    spec = get_dataset_spec(dataset)
    return MODELS[name](spec.input_shape, spec.num_classes, width)


__all__ = ["MODELS", "BlockNet", "FeatureInfo", "SplitModel", "Stage", "build_model", "check_split_point",
           "early_exit_head", "early_exit_param_count", "split"]
