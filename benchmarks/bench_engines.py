"""The fast engine against SimPy on a trace-driven paper-scale sweep; prints figures, asserts nothing.

    (a) wall time of 2 models x 3 methods x 10 trace scales x 100 epochs x 1,563 batches
        (9.4 M batches) over the measured T-Mobile 3G uplink and downlink traces, SimPy (event by
        event: a trace never repeats) against the fast engine, side by side in one process;
    (b) a 100-replication Monte Carlo of (a) (each replication at its own random offset in the
        traces, 940 M batches) through `simulate run --engine fast --workers N`, end to end;
    (d) the largest relative difference between the engines over every column of (a).

Costs come from the shipped profiles: a Jetson Orin Nano edge (GPU) and an A100 cloud, the
paper's separation points, uplink buffer 8, 75 ms one way.

    python benchmarks/bench_engines.py                # (a) and (d); SimPy takes ~5-10 minutes
    python benchmarks/bench_engines.py --monte-carlo  # and (b), with --workers 2
    python benchmarks/bench_engines.py --quick        # 5 epochs, 10 replications
"""
import argparse
import dataclasses
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from bench_sim import BATCHES_PER_EPOCH, CLOUD, EDGE, METHODS, SPLITS, paper_costs
from simulator.costmodel import LinkSpec
from simulator.engines import simulate
from simulator.links.capacity import LinkShape
from simulator.links.traces import load_trace
from simulator.sim import RunResult, RunSpec

ROOT = Path(__file__).resolve().parent.parent
UP_TRACE, DOWN_TRACE = ROOT / "traces/TMobile-UMTS-driving.up", ROOT / "traces/TMobile-UMTS-driving.down"
SCALES = [float(s) for s in np.geomspace(0.5, 16.0, 10)]
LATENCY_MS = 75.0
BUFFER = 8


def sweep_specs(epochs: int) -> list[RunSpec]:
    """Every run of the trace-driven sweep."""
    up_mean, down_mean = load_trace(str(UP_TRACE)).mean_mbps, load_trace(str(DOWN_TRACE)).mean_mbps
    specs = []
    for _, costs, edge_has_gpu in paper_costs():
        for method in METHODS:
            for scale in SCALES:
                up = LinkSpec(up_mean * scale, LATENCY_MS, shape=LinkShape(str(UP_TRACE), scale))
                down = LinkSpec(down_mean * scale, LATENCY_MS, shape=LinkShape(str(DOWN_TRACE), scale))
                specs.append(RunSpec(method, costs, up, down, BATCHES_PER_EPOCH, epochs, uplink_buffer_batches=BUFFER,
                                     edge_has_gpu=edge_has_gpu))
    return specs


def largest_difference(a: RunResult, b: RunResult) -> tuple[float, str]:
    """(largest relative difference, its column) over every column; inf where counts differ."""
    worst, where = 0.0, ""
    for field in dataclasses.fields(RunResult):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if field.name in ("engine", "fast_forwarded"):
            continue
        if field.name in ("trace", "backlog_trace", "stall_backlog", "stall_drops", "dropped_batches"):
            pairs = [(float(u), float(v)) for p, q in zip(x, y) for u, v in zip(p if isinstance(p, tuple) else
                     dataclasses.astuple(p), q if isinstance(q, tuple) else dataclasses.astuple(q))
                     if isinstance(u, (int, float))]
            if len(x) != len(y):
                return math.inf, field.name
        elif isinstance(x, tuple):
            pairs = list(zip(x, y))
        elif x is None or y is None:
            if x != y:
                return math.inf, field.name
            pairs = []
        else:
            pairs = [(x, y)]
        for u, v in pairs:
            if u != v and not (math.isnan(u) and math.isnan(v)):
                diff = abs(u - v) / max(abs(u), abs(v), 1e-300)
                if diff > worst:
                    worst, where = diff, field.name
    return worst, where


