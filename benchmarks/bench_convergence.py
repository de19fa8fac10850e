"""Convergence benchmark: accuracy of hierarchical training at every separation point against
full-cloud training, on the full Fashion-MNIST training and test sets, with a check of whether
each run's test accuracy has plateaued.

    python benchmarks/bench_convergence.py [--width 0.125] [--epochs 6] [--models vgg16 resnet18]
                                           [--device cpu|cuda|auto] [--threads N] [--jobs 1]
                                           [--out reports/convergence.csv] [--no-progress]

Why: the scenarios' accuracy columns come from a small proxy (width 0.25, 3 epochs, 10,000
training samples), where hierarchical training can beat full-cloud training - an
early-training effect. This benchmark trains on all the data for as many epochs as `--epochs`
allows and says whether the accuracy settled, so the gap it prints is the one the paper's
"negligible accuracy drop" claim is about once the runs plateau.

What it trains, with the simulator's own training code (`training.runs.train`, the same
`MethodTrainer`, batches, optimizer and cache as a scenario run):

- each model (`models.build_model(name, "fashion-mnist", width)`) under full-cloud training,
  and under hierarchical training (fp32 link, lossless) at every point of `model.split_points`
  (VGG-16: 5, ResNet-18: 9 - 16 runs in all);
- all 60,000 training images, batches of 32 (the workload's), SGD lr 0.05, momentum 0.9,
  weight decay 5e-4, cosine decay to 0 over the run, seed 0; tested on all 10,000 test images
  after every epoch.

Per run it prints the per-epoch test accuracy and whether it plateaued: the gain over the
last `--plateau-epochs` epochs (default 3) below `--plateau-points` (default 0.3 points).
Then a table (model, method, split, epochs, final, best and early-exit accuracy, drop against
full-cloud in points - positive: hierarchical is worse - and the run's training wall time) and
the same rows as a CSV with the per-epoch curve (written whole after every finished run).

Every finished run is cached in .cache/training/ (`TrainingCache`, keyed by everything that
affects it), so a rerun with the same flags prints at once and an interrupted one resumes.
Wall times are the runs' own training time (evaluation excluded) as cached, on the machine and
at the thread count that trained them.

This is a proxy, like the scenarios' accuracy: width 0.125 and Fashion-MNIST instead of the
paper's CIFAR-10 (which cannot be downloaded here). On this 2-core machine, shared with test
suites, the 16 runs of 6 epochs took 93 minutes at `nice -n 10` with `--jobs 2 --threads 1`
(a run: VGG-16 5-7 minutes, ResNet-18 12-17; timing a few batches alone predicted about an
hour), and 6 epochs do not plateau: the last epoch still gains 0.1-1.2 points and the last
three 3-7. 12 epochs took about 4 hours (a run 14-50 minutes on the shared machine): the last
epoch moves by -0.19..+0.21 points, but the last three still add 0.4-1.7 and doubling 6 -> 12
added 0.6-0.7 points to full-cloud (README, "Accuracy at convergence"). Give it `--epochs 24`
or more where the time exists. The full-width run for a GPU is

    python benchmarks/bench_convergence.py --width 1 --device cuda --epochs 30

`--jobs N` trains N runs at once in separate processes, each with `--threads` torch threads:
on a small CPU two 1-thread processes train about 1.35x faster than one 2-thread process.
"""
import argparse
import concurrent.futures
import csv
import io
import multiprocessing
import os
import time

from simulator.core.files import atomic_write_text
from simulator.models import PAPER_MODELS as MODELS, build_model
from simulator.training.optimizer import OptimizerConfig
from simulator.training.runs import (
    TrainingCache,
    TrainingResult,
    TrainingRun,
    batch_loaders,
    load_data,
    torch_threads,
    train,
)

DATASET = "fashion-mnist"
CSV_FIELDS = ["model", "method", "split", "dataset", "width", "epochs", "batch_size", "final_accuracy",
              "best_accuracy", "early_exit_accuracy", "drop_vs_full_cloud_points", "gain_last_epochs_points",
              "plateaued", "train_wall_s", "per_epoch_accuracy", "device", "cache_key"]

