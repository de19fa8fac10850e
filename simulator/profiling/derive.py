"""Derive a profile for a device we cannot measure, from a measured one and a datasheet.

FLOPs, shapes and bytes do not depend on the device, so they are copied from the measured
profile; times are a roofline estimate from the target's published peaks:

    t_ms = 1000 * max(flops / (peak_flops * compute_efficiency),
                      bytes_moved / (memory_bandwidth_bytes_s * memory_efficiency))
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
"""
import json
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from ..core.errors import UserError
from .schema import FP32_BYTES, DeviceInfo, Profile

DATASHEET_KEYS = ("name", "kind", "peak_flops", "memory_bandwidth_bytes_s", "memory_mb", "compute_efficiency",
                  "memory_efficiency", "overhead_ms_per_kernel_group", "source")


@dataclass(frozen=True)
class Datasheet:
    key: str
    name: str
    kind: str
    peak_flops: float  # FLOP/s, dense FP32
    memory_bandwidth_bytes_s: float
    memory_mb: float
    compute_efficiency: float  # fraction of peak_flops reached
    memory_efficiency: float  # fraction of bandwidth reached
    overhead_ms_per_kernel_group: float  # fixed cost per forward / backward / step of one part
    source: str

    def roofline_ms(self, flops: float, bytes_moved: float) -> float:
        compute_s = flops / (self.peak_flops * self.compute_efficiency)
        memory_s = bytes_moved / (self.memory_bandwidth_bytes_s * self.memory_efficiency)
        return 1e3 * max(compute_s, memory_s) + self.overhead_ms_per_kernel_group


def load_datasheets(path: str | Path) -> dict[str, Datasheet]:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: datasheet file not found") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    sheets = {}
    for key, entry in data.get("devices", {}).items():
        missing = [k for k in DATASHEET_KEYS if k not in entry]
        unknown = sorted(set(entry) - set(DATASHEET_KEYS))
        if missing or unknown:
            raise UserError(f"{path}: devices.{key}: " + (f"missing key {missing[0]}" if missing
                                                          else f"unknown key {unknown[0]}")
                            + f"; keys: {', '.join(DATASHEET_KEYS)}")
        sheets[key] = Datasheet(key=key, **entry)
    return sheets


def derive_profile(measured: Profile, sheet: Datasheet, from_path: str = "") -> Profile:
    """A `source: derived` copy of `measured` with roofline times for `sheet`'s device."""
    batch = measured.batch_size
    in_bytes = batch * FP32_BYTES
    for dim in measured.input_shape:
        in_bytes *= dim

    def fwd_bwd_ms(fwd_flops: int, bwd_flops: int, inp: int, out: int, params: int) -> tuple[float, float]:
        return (sheet.roofline_ms(fwd_flops, inp + out + params),
                sheet.roofline_ms(bwd_flops, 2 * (inp + out) + 2 * params))

    layers, layer_in = [], {}
    for layer in measured.layers:
        layer_in[layer.name] = in_bytes
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
    return replace(
        measured, source="derived", layers=layers, exits=exits,
        device=DeviceInfo(name=sheet.name, kind=sheet.kind, torch_version=measured.device.torch_version, threads=None),
        optimizer_step_ms=sum(layer.step_ms for layer in layers), input_prep_ms=prep_ms,
        repeats=0, warmup=0, peak_memory_bytes=None,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        derivation={"from_profile": from_path, "from_device": measured.device.name,
                    "datasheet": {k: getattr(sheet, k) for k in ("key",) + DATASHEET_KEYS},
                    "formula": "t_ms = 1000*max(flops/(peak_flops*compute_efficiency), "
                               "bytes_moved/(memory_bandwidth_bytes_s*memory_efficiency)) "
                               "+ overhead_ms_per_kernel_group; see simulator/derive.py"},
    )
