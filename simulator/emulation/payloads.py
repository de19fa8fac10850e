"""What goes on the wire, byte for byte the bytes the simulator charges.

    features / activations   codec payload (numel x 4, 2 or 1 bytes) + int8 header (fp32
                             scale, fp32 minimum: 8 bytes) + labels (1 byte each)
                             = codecs.encoded_bytes(codec, numel) + B * label_bytes
    gradient                 codec payload (+ int8 header) = codecs.encoded_bytes(codec, numel)
    raw batch (full_cloud)   uint8 pixels + labels = B * (raw_sample_bytes + label_bytes)

Each body is one flat uint8 tensor; `decode_*` rebuilds the tensors on the receiver, which
knows the shapes from the model both sides build.
"""
import math

import torch

from ..models.codecs import CODEC_HEADER_BYTES, Encoded, decode, encode, encoded_bytes

CODEC_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "int8": torch.int8}


def _flat_bytes(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.contiguous().view(-1).view(torch.uint8)


def encode_tensor(codec: str, x: torch.Tensor) -> torch.Tensor:
    """x through the link codec, as encoded_bytes(codec, x.numel()) bytes."""
    encoded = encode(codec, x)
    parts = [_flat_bytes(encoded.payload)]
    if CODEC_HEADER_BYTES[codec]:
        parts.append(_flat_bytes(torch.tensor([encoded.scale, encoded.minimum], dtype=torch.float32)))
    body = torch.cat(parts)
    assert body.numel() == encoded_bytes(codec, x.numel())
    return body


def decode_tensor(codec: str, body: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """The receiver's float32 tensor of `shape` from `encode_tensor`'s bytes."""
    numel = math.prod(shape)
    n = encoded_bytes(codec, numel) - CODEC_HEADER_BYTES[codec]
    payload = body[:n].view(CODEC_DTYPES[codec]).view(shape)
    scale = minimum = 0.0
    if CODEC_HEADER_BYTES[codec]:
        scale, minimum = body[n:n + 8].view(torch.float32).tolist()
    return decode(Encoded(codec, payload, scale, minimum))


def encode_with_labels(codec: str, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Features (or activations) plus their labels, one byte each."""
    return torch.cat([encode_tensor(codec, x), labels.to(torch.uint8)])


def decode_with_labels(codec: str, body: torch.Tensor, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    batch = shape[0]
    return decode_tensor(codec, body[:-batch], shape), body[-batch:].to(torch.int64)


def encode_raw(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """A raw uint8 batch and its labels (full_cloud's upload)."""
    return torch.cat([_flat_bytes(images), labels.to(torch.uint8)])


def decode_raw(body: torch.Tensor, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    batch = shape[0]
    return body[:-batch].view(shape), body[-batch:].to(torch.int64)