_worker_data = None  # a worker process's (train, test) ImageSets, loaded once


def benchmark_runs(models: list[str], common: dict) -> list[TrainingRun]:
    """Full-cloud then hierarchical at every separation point, per model."""
    runs = []
    for name in models:
        points = build_model(name, DATASET, common["width"]).split_points
        runs.append(TrainingRun.of(name, "full_cloud", "", "", **common))
        runs += [TrainingRun.of(name, "hierarchical", point, "fp32", **common) for point in points]
    return runs


def train_one(run: TrainingRun, threads: int, progress: bool) -> TrainingResult:
    """Train `run` on the full data set (loaded once per process) at `threads` torch threads."""
    global _worker_data
    if _worker_data is None:
        _worker_data = load_data(DATASET, None, None, run.seed, None, "auto")
    with torch_threads(threads):
        return train(run, *batch_loaders(run, *_worker_data), progress=progress)


def gain_points(result: TrainingResult, last: int) -> float:
    """Test-accuracy gain over the last `last` epochs, in points: acc[E] - acc[E - last]."""
    accuracies = [e.final_accuracy for e in result.epochs]
    last = min(last, len(accuracies) - 1)
    return 100 * (accuracies[-1] - accuracies[-1 - last]) if last > 0 else float("nan")


def describe(result: TrainingResult, plateau_epochs: int, plateau_points: float) -> str:
    """One line per run: the per-epoch test accuracy and the plateau check."""
    run = result.run
    curve = " ".join(f"{100 * e.final_accuracy:.2f}" for e in result.epochs)
    gain, window = gain_points(result, plateau_epochs), min(plateau_epochs, len(result.epochs) - 1)
    verdict = "plateaued" if abs(gain) < plateau_points else "NOT plateaued"
    exit_curve = ""
    if run.method == "hierarchical":
        exit_curve = "; early exit " + " ".join(f"{100 * e.early_exit_accuracy:.2f}" for e in result.epochs)
    label = f"{run.model} {run.method}" + (f"@{run.split}" if run.split else "")
    source = "cached" if result.cached else "trained"
    return (f"  {label:<31} per-epoch test acc % {curve}{exit_curve}\n"
            f"  {'':<31} last epoch {gain_points(result, 1):+.2f}, last {window} epochs {gain:+.2f} points"
            f" -> {verdict} (< {plateau_points:g}); {sum(e.wall_time_s for e in result.epochs):.0f} s, {source}")


def rows(runs: list[TrainingRun], results: dict[TrainingRun, TrainingResult], plateau_epochs: int,
         plateau_points: float) -> list[dict]:
    """The table's rows, in benchmark order, for the runs that have finished."""
    baseline = {run.model: results[run].final.final_accuracy
                for run in runs if run.method == "full_cloud" and run in results}
    table = []
    for run in runs:
        if run not in results:
            continue
        result = results[run]
        final = result.final
        drop = 100 * (baseline[run.model] - final.final_accuracy) if run.model in baseline else float("nan")
        gain = gain_points(result, plateau_epochs)
        table.append({
            "model": run.model, "method": run.method, "split": run.split or "-", "dataset": run.dataset,
            "width": run.width, "epochs": run.epochs, "batch_size": run.batch_size,
            "final_accuracy": round(100 * final.final_accuracy, 2),
            "best_accuracy": round(100 * max(e.final_accuracy for e in result.epochs), 2),
            "early_exit_accuracy": "" if run.method != "hierarchical" else round(100 * final.early_exit_accuracy, 2),
            "drop_vs_full_cloud_points": "" if run.method == "full_cloud" else round(drop, 2),
            "gain_last_epochs_points": round(gain, 2), "plateaued": abs(gain) < plateau_points,
            "train_wall_s": round(sum(e.wall_time_s for e in result.epochs), 1),
            "per_epoch_accuracy": " ".join(f"{100 * e.final_accuracy:.2f}" for e in result.epochs),
            "device": result.device_name, "cache_key": run.key()})
    return table


