"""Two workers on one host: contention, drift, or something else? Prints figures, asserts nothing.

During real runs (`simulate emulate`) the workers' per-batch compute was 17-77% above the part
steps timed alone. Either the two processes slow each other down (they share the host's cores,
caches and memory bandwidth), or the machine's speed drifts between the measurement and the
runs. Three experiments separate the candidates, each with the workers' own code
(`emulation.part_steps`), every process started like the workers (OMP_NUM_THREADS at the
profile's thread count from the start):

A. contention and drift, per step and round:
       alone      the step back to back (3 warm-up + N repeats)
       together   the same while a second process runs the other worker's step back to back
                  (the step that overlaps it in a real run: hierarchical edge <-> cloud; for the
                  steps that never overlap, hierarchical_edge as a stand-in)
       again      alone again
   drift = again / alone - 1, contention = together / mean(alone, again) - 1, on the mean and
   on the 10th percentile; with the hypervisor's steal time during each phase (/proc/stat).
B. wake-up: the step after sleeping W ms before each run (W = 0 is back to back), one process,
   nothing else running: what a worker pays when its core went idle while it waited.
C. placement: real runs (hierarchical and split learning at 100 Mbit/s) with each worker pinned
   to a core of its own, then left to the scheduler; the per-batch compute the workers measured
   during the runs against the part steps measured back to back in the same session.

    flock /tmp/cpu.lock .venv/bin/python benchmarks/bench_contention.py [--rounds 3] [--repeats 60]
                                                                        [--parts ABC]
"""
import argparse
import contextlib
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "emulate_fashion_mnist.yaml"
SUBJECTS = {  # step timed -> the other worker's step looping beside it
    "hierarchical_edge": "hierarchical_cloud",
    "hierarchical_cloud": "hierarchical_edge",
    "full_cloud": "hierarchical_edge",
    "split_edge_forward": "hierarchical_cloud",
}


def steal_ticks() -> int:
    """Steal time of all CPUs so far, in clock ticks (the 8th value of /proc/stat's cpu line)."""
    return int(Path("/proc/stat").read_text().split()[8])


def foreign_cpu_s() -> float:
    """CPU time used on this machine by processes other than this one and its waited-for children,
    so far, s: /proc/stat's busy time (user, nice, system, irq, softirq) minus os.times()'s. Its
    growth over a phase is other people's work, which no emulation can predict."""
    user, nice, system, _idle, _iowait, irq, softirq = map(int, Path("/proc/stat").read_text().split()[1:8])
    mine = os.times()
    own_s = mine.user + mine.system + mine.children_user + mine.children_system
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK") - own_s


def worker_steps(scenario_path: str, step: str):
    """(the step as the worker runs it on the first real batch, its request), at the scenario's first point."""
    from simulator.emulation.edge import TrainingSet
    from simulator.emulation.part_steps import EDGE_STEPS, WorkerSteps
    from simulator.emulation.session import run_request, use_device
    from simulator.scenario.load import load_scenario
    from simulator.sweep.points import fixed_split

    scenario = load_scenario(scenario_path)
    model = scenario.workload.models[0].name
    request = run_request(scenario, model, fixed_split(scenario, model), "hierarchical", 1.0, 1)
    side = "edge" if step in EDGE_STEPS else "cloud"
    profile = (scenario.edge_profiles if side == "edge" else scenario.cloud_profiles)[model]
    device = use_device(profile, request.edge_threads if side == "edge" else request.cloud_threads)
    images, labels = TrainingSet(scenario, scenario.workload.batch_size).raw(0)
    return WorkerSteps(request, side, images, labels, device).steps[step], request


def loop(scenario_path: str, step: str) -> None:
    """The background process: the step back to back until SIGTERM."""
    timed, _ = worker_steps(scenario_path, step)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    timed.once()
    print("ready", flush=True)
    from simulator.emulation.part_steps import loop_until

    loop_until(timed, lambda: bool(stop))


def phase_stats(samples: list[float]) -> tuple[float, float]:
    """(mean, 10th percentile) of step times."""
    return statistics.mean(samples), statistics.quantiles(samples, n=10, method="inclusive")[0]


