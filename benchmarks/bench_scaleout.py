"""Scale-out of a sweep: one worker against two, on a local process pool and on Ray; prints
figures and checks the outputs, asserts nothing about time.

    python benchmarks/bench_scaleout.py [--epochs 12] [--replications 6] [--skip-ray]

The sweep: scenarios/low_bitrate.yaml's two models and three methods at four uplink rates with
20 ms of jitter, `--replications` times each (144 runs by default), `--epochs` of 1,000 batches,
every run event by event in SimPy (`--engine simpy`, `--no-train`): about a minute of CPU.

Each configuration is `simulate run` in this process (imports paid once beforehand), timed from
the call to its return: the split search, the runs, the tables and the report. The Ray cluster
(a local instance with 1, then 2 CPUs, configured as `simulate` configures one) is started
before the clock starts, as a real cluster is (`ray start --head`); its start-up is printed
apart. Side by side, in one run, on one machine:

    local, --workers 1   local, --workers 2   ray, 1 CPU   ray, 2 CPUs

and the speedups 1 -> 2. Every configuration's output folder must equal the first's byte for byte.
"""
import argparse
import contextlib
import io
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

# Pool workers start by importing this file (multiprocessing's spawn): the simulator is imported
# inside the functions, so that a worker does not import torch and pandas for nothing.
ROOT = Path(__file__).resolve().parent.parent


def write_sweep(folder: Path, epochs: int, replications: int) -> Path:
    """low_bitrate at four rates, with jitter and replications; shipped profile paths made absolute."""
    data = yaml.safe_load((ROOT / "scenarios" / "low_bitrate.yaml").read_text())
    data["workload"].update(epochs=epochs, train_samples=32_000)  # 1,000 batches per epoch
    data["network"].update(uplink_mbps=[0.5, 2.0, 10.0, 50.0], jitter_ms=20.0)
    data.update(replications=replications, output_dir=str(folder / "out"), accuracy={"enabled": False})
    for side in ("edge", "cloud"):
        data[side]["profiles"] = {m: str(ROOT / p) for m, p in data[side]["profiles"].items()}
    path = folder / "scaleout.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def timed_run(path: Path, executor) -> tuple[float, dict[str, bytes]]:
    """Wall seconds of `simulate run PATH --engine simpy --no-train` on `executor`, and its output files."""
    from simulator.sweep.runner import run_scenario

    out = path.parent / "out"
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        table = run_scenario(str(path), progress=False, train=False, engine="simpy", executor=executor)
    wall_s = time.perf_counter() - start
    assert (table.engine == "simpy").all()
    return wall_s, {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def on_ray(path: Path, cpus: int) -> tuple[float, float, dict[str, bytes]]:
    """(start-up s, run s, outputs) on a fresh local Ray instance of `cpus` CPUs."""
    import ray

    from simulator.core.executors import LOCAL_RAY_CONFIG, Executor

    start = time.perf_counter()
    ray.init(address="local", num_cpus=cpus, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False,
             _system_config=LOCAL_RAY_CONFIG)
    startup_s = time.perf_counter() - start
    try:
        wall_s, files = timed_run(path, Executor("ray", cpus))
    finally:
        ray.shutdown()
    return startup_s, wall_s, files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12, help="epochs of 1,000 batches per run (default 12)")
    parser.add_argument("--replications", type=int, default=6, help="replications of each run (default 6)")
    parser.add_argument("--skip-ray", action="store_true", help="only the local process pool")
    args = parser.parse_args()
    from simulator.core.executors import Executor
    from simulator.sweep.runner import run_scenario  # noqa: F401  (imported before the clocks start)

    with tempfile.TemporaryDirectory() as tmp:
        path = write_sweep(Path(tmp), args.epochs, args.replications)
        runs = 2 * 3 * 4 * args.replications
        print(f"(c) scale-out: {runs} runs of {args.epochs} epochs x 1,000 batches, SimPy event by event, "
              "no training\n")
        rows, reference, all_same = [], None, True
        cases = [("local", 1), ("local", 2)] + ([] if args.skip_ray else [("ray", 1), ("ray", 2)])
        for kind, workers in cases:
            startup = ""
            if kind == "ray":
                startup_s, wall_s, files = on_ray(path, workers)
                startup = f"  (Ray start-up {startup_s:.1f} s, not counted)"
            else:
                wall_s, files = timed_run(path, Executor("local", workers))
            reference = reference or files
            same = files == reference
            all_same = all_same and same
            rows.append((kind, workers, wall_s))
            label = f"{kind}, --workers {workers}" if kind == "local" else f"ray, {workers} CPU{'s' * (workers > 1)}"
            print(f"  {label:<20} {wall_s:7.1f} s  {runs / wall_s:6.2f} runs/s  output "
                  f"{'identical' if same else 'DIFFERENT'}{startup}", flush=True)
            if not same:
                different = sorted(n for n in reference.keys() | files.keys() if reference.get(n) != files.get(n))
                print(f"    differs from local --workers 1 in: {', '.join(different)}")
        print()
        times = {(kind, workers): wall_s for kind, workers, wall_s in rows}
        for kind in dict.fromkeys(k for k, _, _ in rows):
            print(f"  speedup {kind:<5} 1 -> 2 workers: {times[(kind, 1)] / times[(kind, 2)]:.2f}x (goal >= 1.8x)")
        if not all_same:
            sys.exit("outputs differ between executors")


if __name__ == "__main__":
    main()
