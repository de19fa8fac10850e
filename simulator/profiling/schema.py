"""The per-layer device profile: what each block of a model costs on one device.

A profile is a JSON file (see README, "Profile format"). FLOPs and bytes are per batch of
`batch_size` samples; times are milliseconds per batch (medians over repeats, with the
interquartile range beside them). `source` says whether the times were measured on the
device or derived from its datasheet (then `derivation` records the figures and formula).
"""
import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ..core.errors import UserError
from ..core.typed import INT64_MAX, build_dataclass, read_json, shown

SCHEMA_VERSION = 1
SOURCES = ("measured", "derived")
DEVICE_KINDS = ("cpu", "cuda")
FP32_BYTES = 4  # every tensor and parameter size in a profile is counted in fp32


@dataclass(frozen=True)
class DeviceInfo:
    name: str
    kind: str  # "cpu" or "cuda"
    torch_version: str
    threads: int | None  # torch intra-op threads used while measuring (None for a derived profile)


@dataclass(frozen=True)
class LayerProfile:
    """One named block, per batch."""

    name: str
    fwd_flops: int
    bwd_flops: int
    out_shape: list[int]  # [batch, channels, height, width] or [batch, features]
    out_bytes: int  # fp32 output tensor
    param_bytes: int  # fp32 parameters
    fwd_ms: float
    bwd_ms: float
    step_ms: float  # optimizer step over this block's parameters
    fwd_ms_iqr: float = 0.0
    bwd_ms_iqr: float = 0.0
    saved_bytes: int | None = None  # activations kept for backward that no earlier block keeps (memory.py)
    bwd_peak_bytes: int | None = None  # rise of allocated memory during this block's backward


@dataclass(frozen=True)
class ExitProfile:
    """The early-exit head attached after block `after`, per batch (loss included)."""

    after: str
    fwd_flops: int
    bwd_flops: int
    param_bytes: int
    fwd_ms: float
    bwd_ms: float
    step_ms: float
    fwd_ms_iqr: float = 0.0
    bwd_ms_iqr: float = 0.0
    saved_bytes: int | None = None  # activations the head keeps for backward, beyond the edge blocks'
    bwd_peak_bytes: int | None = None  # rise of allocated memory during the head's backward (loss included)


@dataclass(frozen=True)
class Profile:
    device: DeviceInfo
    model: str
    dataset: str
    input_shape: list[int]  # per sample, [channels, height, width]
    batch_size: int
    source: str  # "measured" or "derived"
    layers: list[LayerProfile]
    exits: list[ExitProfile]
    optimizer_step_ms: float  # whole model, = sum of layers[].step_ms
    raw_sample_bytes: int  # one stored input image, uint8
    label_bytes: int = 1  # one stored label
    input_prep_ms: float = 0.0  # uint8 batch -> normalised float tensor on the device
    width: float = 1.0  # channel width multiplier of the profiled model
    optimizer: str = "sgd(momentum=0.9)"
    repeats: int = 0
    warmup: int = 0
    peak_memory_bytes: int | None = None  # device-reported peak while training one batch
    created: str = ""
    derivation: dict[str, Any] | None = None
    schema_version: int = SCHEMA_VERSION

    # ---- lookups -------------------------------------------------------------------------
    @property
    def layer_names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    def layer_index(self, name: str) -> int:
        return self.layer_names.index(name)

    def exit_after(self, name: str) -> ExitProfile:
        for head in self.exits:
            if head.after == name:
                return head
        raise KeyError(name)

    # ---- JSON ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {"schema_version": data.pop("schema_version"), **data}

    def save(self, path: str | Path) -> None:
        from ..core.files import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def from_dict(cls, data: Any, where: str = "profile") -> "Profile":
        """A profile from parsed JSON: typed (core.typed), then checked (`check_profile`);
        any error is a one-line UserError naming `where` (the file) and the key."""
        if isinstance(data, dict) and "schema_version" not in data:
            raise UserError(f"{where}: missing key schema_version ({SCHEMA_VERSION})")
        if isinstance(data, dict) and data["schema_version"] != SCHEMA_VERSION:
            raise UserError(f"{where}: schema_version {shown(data['schema_version'])} is not supported; "
                            f"valid: {SCHEMA_VERSION} (re-run 'simulate profile')")
        profile = build_dataclass(cls, data, where)
        check_profile(profile, where)
        return profile

    @classmethod
    def load(cls, path: str | Path) -> "Profile":
        return cls.from_dict(read_json(path, "profile"), str(path))