def print_table(table: list[dict]) -> None:
    print(f"\n{'model':<9} {'method':<13} {'split':<9} {'epochs':>6} {'final %':>8} {'best %':>7} {'exit %':>7} "
          f"{'drop pts':>8} {'plateau':>7} {'wall s':>7}")
    for r in table:
        exit_acc = f"{r['early_exit_accuracy']:.2f}" if r["early_exit_accuracy"] != "" else "-"
        drop = f"{r['drop_vs_full_cloud_points']:+.2f}" if r["drop_vs_full_cloud_points"] != "" else "-"
        print(f"{r['model']:<9} {r['method']:<13} {r['split']:<9} {r['epochs']:>6} {r['final_accuracy']:>8.2f} "
              f"{r['best_accuracy']:>7.2f} {exit_acc:>7} {drop:>8} {'yes' if r['plateaued'] else 'no':>7} "
              f"{r['train_wall_s']:>7.0f}")


def write_csv(path: str, table: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(table)
    atomic_write_text(path, buffer.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=0.125, help="channel width multiplier (1: the paper's)")
    parser.add_argument("--epochs", type=int, default=6, help="epochs per run (the cosine schedule spans them)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads per run")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once, each in its own process")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plateau-epochs", type=int, default=3, help="window of the plateau check, in epochs")
    parser.add_argument("--plateau-points", type=float, default=0.3, help="largest gain over the window that "
                        "counts as a plateau, in accuracy points")
    parser.add_argument("--out", default="reports/convergence.csv", help="CSV of the table (written whole)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    if args.epochs < 1 or args.threads < 1 or args.jobs < 1:
        parser.error("--epochs, --threads and --jobs must be at least 1")

    common = {"dataset": DATASET, "width": args.width, "epochs": args.epochs, "train_subset": None,
              "test_subset": None, "batch_size": args.batch_size, "optimizer": OptimizerConfig(), "seed": args.seed,
              "device": args.device}
    runs = benchmark_runs(args.models, common)
    cache = TrainingCache()
    results = {run: cached for run in runs if (cached := cache.get(run)) is not None}
    todo = [run for run in runs if run not in results]
    print(f"{len(runs)} runs ({', '.join(args.models)}; full-cloud + hierarchical at every point), width "
          f"{args.width:g}, {args.epochs} epochs, {DATASET} 60,000 train / 10,000 test, batch {args.batch_size}, "
          f"device {args.device}; {len(results)} cached, {len(todo)} to train with {args.jobs} job(s) x "
          f"{args.threads} thread(s)", flush=True)
    started = time.perf_counter()

    def finished(result: TrainingResult) -> None:
        if not result.cached:
            cache.put(result)
        results[result.run] = result
        print(f"[{time.perf_counter() - started:6.0f} s, {len(results)}/{len(runs)}]\n"
              f"{describe(result, args.plateau_epochs, args.plateau_points)}", flush=True)
        write_csv(args.out, rows(runs, results, args.plateau_epochs, args.plateau_points))

    for run in runs:
        if run in results:
            print(describe(results[run], args.plateau_epochs, args.plateau_points))
    if args.jobs == 1:
        for run in todo:
            finished(train_one(run, args.threads, not args.no_progress))
    elif todo:
        # Longest first (ResNet-18 before VGG-16 at equal width), so the pool ends together.
        todo.sort(key=lambda run: run.model != "resnet18")
        context = multiprocessing.get_context("spawn")  # no fork after torch has started its threads
        with concurrent.futures.ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
            futures = [pool.submit(train_one, run, args.threads, False) for run in todo]
            for future in concurrent.futures.as_completed(futures):
                finished(future.result())

    table = rows(runs, results, args.plateau_epochs, args.plateau_points)
    print_table(table)
    write_csv(args.out, table)
    print(f"\nbenchmark wall time {time.perf_counter() - started:.0f} s; "
          f"{sum(r['plateaued'] for r in table)}/{len(table)} runs plateaued "
          f"(gain over the last {args.plateau_epochs} epochs < {args.plateau_points:g} points); CSV: {args.out}")


if __name__ == "__main__":
    main()
