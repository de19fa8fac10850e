"""Derive a profile for a device we cannot measure, from a measured one and a datasheet.

FLOPs, shapes and bytes do not depend on the device, so they are copied from the measured
profile; times are a roofline estimate from the target's published peaks:

    t_ms = 1000 * max(flops / (peak_flops_per_s * compute_efficiency),
                      bytes_moved / (memory_bandwidth_bytes_per_s * memory_efficiency))
           + overhead_ms_per_kernel_group

with, for a part whose input tensor has `in_bytes`, output `out_bytes` and parameters
`param_bytes` (all fp32, per batch):

    forward   bytes_moved = in_bytes + out_bytes + param_bytes
    backward  bytes_moved = 2 * (in_bytes + out_bytes) + 2 * param_bytes
              (read the saved input and the output gradient, write the input gradient;
               read the weights, write their gradients)
    SGD step  bytes_moved = 5 * param_bytes  (read weight, gradient, momentum; write weight,
              momentum), no FLOP term
    input prep bytes_moved = raw uint8 batch + its fp32 copy

The early-exit head's output is its logits (batch x classes x 4 bytes).

At another batch size N (the measured one is B, r = N / B) the measured counts are first
rescaled (`scaled_to_batch`), then the times are derived from them as above.
"""
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from ..core.errors import UserError
from ..core.typed import NOT_IN_FILE, build_dataclass, key_text, read_json, shown
from .schema import (
    DEVICE_KINDS,
    FP32_BYTES,
    MAX_PART_MS,
    DeviceInfo,
    Profile,
    check_profile,
)

# The shipped datasheets: package data, so they are found from an installed wheel too.
DEFAULT_DATASHEETS = Path(__file__).with_name("datasheets.json")
DATASHEET_KEYS = ("name", "kind", "peak_flops_per_s", "memory_bandwidth_bytes_per_s", "memory_mib",
                  "compute_efficiency", "memory_efficiency", "overhead_ms_per_kernel_group", "source")


@dataclass(frozen=True)
class Datasheet:
    """One device of the datasheet file (`devices.KEY`): its published peaks and the efficiency
    assumed for training; `key` is its name in the file (`simulate profile --derive KEY`)."""

    name: str
    kind: str  # "cpu" or "cuda"
    peak_flops_per_s: float  # FLOP/s, dense FP32
    memory_bandwidth_bytes_per_s: float
    memory_mib: float
    compute_efficiency: float  # fraction of peak_flops_per_s reached, (0, 1]
    memory_efficiency: float  # fraction of bandwidth reached, (0, 1]
    overhead_ms_per_kernel_group: float  # fixed cost per forward / backward / step of one part
    source: str
    key: str = field(default="", metadata=NOT_IN_FILE)

    def roofline_ms(self, flops: float, bytes_moved: float) -> float:
        compute_s = flops / (self.peak_flops_per_s * self.compute_efficiency)
        memory_s = bytes_moved / (self.memory_bandwidth_bytes_per_s * self.memory_efficiency)
        return 1e3 * max(compute_s, memory_s) + self.overhead_ms_per_kernel_group


@dataclass(frozen=True)
class DatasheetFile:
    """The datasheet JSON file (simulator/profiling/datasheets.json)."""

    devices: dict[str, Datasheet]
    schema_version: int = 1
    about: str = ""  # what the figures are and where they come from


def load_datasheets(path: str | Path) -> dict[str, Datasheet]:
    """Every device of a datasheet file by key, typed (core.typed) and checked (`check_datasheet`)."""
    file = str(path)
    sheets = build_dataclass(DatasheetFile, read_json(path, "datasheet"), file)
    if sheets.schema_version != 1:
        raise UserError(f"{file}: schema_version {sheets.schema_version} is not supported; valid: 1")
    for key, sheet in sheets.devices.items():
        check_datasheet(sheet, file, f"devices.{key_text(key)}")
    return {key: replace(sheet, key=key) for key, sheet in sheets.devices.items()}


def check_datasheet(sheet: Datasheet, file: str, key: str) -> None:
    """Known device kind; positive peaks; efficiencies in (0, 1]; peak x efficiency >= 1 per
    second, so that every roofline time stays finite; overhead in [0, MAX_PART_MS]."""
    if sheet.kind not in DEVICE_KINDS:
        raise UserError(f"{file}: {key}.kind {shown(sheet.kind)} is not valid; valid: {', '.join(DEVICE_KINDS)}")
    for peak, efficiency in (("peak_flops_per_s", "compute_efficiency"),
                             ("memory_bandwidth_bytes_per_s", "memory_efficiency")):
        if not 0 < getattr(sheet, efficiency) <= 1:
            raise UserError(f"{file}: {key}.{efficiency} must be in (0, 1] (a fraction of {peak}), "
                            f"got {getattr(sheet, efficiency):g}")
        if not getattr(sheet, peak) * getattr(sheet, efficiency) >= 1:
            raise UserError(f"{file}: {key}.{peak} {getattr(sheet, peak):g} x {efficiency} "
                            f"{getattr(sheet, efficiency):g} must be at least 1 per second")
    if not sheet.memory_mib > 0:
        raise UserError(f"{file}: {key}.memory_mib must be > 0, got {sheet.memory_mib:g}")
    if not 0 <= sheet.overhead_ms_per_kernel_group <= MAX_PART_MS:
        raise UserError(f"{file}: {key}.overhead_ms_per_kernel_group must be in [0, {MAX_PART_MS:g}] ms, "
                        f"got {sheet.overhead_ms_per_kernel_group:g}")


