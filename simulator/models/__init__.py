"""Model registry: the paper's splittable VGG-16 and ResNet-18, torchvision's classifiers and
users' own networks (registry.py), at any input size."""
from ..core.errors import UserError
from ..data.specs import get_dataset_spec
from .blocks import BlockNet, FeatureInfo, Stage
from .early_exit import early_exit_head, early_exit_param_count
from .registry import PAPER_MODELS, build_any, known_names, model_kind, model_slug
from .split import SplitModel, check_split_point, split


def build_model(name: str, dataset: str, width: float = 1.0, input_size: int | None = None,
                points: tuple[str, ...] | None = None) -> BlockNet:
    """The model `name` for `dataset`'s class count and channels, at `input_size` x `input_size`
    pixels (default: the dataset's native size). `width` scales the paper's models only;
    `points` declares the separation points of a model that cannot be traced (graph.py)."""
    kind = model_kind(name)
    if not width > 0:
        raise UserError(f"width multiplier must be > 0, got {width}")
    spec = get_dataset_spec(dataset)
    shape = spec.shape_at(input_size)
    if kind == "paper":
        if points:
            raise UserError(f"{name}: its separation points are fixed ({name} is hand-split); leave out points")
        return PAPER_MODELS[name](shape, spec.num_classes, width)
    return build_any(name, shape, spec.num_classes, points)


__all__ = ["PAPER_MODELS", "BlockNet", "FeatureInfo", "SplitModel", "Stage", "build_model", "check_split_point",
           "early_exit_head", "early_exit_param_count", "known_names", "model_kind", "model_slug", "split"]