# Longest time of one block's forward, backward or step per batch, in ms: 10^9 ms is 11.6 days.
# Sums of such times stay finite however many blocks and batches; a larger value is a unit error.
MAX_PART_MS = 1e9


def check_profile(profile: Profile, where: str) -> None:
    """What typing cannot say: known source and device kind, and numbers that make sense
    (times, FLOPs and bytes >= 0, times at most MAX_PART_MS, shapes that match the byte counts,
    block names unique, each early exit after a block that is not the last)."""
    if profile.source not in SOURCES:
        raise UserError(f"{where}: source {shown(profile.source)} is not valid; valid: {', '.join(SOURCES)}")
    if profile.device.kind not in DEVICE_KINDS:
        raise UserError(f"{where}: device.kind {shown(profile.device.kind)} is not valid; valid: "
                        f"{', '.join(DEVICE_KINDS)}")
    if profile.device.threads is not None and profile.device.threads < 1:
        raise UserError(f"{where}: device.threads must be >= 1 or null, got {profile.device.threads}")
    if profile.batch_size <= 0:
        raise UserError(f"{where}: batch_size must be a positive integer, got {profile.batch_size}")
    if not profile.width > 0:
        raise UserError(f"{where}: width must be > 0, got {profile.width}")
    for key in ("repeats", "warmup"):
        if getattr(profile, key) < 0:
            raise UserError(f"{where}: {key} must be >= 0, got {getattr(profile, key)}")
    check_shape(profile.input_shape, where, "input_shape")
    if not profile.layers:
        raise UserError(f"{where}: layers is empty")
    check_numbers(profile, where, "")
    names = set()
    for i, layer in enumerate(profile.layers):
        key = f"layers[{i}]"
        check_numbers(layer, where, key + ".")
        if layer.name in names:
            raise UserError(f"{where}: {key}.name {shown(layer.name)} is given twice")
        names.add(layer.name)
        check_shape(layer.out_shape, where, f"{key}.out_shape")
        if layer.out_shape[0] != profile.batch_size:
            raise UserError(f"{where}: {key}.out_shape {shown(layer.out_shape)} must start with the batch size "
                            f"{profile.batch_size}")
        numel = math.prod(layer.out_shape)
        if layer.out_bytes != FP32_BYTES * numel:
            raise UserError(f"{where}: {key}.out_bytes {layer.out_bytes} must be {FP32_BYTES} x the elements of "
                            f"out_shape {shown(layer.out_shape)} = {FP32_BYTES * numel} (fp32)")
    afters = set()
    for i, head in enumerate(profile.exits):
        check_numbers(head, where, f"exits[{i}].")
        if head.after not in profile.layer_names[:-1] or head.after in afters:
            raise UserError(f"{where}: exits[{i}].after {shown(head.after)} must name a block other than the last, "
                            f"once; blocks: {', '.join(profile.layer_names[:-1])}")
        afters.add(head.after)


def check_numbers(obj: Any, where: str, prefix: str) -> None:
    """Times (`_ms`), FLOPs (`_flops`) and sizes (`_bytes`) of one part: >= 0; times <= MAX_PART_MS."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        if not f.name.endswith(("_ms", "_ms_iqr", "_flops", "_bytes")) or value is None:
            continue
        if value < 0:
            raise UserError(f"{where}: {prefix}{f.name} must be a non-negative number, got {shown(value)}")
        if "_ms" in f.name and value > MAX_PART_MS:
            raise UserError(f"{where}: {prefix}{f.name} {value:g} is over the limit of {MAX_PART_MS:g} ms "
                            f"(11.6 days per batch; a larger time is a unit error)")


def check_shape(shape: list[int], where: str, key: str) -> None:
    """A tensor shape: at least one dimension, each >= 1, at most 2^63 - 1 elements in all."""
    if not shape or any(dim < 1 for dim in shape):
        raise UserError(f"{where}: {key} {shown(shape)} must list dimensions of at least 1")
    elements = 1
    for dim in shape:  # stop at the first overflow: a product of a million dimensions would take minutes
        elements *= dim
        if elements > INT64_MAX:
            raise UserError(f"{where}: {key} {shown(shape)} has more than 2^63 elements")