def contention(args, timed, threads: int) -> None:
    from simulator.emulation.part_steps import step_samples_ms
    from simulator.emulation.processes import worker_env

    print(f"A. contention and drift: {args.repeats} repeats per phase; mean / p10 ms; foreign = other processes' CPU "
          f"time and steal = the hypervisor's, during alone / together / again, % of one core\n")
    rows = []
    for number in range(1, args.rounds + 1):
        for step in args.steps:
            phases = {}
            for phase in ("alone", "together", "again"):
                background = None
                if phase == "together":
                    background = subprocess.Popen([sys.executable, __file__, "--scenario", args.scenario, "--loop",
                                                   SUBJECTS[step]], env=worker_env(threads), text=True,
                                                  stdout=subprocess.PIPE)
                    background.stdout.readline()  # "ready": built, warmed up, looping
                steal, foreign, wall = steal_ticks(), foreign_cpu_s(), time.perf_counter()
                samples = step_samples_ms(timed[step], repeats=args.repeats)
                wall = time.perf_counter() - wall
                steal_pct = 100 * (steal_ticks() - steal) / os.sysconf("SC_CLK_TCK") / wall
                if background is not None:
                    background.terminate()
                    background.wait()
                phases[phase] = (*phase_stats(samples), steal_pct, 100 * max(0.0, foreign_cpu_s() - foreign) / wall)
            rows.append((step, phases))
            a, t, g = (phases[p] for p in ("alone", "together", "again"))
            print(f"round {number}  {step:<20} alone {a[0]:6.2f} / {a[1]:6.2f}  together {t[0]:6.2f} / {t[1]:6.2f}  "
                  f"again {g[0]:6.2f} / {g[1]:6.2f}   drift {100 * (g[0] / a[0] - 1):+5.1f}%  contention "
                  f"{100 * (t[0] / ((a[0] + g[0]) / 2) - 1):+5.1f}%   foreign {a[3]:.0f} / {t[3]:.0f} / {g[3]:.0f}%  "
                  f"steal {a[2]:.1f} / {t[2]:.1f} / {g[2]:.1f}%", flush=True)
    print("\nper step over the rounds, on the mean (p10 in brackets): min .. max")
    for step in args.steps:
        mine = [phases for s, phases in rows if s == step]
        for k, name in ((0, "mean"), (1, "p10")):
            drift = [100 * (p["again"][k] / p["alone"][k] - 1) for p in mine]
            together = [100 * (p["together"][k] / ((p["alone"][k] + p["again"][k]) / 2) - 1) for p in mine]
            print(f"  {step:<20} {name:<4} alone {statistics.mean(p['alone'][k] for p in mine):6.2f} ms  together "
                  f"{statistics.mean(p['together'][k] for p in mine):6.2f} ms (with {SUBJECTS[step]})   drift "
                  f"{min(drift):+5.1f} .. {max(drift):+5.1f}%   contention {min(together):+5.1f} .. {max(together):+5.1f}%")


def wake_up(args, timed) -> None:
    from simulator.emulation.part_steps import step_samples_ms

    waits_ms = (0, 10, 30, 100, 300)
    print(f"\nB. wake-up: {args.wait_repeats} runs after each wait (0 = back to back, {args.repeats} runs); "
          f"mean / p10 ms, and the mean's excess over back to back\n")
    for step in ("hierarchical_cloud", "split_cloud", "hierarchical_edge"):
        if step not in timed:
            continue
        line = []
        base = None
        for wait in waits_ms:
            samples = step_samples_ms(timed[step], 1 if wait else 3, args.wait_repeats if wait else args.repeats,
                                      wait / 1e3)
            mean, p10 = phase_stats(samples)
            base = mean if base is None else base
            line.append(f"{wait:>3} ms: {mean:6.2f} / {p10:6.2f} ({mean - base:+5.2f})")
        print(f"  {step:<20} " + "   ".join(line), flush=True)


