"""Link codecs: their names and what a tensor costs on the wire in each, in bytes.

    fp32  4 bytes per element          fp16  2 bytes per element
    int8  1 byte per element plus an 8-byte header (fp32 scale and minimum)

Plain arithmetic, so the cost model charges exactly what `models.codecs.encode` produces
without importing torch.
"""
from .errors import UserError

CODEC_ELEMENT_BYTES = {"fp32": 4, "fp16": 2, "int8": 1}
CODEC_HEADER_BYTES = {"fp32": 0, "fp16": 0, "int8": 8}
CODECS = tuple(CODEC_ELEMENT_BYTES)


def check_codec(codec: str) -> None:
    if codec not in CODEC_ELEMENT_BYTES:
        raise UserError(f"unknown link codec {codec!r}; valid: {', '.join(CODECS)}")


def encoded_bytes(codec: str, numel: int) -> int:
    """Bytes on the wire for one tensor of `numel` elements."""
    check_codec(codec)
    return numel * CODEC_ELEMENT_BYTES[codec] + CODEC_HEADER_BYTES[codec]
