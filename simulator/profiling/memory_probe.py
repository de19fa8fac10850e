"""Measure training memory on the device this runs on: what the memory model (`memory`) needs
per block, and the real peak it is validated against.

Saved activations: `saved_tensors_hooks` sees every tensor autograd keeps for backward. A
storage is counted once, by the first part that saves it; parameters are never counted (they
are weights, not activations). So summed over the blocks up to a separation point, plus that
point's early exit, it is exactly what the edge part keeps alive between forward and backward.

Allocation rise: the peak of (bytes allocated - bytes freed) while a function runs, above the
start. On CUDA it comes from the caching allocator's counters (`max_memory_allocated`). The CPU
has no such counter, so every allocation and free that goes through PyTorch's CPU allocator
is recorded by the PyTorch profiler (`profile_memory=True`), with its time stamp, and the
running sum is taken in time order. It counts the same tensors CUDA's counter counts; the
process's resident size (RSS) is not used because it moves with malloc's caching, the
interpreter and the libraries, not with the tensors (README, "Edge memory model").
"""
import contextlib
import os
from collections.abc import Callable, Iterator

import torch
from torch import nn

from ..models.codecs import encode
from ..training.optimizer import PROFILED, sgd

WINDOW = "memory_probe.window"  # the profiler range whose allocations are measured


class SavedTensorMeter:
    """Bytes of the distinct storages autograd saves inside each `part()` block.

    Storages already counted (by an earlier part, or passed in `ignore`, e.g. parameters) are
    not counted again. The saved tensors stay alive as long as the graph that saved them.
    """

    def __init__(self, ignore: Iterator[torch.Tensor] = ()):
        self.seen = {t.untyped_storage().data_ptr() for t in ignore}
        self.bytes = 0

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in self.seen:
            self.seen.add(storage.data_ptr())
            self.bytes += storage.nbytes()
        return tensor

    @contextlib.contextmanager
    def part(self) -> Iterator["SavedTensorMeter"]:
        """Count what autograd saves in the body; `self.bytes` is then that part's share."""
        self.bytes = 0
        with torch.autograd.graph.saved_tensors_hooks(self._pack, lambda tensor: tensor):
            yield self

    def copy(self) -> "SavedTensorMeter":
        meter = SavedTensorMeter()
        meter.seen = set(self.seen)
        return meter


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence the C++ profiler's start/stop log lines (written to fd 2, not sys.stderr)."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def allocation_rise_bytes(fn: Callable[[object], object], device: torch.device,
                          setup: Callable[[], object] = lambda: None) -> int:
    """Peak of allocated-minus-freed bytes on `device` while `fn(setup())` runs, above its start.

    On the CPU `setup` runs inside the profiled region too: the profiler cannot see the free
    of a block allocated before it started (e.g. saved activations freed during a backward),
    so everything `fn` may free must be allocated under the profiler.
    """
    if device.type == "cuda":
        state = setup()
        torch.cuda.synchronize(device)
        start = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn(state)
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - start)
    from torch.profiler import ProfilerActivity, profile, record_function

    with quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        state = setup()
        with record_function(WINDOW):
            fn(state)
    events = list(prof.profiler.kineto_results.events())
    window = next(event for event in events if event.name() == WINDOW)
    begin_ns, end_ns = window.start_ns(), window.start_ns() + window.duration_ns()
    changes = sorted((event.start_ns(), event.nbytes()) for event in events
                     if event.name() == "[memory]" and event.device_type().name == "CPU")
    live = start = peak = 0
    for time_ns, change in changes:
        if time_ns < begin_ns:
            start = live = live + change
            continue
        if time_ns > end_ns:
            break
        live += change
        peak = max(peak, live - start)
    return int(peak)


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def measure_edge_training_peak_bytes(model: nn.Module, parts, batch_size: int, num_classes: int,
                                     buffer_batches: int, codec: str, device: torch.device, steps: int = 3) -> int:
    """Peak memory of the hierarchical edge in steady state, as the memory model defines it.

    One step: uint8 batch -> float input, edge blocks, early exit, cross-entropy, backward,
    SGD step (momentum 0.9, weight decay 5e-4), then the features are encoded and join an
    uplink buffer of `buffer_batches` batches (the oldest leaves). After `steps` warm-up steps
    (momentum buffers exist, the buffer is full) one more step is measured. On CUDA the peak is
    the device's own `max_memory_allocated`; on the CPU it is the bytes of the tensors alive
    between steps (weights, momentum, buffer, input batch, labels) plus the allocation rise
    during the step.
    """
    edge, head = parts.edge.to(device).train(), parts.early_exit.to(device).train()
    params = list(edge.parameters()) + list(head.parameters())
    optimizer = sgd(params, PROFILED)
    generator = torch.Generator().manual_seed(0)
    raw = torch.randint(0, 256, (batch_size, *model.input_shape), dtype=torch.uint8, generator=generator).to(device)
    labels = torch.randint(0, num_classes, (batch_size,), generator=generator).to(device)
    buffer: list = []

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        x = raw.float().div_(255.0)
        features = edge(x)
        nn.functional.cross_entropy(head(features), labels).backward()
        optimizer.step()
        buffer.append((encode(codec, features.detach()).payload, labels.clone()))
        if len(buffer) > buffer_batches:
            buffer.pop(0)

    for _ in range(max(steps, buffer_batches)):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device))
    momentum = [state["momentum_buffer"] for state in optimizer.state.values()]
    resident = tensor_bytes(params) + tensor_bytes(momentum) + tensor_bytes([raw, labels])
    resident += sum(tensor_bytes(item) for item in buffer)
    return resident + allocation_rise_bytes(lambda _: step(), device)
