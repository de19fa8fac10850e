"""Fidelity of the simulator against real two-process runs; prints figures, asserts nothing.

Runs `simulate emulate` on the shipped scenario (edge and cloud worker on loopback, one
thread each, application-level pacing) at each uplink rate, for every method, and prints
measured time, predicted time and the signed error per run, with the per-batch compute
the workers measured beside what the profiles charge (where a wrong term shows first).
The target is |error| <= 5% for every method and rate. Keep the machine otherwise idle:

    flock /tmp/cpu.lock .venv/bin/python benchmarks/bench_emulation.py [--batches 200] [--rates 1 10 100]
                                                                       [--rounds 3]

A shared VM's speed drifts by 10-40% for minutes at a time, which moves a compute-bound run's
measured time with it. With --rounds N the whole set of runs is repeated N times and the
summary compares the median measured time of each method and rate with the prediction
(the prediction does not change between rounds); every round's own errors are printed too.
"""
import argparse
import time
from pathlib import Path

import pandas as pd

from simulator.emulation.launcher import emulate
from simulator.emulation.validation import TARGET_PCT

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "emulate_fashion_mnist.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=str(SCENARIO))
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--rates", type=float, nargs="+", default=[1.0, 10.0, 100.0], help="uplink Mbit/s")
    parser.add_argument("--timeout-s", type=float, default=60.0)
    parser.add_argument("--rounds", type=int, default=1, help="repeat every run; summarise the median")
    args = parser.parse_args()
    started = time.perf_counter()
    rounds = []
    for number in range(1, args.rounds + 1):
        print(f"\n=== round {number} of {args.rounds} ===")
        rounds.append(emulate(args.scenario, args.rates, args.batches, None, args.timeout_s, progress=False)
                      .assign(round=number))
        report(rounds[-1], started)
    if args.rounds > 1:
        summary(pd.concat(rounds), started)


def summary(table: pd.DataFrame, started: float) -> None:
    """Median measured time over the rounds of each method and rate, against the prediction."""
    median = table.groupby(["method", "uplink_mbps"], sort=False).agg(
        rounds=("measured_s", "size"), measured_min_s=("measured_s", "min"), measured_max_s=("measured_s", "max"),
        measured_median_s=("measured_s", "median"), predicted_s=("predicted_s", "first")).reset_index()
    median["error_pct"] = 100 * (median.predicted_s - median.measured_median_s) / median.measured_median_s
    print(f"\n=== median of {table['round'].max()} rounds ===\n")
    print(median.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    within = (median.error_pct.abs() <= TARGET_PCT).sum()
    print(f"\n{within} of {len(median)} method x rate within {TARGET_PCT:g}% (median of rounds); worst |error| "
          f"{median.error_pct.abs().max():.2f}%; mean |error| {median.error_pct.abs().mean():.2f}%; "
          f"benchmark wall time {time.perf_counter() - started:.0f} s")


def report(table: pd.DataFrame, started: float) -> None:
    columns = ["method", "uplink_mbps", "batches", "measured_s", "predicted_s", "error_pct", "edge_compute_ms",
               "predicted_edge_compute_ms", "cloud_compute_ms", "predicted_cloud_compute_ms", "link_late_ms"]
    print("\nper-batch compute, measured in the workers against the profiles' sum, and link hand-over lag:\n")
    print(table[columns].to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    worst = table.error_pct.abs().max()
    within = (table.error_pct.abs() <= TARGET_PCT).sum()
    print(f"\n{within} of {len(table)} runs within {TARGET_PCT:g}%; worst |error| {worst:.2f}%; mean |error| "
          f"{table.error_pct.abs().mean():.2f}%; benchmark wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