def placement(args) -> None:
    from simulator.emulation.launcher import emulate
    from simulator.emulation.part_steps import Repeats

    print(f"\nC. placement: real runs at 100 Mbit/s, {args.batches} batches, pinned vs left to the scheduler; "
          f"per-batch compute in the runs against the part steps measured back to back in the same session\n")
    path, out = yaml_scenario(args.scenario, ["split_learning", "hierarchical"])
    for pin in [True, False] * args.placement_rounds:
        foreign, wall = foreign_cpu_s(), time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # its own table; the figures below say more here
            table = emulate(path, [100.0], args.batches, None, 60.0, progress=False, pin=pin,
                            repeats=Repeats(30, 3))
        foreign_pct = 100 * max(0.0, foreign_cpu_s() - foreign) / (time.perf_counter() - wall)
        steps = json.loads((out / "part_steps.json").read_text())["entries"][0]["busy_ms"]
        for row in table.itertuples():
            edge_step = {"hierarchical": "hierarchical_edge", "split_learning": "split_edge_forward"}[row.method]
            cloud_step = {"hierarchical": "hierarchical_cloud", "split_learning": "split_cloud"}[row.method]
            edge_busy = steps[edge_step] + (steps["split_edge_backward"] if row.method == "split_learning" else 0)
            print(f"  {'pinned' if pin else 'not pinned':<11} {row.method:<15} edge {row.edge_compute_ms:6.2f} ms "
                  f"(busy {edge_busy:6.2f}, {100 * (row.edge_compute_ms / edge_busy - 1):+5.1f}%)   cloud "
                  f"{row.cloud_compute_ms:6.2f} ms (busy {steps[cloud_step]:6.2f}, "
                  f"{100 * (row.cloud_compute_ms / steps[cloud_step] - 1):+5.1f}%)   error {row.error_pct:+5.1f}%  "
                  f"structural {row.structural_error_pct:+5.1f}%   foreign {foreign_pct:.0f}%", flush=True)


def yaml_scenario(path: str, methods: list[str]) -> tuple[str, Path]:
    """The scenario with only `methods`, written into a temporary folder; (its path, its output folder)."""
    from simulator.scenario.build import resolve_path
    from simulator.scenario.load import load_scenario


    data = yaml.safe_load(Path(path).read_text())
    folder = Path(tempfile.mkdtemp(prefix="bench-contention-"))
    data.update(methods=methods, output_dir=str(folder / "out"))
    scenario = load_scenario(path)  # its profiles, wherever they were found
    for side, profiles in (("edge", scenario.edge.profiles), ("cloud", scenario.cloud.profiles)):
        data[side]["profiles"] = {m: str(resolve_path(p, Path(path).resolve().parent).resolve())
                                  for m, p in profiles.items()}
    written = folder / Path(path).name
    written.write_text(yaml.safe_dump(data))
    return str(written), folder / "out"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=str(SCENARIO))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=60)
    parser.add_argument("--wait-repeats", type=int, default=20)
    parser.add_argument("--batches", type=int, default=200, help="batches per run in C")
    parser.add_argument("--steps", nargs="+", default=list(SUBJECTS), choices=list(SUBJECTS))
    parser.add_argument("--parts", default="ABC", help="which experiments to run (default ABC)")
    parser.add_argument("--placement-rounds", type=int, default=2, help="pinned/not pinned pairs in C")
    parser.add_argument("--loop", help=argparse.SUPPRESS)  # internal: be the background process
    args = parser.parse_args()
    if args.loop:
        loop(args.scenario, args.loop)
        return
    from simulator.emulation.processes import worker_env
    from simulator.emulation.session import profile_threads
    from simulator.scenario.load import load_scenario

    threads = profile_threads(next(iter(load_scenario(args.scenario).edge_profiles.values())))
    if os.environ.get("OMP_NUM_THREADS") != str(threads):  # be started like the workers
        os.execve(sys.executable, [sys.executable, *sys.argv], worker_env(threads))
    started = time.perf_counter()
    print(f"{args.scenario}: {threads} thread(s) per process, {os.cpu_count()} cores\n")
    timed = {step: worker_steps(args.scenario, step)[0] for step in {*args.steps, "split_cloud"}}
    if "A" in args.parts:
        contention(args, timed, threads)
    if "B" in args.parts:
        wake_up(args, timed)
    if "C" in args.parts:
        placement(args)
    print(f"\nwall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
