"""The per-batch computations of each worker, shared by the workers and `part_steps`.

Each is what `training.MethodTrainer.step` computes, cut where the network cuts it; bodies
are the bytes on the wire (`payloads`). Inputs are already prepared (normalised float) except
for full_cloud, whose cloud step decodes and prepares the raw uint8 batch itself.
"""
import torch
from torch import nn

from ..models import SplitModel
from .payloads import (
    decode_raw,
    decode_tensor,
    decode_with_labels,
    encode_tensor,
    encode_with_labels,
)


def edge_hierarchical(parts: SplitModel, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                      codec: str) -> torch.Tensor:
    """Edge blocks + early exit train on the exit's loss; returns the features (+ labels) body."""
    optimizer.zero_grad(set_to_none=True)
    features = parts.edge(x)
    nn.functional.cross_entropy(parts.early_exit(features), y).backward()
    optimizer.step()
    return encode_with_labels(codec, features, y).cpu()


def edge_split_forward(parts: SplitModel, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                       codec: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Split learning before the uplink: (activations, with their graph; activations + labels body)."""
    optimizer.zero_grad(set_to_none=True)
    activations = parts.edge(x)
    return activations, encode_with_labels(codec, activations, y).cpu()


def edge_split_backward(optimizer: torch.optim.Optimizer, activations: torch.Tensor, gradient_body: torch.Tensor,
                        codec: str) -> None:
    """Split learning after the downlink: the gradient continues the backward; the edge steps."""
    gradient = decode_tensor(codec, gradient_body, tuple(activations.shape)).to(activations.device)
    activations.backward(gradient)
    optimizer.step()


def cloud_features(parts: SplitModel, optimizer: torch.optim.Optimizer, body: torch.Tensor, codec: str,
                   shape: tuple[int, ...], device: torch.device, send_gradient: bool) -> torch.Tensor | None:
    """The cloud part trains on received features; in split learning returns the gradient body."""
    features, labels = decode_with_labels(codec, body, shape)
    features = features.to(device).requires_grad_(send_gradient)
    optimizer.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(parts.cloud(features), labels.to(device)).backward()
    optimizer.step()
    return encode_tensor(codec, features.grad).cpu() if send_gradient else None


def cloud_raw(parts: SplitModel, optimizer: torch.optim.Optimizer, body: torch.Tensor, input_shape: tuple[int, ...],
              affine: tuple[torch.Tensor, torch.Tensor], device: torch.device) -> None:
    """Full cloud: prepare the raw batch (uint8 -> normalised float) and train the whole model."""
    images, labels = decode_raw(body, input_shape)
    scale, shift = affine
    x = images.to(device).to(torch.float32).mul_(scale).add_(shift)
    optimizer.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(parts.cloud(parts.edge(x)), labels.to(device)).backward()
    optimizer.step()
