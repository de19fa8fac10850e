"""Edge training memory of hierarchical training at a separation point (README, "Edge memory model").

A plain function of a profile, free of torch and SimPy. The edge holds blocks
`layers[0..s]` and the early exit after `s`; B is the profile's batch size, K the uplink
buffer in batches. All sizes are bytes; parameters and activations are fp32.

    W         = sum(param_bytes of blocks 0..s) + exit param_bytes                 weights
    O         = optimizer_slots * W         (SGD with momentum keeps one buffer)    optimizer state
    buffer    = K * (encoded_bytes(codec, numel of block s's output) + B * label_bytes)
    input     = B * (raw_sample_bytes + label_bytes)                                 the uint8 batch
    resident  = W + O + buffer + input                     alive all the time

Training one batch adds, at its highest point, the largest of these phases. Backward runs
the exit first, then blocks s, s-1, ..., 0; while it runs block k, the activations saved by
blocks 0..k are still alive, the gradients of the exit and of blocks k+1..s already exist,
the gradient arriving at block k's output (out_bytes) is alive, and block k's backward adds
its own rise (its weight gradients, the gradient of its input, workspaces):

    exit      A(s) + exit saved_bytes + exit bwd_peak_bytes
    block k   A(k) + G(k) + out_bytes(k) + bwd_peak_bytes(k)
    step      W + W                  gradients + SGD's temporary copy of them (weight decay)

    A(k) = sum(saved_bytes of blocks 0..k),   G(k) = exit param_bytes + sum(param_bytes of k+1..s)

    peak = resident + max(phases)

Split learning's edge (`early_exit=False`) has no exit: its W, saved and backward terms are 0
and there is no exit phase; its buffer is the one batch in flight (K = 1).

`saved_bytes` counts each stored tensor once (a block's output kept by the next block is
counted there), so A(k) is exactly what autograd keeps; `memory_probe` measures both inputs.
"""
import math
from dataclasses import dataclass

from ..core.wire import encoded_bytes
from ..profiling.schema import Profile

MIB = 1024 * 1024  # memory budgets (edge.memory_mib) and reports use MiB, as device datasheets do


@dataclass(frozen=True)
class EdgeMemory:
    """Peak edge memory of hierarchical training at one separation point, with its parts (bytes)."""

    split: str
    weights_bytes: int  # W: edge blocks and early exit
    optimizer_bytes: int  # O: momentum buffers
    activations_bytes: int  # A(s) + exit saved_bytes: kept between forward and backward
    buffer_bytes: int  # uplink buffer of K encoded batches, labels included
    input_bytes: int  # the uint8 input batch and its labels
    peak_bytes: int  # resident + the largest phase
    peak_phase: str  # where the peak falls: "exit", a block name, or "step"

    @property
    def peak_mib(self) -> float:
        return self.peak_bytes / MIB

    @property
    def resident_bytes(self) -> int:
        return self.weights_bytes + self.optimizer_bytes + self.buffer_bytes + self.input_bytes


@dataclass(frozen=True)
class _NoHead:
    """The absent early exit of split learning's edge."""

    param_bytes: int = 0
    saved_bytes: int = 0
    bwd_peak_bytes: int = 0


NO_HEAD = _NoHead()


def check_memory_fields(profile: Profile) -> None:
    """The memory model needs `saved_bytes` and `bwd_peak_bytes` of every block and exit."""
    parts = [(layer.name, layer) for layer in profile.layers] + [(f"exit after {h.after}", h) for h in profile.exits]
    for name, part in parts:
        if part.saved_bytes is None or part.bwd_peak_bytes is None:
            raise ValueError(f"{name} has no saved_bytes/bwd_peak_bytes (a profile made before the memory model; "
                             "re-run 'simulate profile', or re-derive it from a new measured profile)")


def edge_weight_bytes(profile: Profile, split: str, early_exit: bool) -> int:
    """fp32 parameters of blocks 0..`split`, with the early exit after `split` if `early_exit`:
    the edge's weights (the payload of a fleet's hand-over or averaging round, too)."""
    blocks = profile.layers[:profile.layer_index(split) + 1]
    return sum(layer.param_bytes for layer in blocks) + (profile.exit_after(split).param_bytes if early_exit else 0)


def edge_memory(profile: Profile, split: str, buffer_batches: int, codec: str = "fp32",
                optimizer_slots: int = 1, early_exit: bool = True) -> EdgeMemory:
    """Peak memory of the edge training blocks 0..`split` and their early exit (formulas above).
    `early_exit` False is split learning's edge: no exit head (its terms are 0, and there is no
    exit phase); the gradient of block s's output arrives from the cloud instead."""
    check_memory_fields(profile)
    if split not in profile.layer_names[:-1]:
        raise ValueError(f"split {split!r} is not a separation point; valid: {', '.join(profile.layer_names[:-1])}")
    blocks = profile.layers[:profile.layer_index(split) + 1]
    head = profile.exit_after(split) if early_exit else NO_HEAD
    batch = profile.batch_size
    weights = edge_weight_bytes(profile, split, early_exit)
    buffer = buffer_batches * (encoded_bytes(codec, math.prod(blocks[-1].out_shape)) + batch * profile.label_bytes)
    resident = weights * (1 + optimizer_slots) + buffer + batch * (profile.raw_sample_bytes + profile.label_bytes)

    saved_upto = [sum(layer.saved_bytes for layer in blocks[:k + 1]) for k in range(len(blocks))]
    phases = {"exit": saved_upto[-1] + head.saved_bytes + head.bwd_peak_bytes} if early_exit else {}
    phases["step"] = 2 * weights
    grads = head.param_bytes
    for k in range(len(blocks) - 1, -1, -1):
        block = blocks[k]
        phases[block.name] = saved_upto[k] + grads + block.out_bytes + block.bwd_peak_bytes
        grads += block.param_bytes
    phase = max(phases, key=phases.get)
    return EdgeMemory(split=split, weights_bytes=weights, optimizer_bytes=optimizer_slots * weights,
                      activations_bytes=saved_upto[-1] + head.saved_bytes, buffer_bytes=buffer,
                      input_bytes=batch * (profile.raw_sample_bytes + profile.label_bytes),
                      peak_bytes=resident + phases[phase], peak_phase=phase)
