"""Whole-part step times (`costs.PartSteps`): each worker's per-batch computation, timed in one
piece, in the worker process itself, at the run's thread count, on a real batch.

The profile times every block alone; a training step runs them as one chain. Alone, a block
allocates its output afresh and starts with cold caches, so on this repository's 2-core CPU
at one thread the per-block sum over-states VGG-16's (width 0.25) edge step by about 20%
and the whole model's by about 15% - far beyond the 5% the emulation is held to. Part steps
time the chain, with exactly the code the workers run (`compute`), codec encoding and
decoding included, in two rhythms (README "Real runs", benchmarks/bench_contention.py):

    busy_ms        back to back, as a worker that never waits runs it: the mean of `repeats`
                   runs after WARMUP (a run pays the mean, not a low quantile: the times are
                   skewed to the right, the 10th percentile is 2-8% below the mean here)
    after_wait_ms  {wait: mean} after sleeping `wait` ms before each run, for the steps that
                   can follow a wait (WAITING): on this VM a worker whose core went idle pays a
                   wake-up cost, about 0.5 ms after 10 ms idle and 1-5 ms after 100-300 ms

Data matters too: a real Fashion-MNIST batch trains about 3% faster than random numbers, so
the edge sends the cloud the batch it measures on.
"""
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch

from ..data.batching import get_preprocess
from .compute import (
    cloud_features,
    cloud_raw,
    edge_hierarchical,
    edge_split_backward,
    edge_split_forward,
)
from .payloads import encode_raw, encode_with_labels
from .session import RunRequest, build_parts, sgd, synchronize, warm_up

EDGE_STEPS = ("hierarchical_edge", "split_edge_forward", "split_edge_backward")
CLOUD_STEPS = ("hierarchical_cloud", "split_cloud", "full_cloud")
# Steps a worker can start after waiting: for the edge's split backward, the gradient; for a hierarchical
# edge, room in the uplink buffer; for the cloud, the next arrival. Split learning's forward follows its
# backward at once, and full-cloud's cloud trains the stored batches back to back.
WAITING = ("hierarchical_edge", "split_edge_backward", "hierarchical_cloud", "split_cloud")
WARMUP, REPEATS = 3, 60
WAITS_MS = (10, 30, 100, 300)  # idle before each run, for after_wait_ms
WAIT_REPEATS = 10


class Repeats(NamedTuple):
    """How many timed runs a measurement makes: back to back, and after each wait."""

    repeats: int = REPEATS
    wait_repeats: int = WAIT_REPEATS


@dataclass(frozen=True)
class TimedStep:
    """One per-batch computation: `run(setup())` is timed, `setup` (None: nothing) is not."""

    run: Callable
    setup: Callable | None = None

    def once(self) -> None:
        self.run(self.setup()) if self.setup is not None else self.run()


class WorkerSteps:
    """One worker's per-batch computations on one real batch (`images` uint8, `labels`), built
    as the worker builds its run: same seed, model, codec and device (whose thread count the
    caller has set)."""

    def __init__(self, request: RunRequest, side: str, images: torch.Tensor, labels: torch.Tensor,
                 device: torch.device):
        input_shape = tuple(images.shape[1:])
        warm_up(request, list(input_shape), device)
        parts, shape = build_parts(request, device)
        codec = request.codec
        affine = tuple(t.to(device) for t in get_preprocess(request.dataset).affine())
        x = images.to(device).to(torch.float32).mul_(affine[0]).add_(affine[1])
        y = labels.to(device)

        def synced(run: Callable) -> Callable:
            def call(*args):
                run(*args)
                synchronize(device)
            return call

        if side == "edge":
            hierarchical, edge_only = sgd([parts.edge, parts.early_exit], request), sgd([parts.edge], request)
            gradient = cloud_features(parts, sgd([parts.cloud], request), encode_with_labels(codec, parts.edge(x), y),
                                      codec, shape, device, send_gradient=True)
            self.steps = {
                "hierarchical_edge": TimedStep(synced(lambda: edge_hierarchical(parts, hierarchical, x, y, codec))),
                "split_edge_forward": TimedStep(synced(lambda: edge_split_forward(parts, edge_only, x, y, codec))),
                "split_edge_backward": TimedStep(
                    synced(lambda activations: edge_split_backward(edge_only, activations, gradient, codec)),
                    setup=lambda: edge_split_forward(parts, edge_only, x, y, codec)[0]),
            }
        else:
            body = encode_with_labels(codec, parts.edge(x).detach(), y)
            cloud, whole = sgd([parts.cloud], request), sgd([parts.edge, parts.cloud], request)
            raw = encode_raw(images, labels)
            self.steps = {
                "hierarchical_cloud": TimedStep(synced(
                    lambda: cloud_features(parts, cloud, body, codec, shape, device, send_gradient=False))),
                "split_cloud": TimedStep(synced(
                    lambda: cloud_features(parts, cloud, body, codec, shape, device, send_gradient=True))),
                "full_cloud": TimedStep(synced(
                    lambda: cloud_raw(parts, whole, raw, tuple(images.shape), affine, device))),
            }


def step_samples_ms(step: TimedStep, warmup: int = WARMUP, repeats: int = REPEATS, wait_s: float = 0.0) -> list[float]:
    """Wall times of `repeats` runs after `warmup` untimed ones, ms; the setup untimed, and each
    run preceded by `wait_s` of sleep (after the setup, as a worker waits after its forward)."""
    samples = []
    for index in range(warmup + repeats):
        state = step.setup() if step.setup is not None else None
        if wait_s:
            time.sleep(wait_s)
        started = time.perf_counter()
        step.run(state) if step.setup is not None else step.run()
        if index >= warmup:
            samples.append((time.perf_counter() - started) * 1e3)
    return samples


def measure_steps(steps: WorkerSteps, repeats: int = REPEATS, wait_repeats: int = WAIT_REPEATS) -> dict:
    """{"busy_ms": {step: ms}, "after_wait_ms": {step: {wait_ms: ms}}} for this worker's steps."""
    busy = {name: statistics.mean(step_samples_ms(step, WARMUP, repeats)) for name, step in steps.steps.items()}
    after_wait = {name: {str(wait): statistics.mean(step_samples_ms(step, 1, wait_repeats, wait / 1e3))
                         for wait in WAITS_MS}
                  for name, step in steps.steps.items() if name in WAITING}
    return {"busy_ms": busy, "after_wait_ms": after_wait}


def measurement_bound_s(step_s: float, repeats: int = REPEATS, wait_repeats: int = WAIT_REPEATS) -> float:
    """A generous bound on one worker's measure_steps when its slowest step takes about `step_s`:
    three times the runs and sleeps it makes, plus 30 s to build the model and warm up."""
    runs = 3 * (WARMUP + repeats) + 2 * (1 + wait_repeats) * len(WAITS_MS)
    return 30 + 3 * (2 * runs * step_s + 2 * (1 + wait_repeats) * sum(WAITS_MS) / 1e3)


def loop_until(step: TimedStep, stop: Callable[[], bool]) -> int:
    """Run `step` back to back until stop() is true (checked between runs); how many ran."""
    count = 0
    while not stop():
        step.once()
        count += 1
    return count
