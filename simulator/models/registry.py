"""Which networks `workload.models[].name` and `--model` accept, and how each is built.

- `vgg16`, `resnet18`: the paper's two models (vgg.py, resnet.py), hand-split into named blocks,
  with the channel width multiplier.
- any classification model of torchvision's registry (`mobilenet_v2`, `resnet50`, `vit_b_16`,
  ...; `torchvision.models.list_models(module=torchvision.models)`), built without pretrained
  weights for the dataset's class count. torchvision's own `resnet18` and `vgg16` are
  `torchvision.models:resnet18` and `torchvision.models:vgg16`.
- a user's network as `package.module:factory`: `factory(num_classes)` returns an nn.Module.
  The module must be importable (installed, or on PYTHONPATH / the current folder).

All but the paper's two are cut automatically (graph.py); they ignore the width multiplier.
torchvision's models take 3-channel images: a 1-channel dataset (Fashion-MNIST) is repeated
to 3 channels inside the first part, so the raw sample stays 1 channel. A user's model gets
the dataset's channels, or the same repeat when it only runs on 3.
"""
import difflib
import functools
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from torch import nn

from ..core.errors import UserError
from ..core.names import PAPER_MODEL_NAMES
from .blocks import BlockNet
from .graph import traced_parts
from .resnet import resnet18
from .vgg import vgg16

PAPER_MODELS: dict[str, Callable[..., BlockNet]] = {"vgg16": vgg16, "resnet18": resnet18}
assert tuple(PAPER_MODELS) == PAPER_MODEL_NAMES
TORCHVISION_PREFIX = "torchvision.models:"


@functools.cache
def torchvision_models() -> tuple[str, ...]:
    import torchvision

    return tuple(torchvision.models.list_models(module=torchvision.models))


def model_slug(model: str) -> str:
    """A model name as it appears in file names: `package.module:factory` -> package.module.factory."""
    return model.replace(":", ".").replace("/", ".")


def is_import_path(name: str) -> bool:
    return ":" in name


def model_kind(name: str) -> str:
    """'paper', 'torchvision' or 'import'; a UserError listing close matches for an unknown name."""
    if name in PAPER_MODELS:
        return "paper"
    if name.startswith(TORCHVISION_PREFIX) and name[len(TORCHVISION_PREFIX):] in torchvision_models():
        return "torchvision"
    if is_import_path(name):
        return "import"
    if name in torchvision_models():
        return "torchvision"
    close = difflib.get_close_matches(name, known_names(), n=5, cutoff=0.5)
    hint = f"close matches: {', '.join(close)}; valid" if close else "valid"
    raise UserError(f"unknown model {name!r}; {hint}: {', '.join(PAPER_MODELS)} (the paper's), a name of "
                    f"torchvision's registry (simulate models --list) or your own as package.module:factory")


def known_names() -> list[str]:
    return list(PAPER_MODELS) + [n for n in torchvision_models() if n not in PAPER_MODELS]


def load_factory(path: str) -> Callable[..., nn.Module]:
    """`package.module:factory` imported (the current folder is searched too, as `python -m` does)."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise UserError(f"model {path!r}: an import path is package.module:factory")
    if str(Path.cwd()) not in sys.path and "" not in sys.path:
        sys.path.append(str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any error importing the user's module
        raise UserError(f"model {path!r}: cannot import {module_name} ({type(exc).__name__}: {exc}); it must be "
                        f"installed or on PYTHONPATH") from None
    factory = module
    for part in attr.split("."):
        factory = getattr(factory, part, None)
        if factory is None:
            raise UserError(f"model {path!r}: {module_name} has no {attr}")
    if not callable(factory):
        raise UserError(f"model {path!r}: {attr} is not callable (a factory taking the class count)")
    return factory


def instantiate(name: str, kind: str, num_classes: int, size: int) -> nn.Module:
    if kind == "torchvision":
        import torchvision

        arch = name.removeprefix(TORCHVISION_PREFIX)
        extra = {"image_size": size} if arch.startswith("vit_") else {}
        if arch in ("googlenet", "inception_v3"):
            extra = {"aux_logits": False, "init_weights": True}
        try:
            return torchvision.models.get_model(arch, weights=None, num_classes=num_classes, **extra)
        except Exception as exc:  # noqa: BLE001 - torchvision asserts, or raises ValueError / TypeError, on a bad size
            raise UserError(f"model {name}: torchvision cannot build it at {size}x{size} for {num_classes} classes "
                            f"({type(exc).__name__}: {exc})") from None
    factory = load_factory(name)
    try:
        model = factory(num_classes)
    except Exception as exc:  # noqa: BLE001 - any error in the user's factory
        raise UserError(f"model {name!r}: the factory raised {type(exc).__name__}: {exc}") from None
    if not isinstance(model, nn.Module):
        raise UserError(f"model {name!r}: the factory returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def build_any(name: str, input_shape: tuple[int, int, int], num_classes: int,
              points: Sequence[str] | None = None) -> BlockNet:
    """A torchvision or user model as a BlockNet of traced parts (graph.py)."""
    kind = model_kind(name)
    channels, size, _ = input_shape
    model = instantiate(name, kind, num_classes, size)
    # torchvision's models take 3 channels; a user's model gets the dataset's, then 3 if that fails
    tries = [3] if kind == "torchvision" else list(dict.fromkeys([channels, 3]))
    error = None
    for model_channels in tries:
        try:
            parts, _ = traced_parts(model, input_shape, name, points,
                                    repeat_to=model_channels if model_channels != channels else None)
            return BlockNet(name, parts, input_shape, num_classes, 1.0, source=kind)
        except UserError as exc:
            error = exc
            if "does not run through it" not in str(exc):
                raise
    raise error


