"""Hand-written profiles for tests: one builder, round numbers, every size stated.

`hand_profile` builds a Profile from `Block` and `Exit` rows (ms per batch, sizes per sample).
`tiny_profile` is the three-block preset the simulation tests share:

Blocks a, b, head with an early exit after a and after b. Defaults: batch of 1 sample, no
label bytes, 1000-byte raw samples, and block `a` outputs 250 fp32 values (1000 bytes), so
every payload is 1000 bytes = 8 ms at 1 Mbit/s. Split at `a`, per batch:

    edge (cpu profile)   prep 1, fwd 10, bwd 20, step 1, exit fwd 2 / bwd 2 / step 1
                         hierarchical train = 10 + 2 + 2 + 20 + 1 + 1 = 36 ms
    cloud (cuda profile) blocks b + head: fwd 3, bwd 3, step 1 = 7 ms
                         full model with prep: 1 + 5 + 6 + 2 = 14 ms
"""
from dataclasses import dataclass

from simulator.costmodel import BatchCosts, batch_costs
from simulator.profiling.schema import DeviceInfo, ExitProfile, LayerProfile, Profile


@dataclass(frozen=True)
class Block:
    """One block: times in ms per batch, output size in fp32 values per sample, the rest in bytes per batch."""

    name: str
    fwd_ms: float
    bwd_ms: float
    step_ms: float
    out_numel: int  # per sample
    param_bytes: int = 0
    fwd_flops: int = 0
    bwd_flops: int = 0
    saved_bytes: int | None = None
    bwd_peak_bytes: int | None = None


@dataclass(frozen=True)
class Exit:
    """The early exit after block `after`, per batch."""

    after: str
    fwd_ms: float
    bwd_ms: float
    step_ms: float
    param_bytes: int = 0
    fwd_flops: int = 0
    bwd_flops: int = 0
    saved_bytes: int | None = None
    bwd_peak_bytes: int | None = None


def hand_profile(blocks: list[Block], exits: list[Exit], *, kind: str = "cpu", batch_size: int = 1,
                 input_shape: tuple[int, ...] = (1, 1, 1), raw_sample_bytes: int = 1000, label_bytes: int = 0,
                 prep_ms: float = 1.0, model: str = "tiny", dataset: str = "tiny", source: str = "derived",
                 threads: int | None = None, name: str = "") -> Profile:
    """A Profile of `blocks` (out_shape [batch, out_numel], out_bytes 4 x batch x out_numel) and `exits`."""
    layers = [LayerProfile(name=b.name, fwd_flops=b.fwd_flops, bwd_flops=b.bwd_flops, out_shape=[batch_size, b.out_numel],
                           out_bytes=4 * batch_size * b.out_numel, param_bytes=b.param_bytes, fwd_ms=b.fwd_ms,
                           bwd_ms=b.bwd_ms, step_ms=b.step_ms, saved_bytes=b.saved_bytes,
                           bwd_peak_bytes=b.bwd_peak_bytes) for b in blocks]
    heads = [ExitProfile(after=e.after, fwd_flops=e.fwd_flops, bwd_flops=e.bwd_flops, param_bytes=e.param_bytes,
                         fwd_ms=e.fwd_ms, bwd_ms=e.bwd_ms, step_ms=e.step_ms, saved_bytes=e.saved_bytes,
                         bwd_peak_bytes=e.bwd_peak_bytes) for e in exits]
    return Profile(device=DeviceInfo(name or f"hand {kind}", kind, "test", threads), model=model, dataset=dataset,
                   input_shape=list(input_shape), batch_size=batch_size, source=source, layers=layers, exits=heads,
                   optimizer_step_ms=sum(b.step_ms for b in blocks), raw_sample_bytes=raw_sample_bytes,
                   label_bytes=label_bytes, input_prep_ms=prep_ms)


# VGG-16 on CIFAR-10 (`simulate models`): its blocks, their outputs per sample in fp32 values, round parameter bytes.
VGG16_BLOCKS = ["stage1", "stage2", "stage3", "stage4", "stage5", "head"]
VGG16_OUT_NUMEL = [64 * 16 * 16, 128 * 8 * 8, 256 * 4 * 4, 512 * 2 * 2, 512, 10]
VGG16_PARAM_BYTES = [150_000, 900_000, 5_900_000, 23_600_000, 28_300_000, 20_000]


def vgg16_profile(kind: str, fwd_ms: list[float]) -> Profile:
    """VGG-16's blocks on CIFAR-10 at batch 32: real output sizes, round parameter sizes, backward
    twice forward, memory fields proportional to each output (saved 12, backward rise 8, exit 4 bytes
    per output value)."""
    batch = 32
    blocks = [Block(name, ms, 2 * ms, 0.1, out_numel=numel, param_bytes=params, saved_bytes=12 * batch * numel,
                    bwd_peak_bytes=8 * batch * numel)
              for name, numel, params, ms in zip(VGG16_BLOCKS, VGG16_OUT_NUMEL, VGG16_PARAM_BYTES, fwd_ms, strict=True)]
    exits = [Exit(name, 0.5, 0.5, 0.1, param_bytes=100_000, saved_bytes=4 * batch * numel,
                  bwd_peak_bytes=4 * batch * numel) for name, numel in zip(VGG16_BLOCKS[:-1], VGG16_OUT_NUMEL)]
    return hand_profile(blocks, exits, kind=kind, batch_size=batch, input_shape=(3, 32, 32), raw_sample_bytes=3072,
                        label_bytes=1, prep_ms=0.2, model="vgg16", dataset="cifar10")


EDGE_LAYERS = [(10.0, 20.0, 1.0), (10.0, 20.0, 1.0), (5.0, 5.0, 1.0)]  # (fwd_ms, bwd_ms, step_ms)
CLOUD_LAYERS = [(2.0, 3.0, 1.0), (2.0, 2.0, 0.5), (1.0, 1.0, 0.5)]
EXITS = [(2.0, 2.0, 1.0), (3.0, 3.0, 1.0)]


def tiny_profile(kind: str = "cpu", layers: list[tuple[float, float, float]] = EDGE_LAYERS,
                 exits: list[tuple[float, float, float]] = EXITS, prep_ms: float = 1.0, batch_size: int = 1,
                 raw_sample_bytes: int = 1000, label_bytes: int = 0, numel_a: int = 250) -> Profile:
    """The three-block preset; `layers` and `exits` give (fwd_ms, bwd_ms, step_ms) per block / exit."""
    blocks = [Block(name, *times, out_numel=numel) for name, times, numel in zip(["a", "b", "head"], layers,
                                                                                 [numel_a, 100, 10])]
    heads = [Exit(after, *times) for after, times in zip(["a", "b"], exits)]
    return hand_profile(blocks, heads, kind=kind, batch_size=batch_size, raw_sample_bytes=raw_sample_bytes,
                        label_bytes=label_bytes, prep_ms=prep_ms, name="tiny-" + kind)


def tiny_costs(split: str = "a", codec: str = "fp32", **kwargs) -> BatchCosts:
    """BatchCosts of the tiny edge and cloud profiles; `kwargs` go to both (sizes, batch)."""
    return batch_costs(tiny_profile("cpu", **kwargs), tiny_profile("cuda", CLOUD_LAYERS, **kwargs), split, codec)
