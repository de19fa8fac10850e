"""Fidelity of the simulator against real two-process runs; prints figures, asserts nothing.

Runs `simulate emulate` on the shipped scenario (edge and cloud worker on loopback, one thread
and one core each, application-level pacing) at each uplink rate, for every method. Each round
is one `simulate emulate` session: the workers measure their part steps first, on this machine,
then run. Printed per run: measured time, predicted time and the signed error, the structural
error (the simulation re-run with the run's own per-batch compute), and the per-batch compute
the workers measured beside what the prediction charged (wake-up cost included), where a wrong
term shows first. The target, |structural error| <= 5% for every method and rate, is the
simulator's (README "Real runs"); the end-to-end error adds the device-speed estimate's.
Keep the machine otherwise idle:

    flock /tmp/cpu.lock .venv/bin/python benchmarks/bench_emulation.py [--batches 200] [--rates 1 10 100]
                                                                       [--rounds 3]

A shared VM's speed drifts for minutes at a time, which moves a compute-bound run's measured
time with it. With --rounds N the whole session is repeated N times and the summary compares
the median measured time of each method and rate with the median prediction; every round's
own errors are printed too.
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
    parser.add_argument("--rounds", type=int, default=1, help="repeat every session; summarise the median")
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


def within(errors: pd.Series) -> str:
    return (f"{(errors.abs() <= TARGET_PCT).sum()} of {len(errors)} within {TARGET_PCT:g}%, worst "
            f"{errors.abs().max():.2f}%, mean |error| {errors.abs().mean():.2f}%")


def summary(table: pd.DataFrame, started: float) -> None:
    """Median measured time over the rounds of each method and rate, against the median prediction."""
    median = table.groupby(["method", "uplink_mbps"], sort=False).agg(
        rounds=("measured_s", "size"), measured_min_s=("measured_s", "min"), measured_max_s=("measured_s", "max"),
        measured_median_s=("measured_s", "median"), predicted_s=("predicted_s", "median"),
        structural_error_pct=("structural_error_pct", "median")).reset_index()
    median["error_pct"] = 100 * (median.predicted_s - median.measured_median_s) / median.measured_median_s
    print(f"\n=== median of {table['round'].max()} rounds ===\n")
    print(median.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(f"\nend to end: {within(median.error_pct)}; structural: {within(median.structural_error_pct)}; "
          f"benchmark wall time {time.perf_counter() - started:.0f} s")


def report(table: pd.DataFrame, started: float) -> None:
    columns = ["method", "uplink_mbps", "measured_s", "predicted_s", "error_pct", "structural_error_pct",
               "edge_compute_ms", "predicted_edge_compute_ms", "cloud_compute_ms", "predicted_cloud_compute_ms",
               "edge_wake_ms", "cloud_wake_ms", "link_late_ms"]
    print(f"\nper-batch compute, measured in the workers against what the prediction charged (wake-up included), "
          f"and link hand-over lag; workers: {table.cores.iloc[0]}\n")
    print(table[columns].to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(f"\nend to end: {within(table.error_pct)}; structural: {within(table.structural_error_pct)}; "
          f"benchmark wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
