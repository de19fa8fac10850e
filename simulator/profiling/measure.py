"""Measure a per-layer profile on the machine this runs on.

Needs only torch and this package, so it runs on an edge board or a cloud GPU as well as
here. For every named block it counts forward and backward FLOPs with
`torch.utils.flop_counter.FlopCounterMode` (convolutions and matrix products; batch norm,
ReLU and pooling count as 0), times forward, backward and an SGD step, and records the
output shape and bytes. Then the same for the early-exit head at every separation point.
For the edge memory model it records what each part keeps for backward (`saved_bytes`, one
chained forward with saved-tensor hooks) and how far allocated memory rises during its
backward (`bwd_peak_bytes`); `memory_probe` says how both are measured.

Timing: `warmup` untimed iterations, then `repeats` timed ones; the profile keeps the
median and the interquartile range. On CUDA every interval is closed by
`torch.cuda.synchronize()`. Blocks run in training mode (batch norm uses batch statistics),
as in training. The first block's input needs no gradient (it is data), so its backward is
cheaper; every later block computes the gradient with respect to its input too.
"""
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

from ..core.errors import UserError
from ..core.progress import progress_bar
from ..data.specs import get_dataset_spec
from ..models import build_model, early_exit_head
from ..models.device import resolve_device
from ..training.optimizer import PROFILED, sgd
from .memory_probe import SavedTensorMeter, allocation_rise_bytes
from .schema import FP32_BYTES, DeviceInfo, ExitProfile, LayerProfile, Profile


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name} ({os.cpu_count()} cores)"


class Timer:
    """Median and interquartile range of a callable's wall time in milliseconds."""

    def __init__(self, device: torch.device, warmup: int, repeats: int):
        self.device, self.warmup, self.repeats = device, warmup, repeats

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def measure(self, setup: Callable[[], object], run: Callable[[object], None]) -> tuple[float, float]:
        """Time `run(setup())`; `setup` is untimed (e.g. building the graph to backward)."""
        samples = []
        for index in range(self.warmup + self.repeats):
            state = setup()
            self.sync()
            start = time.perf_counter()
            run(state)
            self.sync()
            if index >= self.warmup:
                samples.append((time.perf_counter() - start) * 1e3)
        return summarise(samples)


def summarise(samples_ms: list[float]) -> tuple[float, float]:
    """(median, interquartile range) of the samples."""
    if len(samples_ms) < 2:
        return samples_ms[0], 0.0
    q1, _, q3 = statistics.quantiles(samples_ms, n=4, method="inclusive")
    return statistics.median(samples_ms), q3 - q1


def conv_backward_flops(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
                        _output_padding, _groups, output_mask, out_shape=None, **kwargs) -> int:
    """A convolution's backward: the input gradient and the weight gradient each cost what its
    forward costs. torch's own formula (2.14) counts the weight gradient as if the convolution
    were not grouped, `groups` times too high: 17x the forward, not 2x, for a depthwise 3x3 conv
    (MobileNet, EfficientNet)."""
    forward = conv_flop_count(list(x_shape), list(w_shape), list(grad_out_shape), transposed=transposed)
    return forward * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


FLOP_FORMULAS = {torch.ops.aten.convolution_backward: conv_backward_flops}


def flop_counter() -> FlopCounterMode:
    return FlopCounterMode(display=False, custom_mapping=FLOP_FORMULAS)


def count_flops(fn: Callable[[], object]) -> int:
    with flop_counter() as counter:
        fn()
    return int(counter.get_total_flops())


def param_bytes(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters()) * FP32_BYTES


def make_optimizer(module: nn.Module) -> torch.optim.Optimizer:
    """The optimizer whose step is timed: SGD with momentum 0.9 and weight decay 5e-4."""
    return sgd(module.parameters(), PROFILED)


def profile_module(module: nn.Module, x: torch.Tensor, timer: Timer,
                   loss_fn: Callable[[torch.Tensor], torch.Tensor] | None) -> dict:
    """FLOPs, output and latencies of one module on input `x` (a leaf tensor).

    Backward starts from `loss_fn(output)` when given (a classifier), else from a random
    gradient of the output's shape (an inner block).
    """
    def forward() -> tuple[torch.Tensor, torch.Tensor]:
        out = module(x)
        return out, (out if loss_fn is None else loss_fn(out))

    def backward_of(target: torch.Tensor) -> None:
        target.backward(grad if loss_fn is None else None)

    with flop_counter() as counter:  # one untimed forward: the output and its FLOPs
        out, target = forward()
    fwd_flops = int(counter.get_total_flops())
    grad = torch.randn_like(out) if loss_fn is None else None
    bwd_flops = count_flops(lambda: backward_of(target))
    fwd_ms, fwd_iqr = timer.measure(lambda: None, lambda _: forward())
    bwd_ms, bwd_iqr = timer.measure(lambda: forward()[1], backward_of)
    step_ms = 0.0  # a part without parameters (a pool, an activation) has no optimizer step
    if any(True for _ in module.parameters()):
        optimizer = make_optimizer(module)
        step_ms, _ = timer.measure(lambda: None, lambda _: optimizer.step())
    module.zero_grad(set_to_none=True)
    x.grad = None  # gradients are None, as after zero_grad(set_to_none=True) in training
    bwd_peak = allocation_rise_bytes(backward_of, timer.device, setup=lambda: forward()[1])
    module.zero_grad(set_to_none=True)
    x.grad = None
    return {"out": out.detach(), "fwd_flops": fwd_flops, "bwd_flops": bwd_flops, "fwd_ms": fwd_ms, "bwd_ms": bwd_ms,
            "step_ms": step_ms, "fwd_ms_iqr": fwd_iqr, "bwd_ms_iqr": bwd_iqr, "param_bytes": param_bytes(module),
            "bwd_peak_bytes": bwd_peak}


