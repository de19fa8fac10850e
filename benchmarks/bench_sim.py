"""Speed of the discrete-event simulation; prints figures, asserts nothing about time.

    (a) event-by-event throughput (fast_forward=False), simulated batches per wall second;
    (b) wall time of the paper-scale sweep with fast forward: 2 models x 3 methods x
        10 uplink rates x 100 epochs x 1,563 batches (CIFAR-10, batch 32) = 9.4 M batches;
    (c) a sample of the sweep re-run event by event, with the largest relative difference
        over every field, and the sweep's largest difference from the closed form.

Costs come from the shipped profiles: a Jetson Orin Nano edge (GPU) and an A100 cloud.

    python benchmarks/bench_sim.py [--quick]   # --quick: 5 epochs, smaller samples
"""
import argparse
import dataclasses
import random
import time
from pathlib import Path

import numpy as np

from simulator.costmodel import BatchCosts, LinkSpec, batch_costs, batches_per_epoch
from simulator.profiling.schema import Profile
from simulator.sim import RunResult, RunSpec, simulate

PROFILES = Path(__file__).resolve().parent.parent / "profiles"
EDGE, CLOUD = "jetson-orin-nano", "a100"
SPLITS = {"vgg16": "stage3", "resnet18": "layer3_1"}
METHODS = ("full_cloud", "split_learning", "hierarchical")
RATES_MBPS = np.geomspace(1.0, 1000.0, 10)
LATENCY_MS = 20.0
BATCHES_PER_EPOCH = batches_per_epoch(50_000, 32)  # 1563


def paper_costs() -> list[tuple[str, BatchCosts, bool]]:
    """(model, per-batch costs at the paper's separation point, edge has a GPU) of each model, from
    the shipped Orin Nano and A100 CIFAR-10 profiles."""
    out = []
    for model, split in SPLITS.items():
        edge = Profile.load(PROFILES / f"{EDGE}_{model}_cifar10_b32.json")
        cloud = Profile.load(PROFILES / f"{CLOUD}_{model}_cifar10_b32.json")
        out.append((model, batch_costs(edge, cloud, split, "fp32"), edge.device.kind == "cuda"))
    return out


def sweep_specs(epochs: int) -> list[tuple[str, RunSpec]]:
    """(model, spec) of every run of the sweep."""
    specs = []
    for model, costs, edge_has_gpu in paper_costs():
        for method in METHODS:
            for rate_mbps in RATES_MBPS:
                link = LinkSpec(rate_mbps=float(rate_mbps), latency_ms=LATENCY_MS)
                specs.append((model, RunSpec(method, costs, link, link, BATCHES_PER_EPOCH, epochs,
                                             uplink_buffer_batches=4, edge_has_gpu=edge_has_gpu)))
    return specs


def largest_difference(a: RunResult, b: RunResult) -> float:
    """Largest relative difference over every numeric field, trace times included."""
    pairs = [(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(RunResult)
             if isinstance(getattr(a, f.name), (int, float)) and f.name != "fast_forwarded"]
    pairs += list(zip(a.epoch_end_s, b.epoch_end_s))
    pairs += [(x, y) for e, g in zip(a.trace, b.trace) for x, y in ((e.start_s, g.start_s), (e.end_s, g.end_s))]
    if len(a.trace) != len(b.trace) or a.max_uplink_backlog != b.max_uplink_backlog:
        return float("inf")
    return max(abs(x - y) / max(abs(x), abs(y), 1e-300) for x, y in pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 epochs, 500-batch throughput runs, 2 samples")
    args = parser.parse_args()
    epochs, throughput_batches, samples = (5, 500, 2) if args.quick else (100, 2000, 3)
    labels, specs = zip(*sweep_specs(epochs))

    print(f"(a) event by event, {throughput_batches} batches (VGG-16, {RATES_MBPS[4]:.1f} Mbit/s):")
    for spec in specs[4:len(specs) // 2:len(RATES_MBPS)]:
        spec = dataclasses.replace(spec, batches_per_epoch=throughput_batches, epochs=1, fast_forward=False)
        start = time.perf_counter()
        simulate(spec)
        wall_s = time.perf_counter() - start
        print(f"    {spec.method:15s} {throughput_batches / wall_s:9,.0f} batches/s")

    start = time.perf_counter()
    results = [simulate(spec) for spec in specs]
    wall_s = time.perf_counter() - start
    n_batches = sum(spec.epochs * spec.batches_per_epoch for spec in specs)
    print(f"(b) sweep: {len(specs)} runs, {n_batches:,} batches, {wall_s:.2f} s wall, one process "
          f"({n_batches / wall_s:,.0f} batches/s); fast-forwarded {sum(r.fast_forwarded for r in results)}/{len(specs)}")
    print(f"    largest |DES - closed form| / closed form: "
          f"{max(abs(r.total_time_s - r.analytic_time_s) / r.analytic_time_s for r in results):.1e}")
    print("    total time (h) at uplink Mbit/s:  " + " ".join(f"{rate:7.1f}" for rate in RATES_MBPS))
    for index in range(0, len(specs), len(RATES_MBPS)):
        row = " ".join(f"{r.total_time_s / 3600:7.2f}" for r in results[index:index + len(RATES_MBPS)])
        print(f"    {labels[index]:8s} {specs[index].method:15s}           {row}")

    print(f"(c) {samples} sweep runs re-run event by event:")
    for index in random.Random(1).sample(range(len(specs)), samples):
        start = time.perf_counter()
        slow = simulate(dataclasses.replace(specs[index], fast_forward=False))
        wall_s = time.perf_counter() - start
        print(f"    {labels[index]:8s} {specs[index].method:15s} {specs[index].uplink.rate_mbps:7.1f} Mbit/s: largest "
              f"relative difference {largest_difference(results[index], slow):.1e} ({wall_s:.1f} s event by event)")

if __name__ == "__main__":
    main()
