"""Tiny hand-written profiles for the simulation tests (round numbers, ms per batch).

Blocks a, b, head with an early exit after a and after b. Defaults: batch of 1 sample, no
label bytes, 1000-byte raw samples, and block `a` outputs 250 fp32 values (1000 bytes), so
every payload is 1000 bytes = 8 ms at 1 Mbit/s. Split at `a`, per batch:

    edge (cpu profile)   prep 1, fwd 10, bwd 20, step 1, exit fwd 2 / bwd 2 / step 1
                         hierarchical train = 10 + 2 + 2 + 20 + 1 + 1 = 36 ms
    cloud (cuda profile) blocks b + head: fwd 3, bwd 3, step 1 = 7 ms
                         full model with prep: 1 + 5 + 6 + 2 = 14 ms
"""
from simulator.costmodel import BatchCosts, batch_costs
from simulator.profiling.schema import DeviceInfo, ExitProfile, LayerProfile, Profile

EDGE_LAYERS = [(10.0, 20.0, 1.0), (10.0, 20.0, 1.0), (5.0, 5.0, 1.0)]  # (fwd_ms, bwd_ms, step_ms)
CLOUD_LAYERS = [(2.0, 3.0, 1.0), (2.0, 2.0, 0.5), (1.0, 1.0, 0.5)]
EXITS = [(2.0, 2.0, 1.0), (3.0, 3.0, 1.0)]


def tiny_profile(kind: str = "cpu", layers: list[tuple[float, float, float]] = EDGE_LAYERS,
                 exits: list[tuple[float, float, float]] = EXITS, prep_ms: float = 1.0, batch_size: int = 1,
                 raw_sample_bytes: int = 1000, label_bytes: int = 0, numel_a: int = 250) -> Profile:
    """A three-block profile; `layers` and `exits` give (fwd_ms, bwd_ms, step_ms) per block / exit."""
    blocks = [LayerProfile(name=name, fwd_flops=0, bwd_flops=0, out_shape=[batch_size, numel],
                           out_bytes=4 * batch_size * numel, param_bytes=0, fwd_ms=fwd, bwd_ms=bwd, step_ms=step)
              for name, (fwd, bwd, step), numel in zip(["a", "b", "head"], layers, [numel_a, 100, 10])]
    heads = [ExitProfile(after=after, fwd_flops=0, bwd_flops=0, param_bytes=0, fwd_ms=fwd, bwd_ms=bwd, step_ms=step)
             for after, (fwd, bwd, step) in zip(["a", "b"], exits)]
    return Profile(device=DeviceInfo("tiny-" + kind, kind, "test", None), model="tiny", dataset="tiny",
                   input_shape=[1, 1, 1], batch_size=batch_size, source="derived", layers=blocks, exits=heads,
                   optimizer_step_ms=sum(step for _, _, step in layers), raw_sample_bytes=raw_sample_bytes,
                   label_bytes=label_bytes, input_prep_ms=prep_ms)


def tiny_costs(split: str = "a", codec: str = "fp32", **kwargs) -> BatchCosts:
    """BatchCosts of the tiny edge and cloud profiles; `kwargs` go to both (sizes, batch)."""
    return batch_costs(tiny_profile("cpu", **kwargs), tiny_profile("cuda", CLOUD_LAYERS, **kwargs), split, codec)