def scaled_to_batch(measured: Profile, batch_size: int) -> Profile:
    """The counts of `measured` (batch B) at `batch_size` N samples per batch, r = N / B:

        fwd_flops, bwd_flops       x r  (convolutions and matrix products are per sample: exact)
        out_shape[0] = N, out_bytes x r  (exact)
        saved_bytes                x r  (activations; batch norm's per-channel statistics, a few
                                         KiB per block, are scaled too)
        bwd_peak_bytes             P + (bwd_peak_bytes - P) x r,  P = min(bwd_peak_bytes, param_bytes):
                                   the weight gradients allocated during backward do not grow with
                                   the batch, the activation gradients do (VGG-16 and ResNet-18 on
                                   CIFAR-10 measured here at 16, 32 and 64: within 9 MiB per part
                                   from 32 to 64, where scaling the whole rise is off by up to 36 MiB)
        param_bytes, raw_sample_bytes, label_bytes  unchanged

    Counts are rounded to whole bytes and FLOPs. Times are left as measured (stale): only
    `derive_profile`, which replaces every time, should use the result.
    """
    if batch_size < 1:
        raise UserError(f"batch size must be a positive integer, got {batch_size}")
    old = measured.batch_size

    def scaled(count: int | None) -> int | None:  # count x N / B, rounded half up
        return None if count is None else (2 * count * batch_size + old) // (2 * old)

    def peak(rise: int | None, param_bytes: int) -> int | None:
        if rise is None:
            return None
        weights = min(rise, param_bytes)
        return weights + scaled(rise - weights)

    layers = [replace(layer, fwd_flops=scaled(layer.fwd_flops), bwd_flops=scaled(layer.bwd_flops),
                      out_shape=[batch_size, *layer.out_shape[1:]], out_bytes=scaled(layer.out_bytes),
                      saved_bytes=scaled(layer.saved_bytes), bwd_peak_bytes=peak(layer.bwd_peak_bytes, layer.param_bytes))
              for layer in measured.layers]
    exits = [replace(head, fwd_flops=scaled(head.fwd_flops), bwd_flops=scaled(head.bwd_flops),
                     saved_bytes=scaled(head.saved_bytes), bwd_peak_bytes=peak(head.bwd_peak_bytes, head.param_bytes))
             for head in measured.exits]
    return replace(measured, batch_size=batch_size, layers=layers, exits=exits, peak_memory_bytes=None)


def derive_profile(measured: Profile, sheet: Datasheet, from_path: str = "", batch_size: int | None = None) -> Profile:
    """A `source: derived` copy of `measured` with roofline times for `sheet`'s device, at
    `batch_size` samples per batch (default: the measured one; else `scaled_to_batch`)."""
    rescale = {}
    if batch_size is not None and batch_size != measured.batch_size:
        rescale = {"batch_size_from": measured.batch_size,
                   "batch_rescale": "FLOPs, out_bytes, saved_bytes x batch_size/batch_size_from; bwd_peak_bytes: "
                                    "its part above param_bytes likewise; see simulator/profiling/derive.py"}
        measured = scaled_to_batch(measured, batch_size)
    batch = measured.batch_size
    in_bytes = batch * FP32_BYTES
    for dim in measured.input_shape:
        in_bytes *= dim

    def fwd_bwd_ms(fwd_flops: int, bwd_flops: int, inp: int, out: int, params: int) -> tuple[float, float]:
        return (sheet.roofline_ms(fwd_flops, inp + out + params),
                sheet.roofline_ms(bwd_flops, 2 * (inp + out) + 2 * params))

    layers = []
    for layer in measured.layers:
        fwd_ms, bwd_ms = fwd_bwd_ms(layer.fwd_flops, layer.bwd_flops, in_bytes, layer.out_bytes, layer.param_bytes)
        step_ms = sheet.roofline_ms(0, 5 * layer.param_bytes)
        layers.append(replace(layer, fwd_ms=fwd_ms, bwd_ms=bwd_ms, step_ms=step_ms, fwd_ms_iqr=0.0, bwd_ms_iqr=0.0))
        in_bytes = layer.out_bytes
    logits_bytes = measured.layers[-1].out_bytes
    exits = []
    for head in measured.exits:
        inp = measured.layers[measured.layer_index(head.after)].out_bytes
        fwd_ms, bwd_ms = fwd_bwd_ms(head.fwd_flops, head.bwd_flops, inp, logits_bytes, head.param_bytes)
        exits.append(replace(head, fwd_ms=fwd_ms, bwd_ms=bwd_ms, step_ms=sheet.roofline_ms(0, 5 * head.param_bytes),
                             fwd_ms_iqr=0.0, bwd_ms_iqr=0.0))
    raw_batch = batch * measured.raw_sample_bytes
    prep_ms = sheet.roofline_ms(0, raw_batch + raw_batch * FP32_BYTES)
    derived = replace(
        measured, source="derived", layers=layers, exits=exits,
        device=DeviceInfo(name=sheet.name, kind=sheet.kind, torch_version=measured.device.torch_version, threads=None),
        optimizer_step_ms=sum(layer.step_ms for layer in layers), input_prep_ms=prep_ms,
        repeats=0, warmup=0, peak_memory_bytes=None,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        derivation={"from_profile": from_path, "from_device": measured.device.name,
                    "datasheet": {k: getattr(sheet, k) for k in ("key",) + DATASHEET_KEYS},
                    "formula": "t_ms = 1000*max(flops/(peak_flops_per_s*compute_efficiency), "
                               "bytes_moved/(memory_bandwidth_bytes_per_s*memory_efficiency)) "
                               "+ overhead_ms_per_kernel_group; see simulator/profiling/derive.py",
                    **rescale},
    )
    check_profile(derived, f"{from_path or 'profile'} derived for {sheet.key or sheet.name}")  # saved only if it loads
    return derived