def saved_activation_bytes(model: nn.Module, heads: dict[str, nn.Module], x: torch.Tensor) -> tuple[list[int], dict[str, int]]:
    """Bytes each block keeps for backward in one chained forward of the whole model, and
    each early exit's bytes on top of the blocks up to its separation point (memory_probe)."""
    meter = SavedTensorMeter(ignore=list(model.parameters()) + [p for h in heads.values() for p in h.parameters()])
    blocks, exits = [], {}
    for name in model.block_names:
        with meter.part():
            x = model.block(name)(x)
        blocks.append(meter.bytes)
        if name in heads:
            branch = meter.copy()
            with branch.part():
                heads[name](x)
            exits[name] = branch.bytes
    return blocks, exits


def measure_input_prep_ms(spec_shape: tuple[int, ...], batch_size: int, device: torch.device, timer: Timer) -> float:
    """uint8 batch in host memory -> normalised fp32 tensor on the device."""
    raw = torch.randint(0, 256, (batch_size, *spec_shape), dtype=torch.uint8)

    def prepare(_: object) -> None:
        x = raw.to(device, non_blocking=False).float().div_(255.0)
        x.sub_(0.5).div_(0.25)

    median, _ = timer.measure(lambda: None, prepare)
    return median


def measure_peak_memory(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, device: torch.device) -> int | None:
    """Device-reported peak memory of one whole-model training step (CUDA only)."""
    if device.type != "cuda":
        return None
    torch.cuda.reset_peak_memory_stats(device)
    optimizer = make_optimizer(model)
    nn.functional.cross_entropy(model(x), labels).backward()
    optimizer.step()
    model.zero_grad(set_to_none=True)
    torch.cuda.synchronize(device)
    return int(torch.cuda.max_memory_allocated(device))


def measure_profile(model_name: str, dataset: str, batch_size: int, device_kind: str = "cpu",
                    threads: int | None = None, repeats: int = 10, warmup: int = 2, width: float = 1.0,
                    seed: int = 0, progress: bool = True, input_size: int | None = None,
                    points: tuple[str, ...] | None = None) -> Profile:
    """Profile `model_name` (any name `models.build_model` takes) for `dataset` at `input_size`
    pixels (default: the dataset's own); the parts are the blocks between its separation points."""
    if batch_size < 2:
        raise UserError(f"--batch-size must be at least 2 (batch norm needs two samples), got {batch_size}")
    if repeats < 1 or warmup < 0:
        raise UserError(f"--repeats must be >= 1 and --warmup >= 0, got {repeats} and {warmup}")
    device = resolve_device(device_kind, "--device")
    if threads is not None:
        if threads < 1:
            raise UserError(f"--threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    spec = get_dataset_spec(dataset)
    torch.manual_seed(seed)
    model = build_model(model_name, dataset, width, input_size, points).to(device).train()
    width, shape = model.width, model.input_shape
    timer = Timer(device, warmup, repeats)
    labels = torch.randint(0, spec.num_classes, (batch_size,), device=device)

    def loss(logits: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits, labels)

    work = [("layer", name) for name in model.block_names] + [("exit", name) for name in model.split_points]
    bar = progress_bar(work, desc=f"profile {model_name}/{dataset} on {device.type}", enabled=progress, unit="part")

    layers, exits, outputs, heads = [], [], {}, {}
    x = torch.randn(batch_size, *shape, device=device)
    for index, (kind, name) in enumerate(bar):
        bar.set_postfix_str(f"{kind} {name}")
        if kind == "layer":
            block = model.block(name)
            inp = x.detach().requires_grad_(index > 0)
            is_head = name == model.block_names[-1]
            result = profile_module(block, inp, timer, loss if is_head else None)
            x = outputs[name] = result.pop("out")
            layers.append(LayerProfile(name=name, out_shape=list(x.shape), out_bytes=x.numel() * FP32_BYTES,
                                       **result))
        else:
            head = heads[name] = early_exit_head(model.feature(name), spec.num_classes, width).to(device).train()
            result = profile_module(head, outputs[name].detach().requires_grad_(True), timer, loss)
            result.pop("out")
            exits.append(ExitProfile(after=name, **result))
    saved, exit_saved = saved_activation_bytes(model, heads, torch.randn(batch_size, *shape, device=device))
    layers = [replace(layer, saved_bytes=size) for layer, size in zip(layers, saved)]
    exits = [replace(head, saved_bytes=exit_saved[head.after]) for head in exits]
    prep_ms = measure_input_prep_ms(shape, batch_size, device, timer)
    peak = measure_peak_memory(model, torch.randn(batch_size, *shape, device=device), labels, device)
    return Profile(
        device=DeviceInfo(name=device_name(device), kind=device.type, torch_version=torch.__version__,
                          threads=torch.get_num_threads() if device.type == "cpu" else threads),
        model=model_name, dataset=dataset, input_shape=list(shape), batch_size=batch_size,
        source="measured", layers=layers, exits=exits,
        optimizer_step_ms=sum(layer.step_ms for layer in layers), raw_sample_bytes=spec.raw_bytes_at(input_size),
        label_bytes=spec.label_bytes, input_prep_ms=prep_ms, width=width, repeats=repeats, warmup=warmup,
        peak_memory_bytes=peak, created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
