"""The per-layer device profile: what each block of a model costs on one device.

A profile is a JSON file (see README, "Profile format"). FLOPs and bytes are per batch of
`batch_size` samples; times are milliseconds per batch (medians over repeats, with the
interquartile range beside them). `source` says whether the times were measured on the
device or derived from its datasheet (then `derivation` records the figures and formula).
"""
import json
import math
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ..core.errors import UserError

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
    def from_dict(cls, data: dict[str, Any], where: str = "profile") -> "Profile":
        return _parse(cls, data, where)

    @classmethod
    def load(cls, path: str | Path) -> "Profile":
        path = Path(path)
        if not path.is_file():
            raise UserError(f"{path}: profile file not found")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"{path}: not valid JSON ({exc})") from None
        return cls.from_dict(data, str(path))


_NESTED = {"device": DeviceInfo, "layers": LayerProfile, "exits": ExitProfile}


def _parse(cls: type, data: Any, where: str, key: str = "") -> Any:
    """Build dataclass `cls` from JSON `data`, rejecting unknown and missing keys."""
    prefix = f"{key}." if key else ""
    if not isinstance(data, dict):
        raise UserError(f"{where}: {key or 'top level'} must be an object")
    if cls is Profile and data.get("schema_version") != SCHEMA_VERSION:
        raise UserError(f"{where}: schema_version {data.get('schema_version')!r} is not supported; "
                        f"valid: {SCHEMA_VERSION} (re-run 'simulate profile')")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise UserError(f"{where}: unknown key {prefix}{unknown[0]}; valid: {', '.join(known)}")
    values = {}
    for name, spec in known.items():
        if name not in data:
            if spec.default is not MISSING or spec.default_factory is not MISSING:
                continue
            raise UserError(f"{where}: missing key {prefix}{name}")
        value = data[name]
        if name in _NESTED and cls in (Profile,):
            sub = _NESTED[name]
            if name == "device":
                value = _parse(sub, value, where, prefix + name)
            else:
                if not isinstance(value, list):
                    raise UserError(f"{where}: {prefix}{name} must be a list")
                value = [_parse(sub, item, where, f"{prefix}{name}[{i}]") for i, item in enumerate(value)]
        values[name] = value
    obj = cls(**values)
    _check_values(obj, where, prefix)
    return obj


def _check_values(obj: Any, where: str, prefix: str) -> None:
    if isinstance(obj, DeviceInfo) and obj.kind not in DEVICE_KINDS:
        raise UserError(f"{where}: {prefix}kind {obj.kind!r} is not valid; valid: {', '.join(DEVICE_KINDS)}")
    if isinstance(obj, Profile):
        if obj.source not in SOURCES:
            raise UserError(f"{where}: source {obj.source!r} is not valid; valid: {', '.join(SOURCES)}")
        if not obj.layers:
            raise UserError(f"{where}: layers is empty")
        if not isinstance(obj.batch_size, int) or obj.batch_size <= 0:
            raise UserError(f"{where}: batch_size must be a positive integer")
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.name.endswith(("_ms", "_flops", "_bytes")) and value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise UserError(f"{where}: {prefix}{f.name} must be a non-negative number, got {value!r}")
