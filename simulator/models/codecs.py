"""Link codecs: how a tensor is encoded for the network, and what it costs in bytes.

    fp32  lossless, 4 bytes per element
    fp16  2 bytes per element (IEEE half precision): relative error <= 2**-11 within
          +-65504; smaller magnitudes than 6e-8 flush to zero
    int8  1 byte per element plus an 8-byte header (fp32 scale and minimum): per-tensor
          affine quantisation, scale = (max - min) / 255, q = round((x - min) / scale) - 128,
          so min maps to -128 and max to 127; x' = (q + 128) * scale + min;
          absolute error <= scale / 2

`encoded_bytes` is what the simulation charges on the link; `encode` produces exactly that
many bytes (`Encoded.nbytes`), so the charge is what a real link would carry.
"""
from dataclasses import dataclass

import torch

from ..core.wire import CODEC_HEADER_BYTES, CODECS, check_codec, encoded_bytes  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class Encoded:
    """A tensor as it travels: its payload and, for int8, the quantisation parameters."""

    codec: str
    payload: torch.Tensor
    scale: float = 1.0
    minimum: float = 0.0

    @property
    def nbytes(self) -> int:
        return self.payload.numel() * self.payload.element_size() + CODEC_HEADER_BYTES[self.codec]


def encode(codec: str, x: torch.Tensor) -> Encoded:
    check_codec(codec)
    x = x.detach()
    if codec == "fp32":
        return Encoded(codec, x.float())
    if codec == "fp16":
        return Encoded(codec, x.half())
    low, high = x.min().item(), x.max().item()
    scale = (high - low) / 255 or 1.0
    q = torch.clamp(torch.round((x - low) / scale) - 128, -128, 127).to(torch.int8)
    return Encoded(codec, q, scale, low)


def decode(encoded: Encoded) -> torch.Tensor:
    if encoded.codec == "int8":
        return (encoded.payload.float() + 128) * encoded.scale + encoded.minimum
    return encoded.payload.float()


def roundtrip(codec: str, x: torch.Tensor) -> torch.Tensor:
    """What the receiver gets: decode(encode(x)), detached from x's graph."""
    if codec == "fp32":
        return x.detach().clone()
    return decode(encode(codec, x))
