"""Choosing the torch device for measuring or training."""
import torch

from ..core.errors import UserError

DEVICE_NAMES = ("cpu", "cuda", "auto")


def resolve_device(name: str, where: str) -> torch.device:
    """`cpu`, `cuda` or `auto` (cuda when available) as a torch.device.

    `where` names the flag or key for the error message, e.g. "--device" or "accuracy.device".
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"{where} cuda: no CUDA device is available on this machine; valid here: cpu, auto")
        return torch.device("cuda")
    raise UserError(f"{where}: unknown device {name!r}; valid: {', '.join(DEVICE_NAMES)}")