def sweep(epochs: int) -> None:
    specs = sweep_specs(epochs)
    batches = sum(s.epochs * s.batches_per_epoch for s in specs)
    simulate(dataclasses.replace(specs[0], epochs=1), "fast")  # compile (or load the compiled kernels)
    fast_s, simpy_s, worst, where = 0.0, 0.0, 0.0, ""
    print(f"(a) {len(specs)} runs, {batches / 1e6:.1f} M batches over the 3G traces (scales "
          f"{SCALES[0]:g}-{SCALES[-1]:g}), each engine side by side:")
    for i, spec in enumerate(specs):
        started = time.perf_counter()
        fast = simulate(spec, "fast")
        fast_s += time.perf_counter() - started
        started = time.perf_counter()
        slow = simulate(spec, "simpy")
        simpy_s += time.perf_counter() - started
        diff, column = largest_difference(fast, slow)
        if diff > worst:
            worst, where = diff, column
        print(f"\r    {i + 1}/{len(specs)} runs: fast {fast_s:6.2f} s, SimPy {simpy_s:7.1f} s", end="", flush=True)
    print(f"\n    fast engine {fast_s:.2f} s ({batches / fast_s / 1e6:.1f} M batches/s), SimPy {simpy_s:.1f} s "
          f"({batches / simpy_s / 1e3:.0f} k batches/s): {simpy_s / fast_s:.0f}x faster")
    print(f"(d) largest relative difference between the engines over every column: {worst:.2e}"
          + (f" ({where})" if where else ""))


def monte_carlo(epochs: int, replications: int, workers: int) -> None:
    """(b): the sweep as a scenario file with `replications`, through the CLI."""
    scenario = {
        "description": f"bench_engines (b): {replications} replications of the trace-driven sweep",
        "seed": 0, "replications": replications, "methods": list(METHODS),
        "workload": {"dataset": "cifar10", "batch_size": 32, "epochs": epochs,
                     "models": [{"name": m, "split": s} for m, s in SPLITS.items()]},
        "edge": {"name": "Jetson Orin Nano (derived)", "compute": "gpu", "memory_mib": 8192, "profiles": EDGE},
        "cloud": {"name": "A100 (derived)", "profiles": CLOUD},
        "network": {"uplink_trace": str(UP_TRACE), "downlink_trace": "paired", "trace_scale": SCALES,
                    "trace_offset_s": "random", "latency_ms": LATENCY_MS, "uplink_buffer_batches": BUFFER,
                    "codec": "fp32"},
        "accuracy": {"enabled": False},
    }
    with tempfile.TemporaryDirectory() as folder:
        scenario["output_dir"] = str(Path(folder) / "out")
        path = Path(folder) / "monte_carlo.yaml"
        path.write_text(yaml.safe_dump(scenario, sort_keys=False))
        runs = len(SPLITS) * len(METHODS) * len(SCALES) * replications
        batches = runs * epochs * BATCHES_PER_EPOCH
        command = [sys.executable, "-m", "simulator", "run", str(path), "--no-train", "--no-progress",
                   "--engine", "fast", "--workers", str(workers)]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)  # device profiles: ROOT/profiles
        wall_s = time.perf_counter() - started
        if done.returncode != 0:
            print(done.stdout[-2000:], done.stderr[-2000:])
            raise SystemExit(f"(b) failed: {' '.join(command)}")
        print(f"(b) {replications} replications: {runs:,} runs, {batches / 1e6:,.0f} M batches, `simulate run "
              f"--engine fast --workers {workers}` end to end (report included): {wall_s:.1f} s "
              f"({batches / wall_s / 1e6:.1f} M batches/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 epochs, 10 replications")
    parser.add_argument("--monte-carlo", action="store_true", help="also (b), the 100-replication Monte Carlo")
    parser.add_argument("--no-sweep", action="store_true", help="skip (a) and (d)")
    parser.add_argument("--workers", type=int, default=2, help="(b)'s --workers (default 2)")
    args = parser.parse_args()
    epochs = 5 if args.quick else 100
    if not args.no_sweep:
        sweep(epochs)
    if args.monte_carlo:
        monte_carlo(epochs, 10 if args.quick else 100, args.workers)


if __name__ == "__main__":
    main()
