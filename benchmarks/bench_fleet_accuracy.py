"""Fleet accuracy benchmark: each method's proxy accuracy when N edges train with one cloud,
on IID and on non-IID (Dirichlet) splits of the data.

    python benchmarks/bench_fleet_accuracy.py [--edges 4] [--epochs 3] [--train-subset 10000]
                                              [--test-subset 2000] [--width 0.125] [--model vgg16]
                                              [--split STAGE] [--codec fp32] [--alpha 0.5]
                                              [--device cpu] [--no-progress]

Why: a scenario's fleet rows take their accuracy from this training (`training.fleet`), at proxy
scale. This prints the figures side by side, so the effect of the fleet's form - turns or
SplitFed averaging for split learning, edge parts averaged or not for hierarchical training - and
of skewed data shows before a scenario quotes them.

What it trains, with the simulator's own code (`fleet_accuracy`: the same partition, trainers,
cache and Fashion-MNIST proxy as a scenario's fleet): every method and fleet mode - full_cloud,
split_learning sequential and parallel, hierarchical with edge_sync none and epoch - on the
training subset split equally across `--edges` edges, IID and Dirichlet(`--alpha`); SGD lr 0.05,
momentum 0.9, weight decay 5e-4, cosine, batches of 32, seed 0; the separation point is the
model's middle one unless `--split` names another. 10 runs; with the defaults each takes
about 20 s on one core of this machine (about 4 minutes in all).

Columns: final_accuracy (share-weighted mean over edges of edge i's part + the cloud part),
exit_mean / exit_min / exit_max (the early exit's test accuracy: weighted mean, worst and best
edge; hierarchical only), edge_samples (what each edge got from the split), train_wall_s (the
runs' training time, evaluation excluded, as cached - a cached run prints at once).
full_cloud trains on the union of the shares, so its two rows are the same training.
"""
import argparse
import math
import time

import pandas as pd

from simulator.core.names import FULL_CLOUD, HIERARCHICAL, SPLIT_LEARNING
from simulator.models import build_model
from simulator.training.fleet import FleetTrainingRun, fleet_accuracy
from simulator.training.optimizer import OptimizerConfig
from simulator.training.runs import TrainingRun

DATASET = "fashion-mnist"
MODES = [(FULL_CLOUD, {}), (SPLIT_LEARNING, {"split_learning": "sequential"}),
         (SPLIT_LEARNING, {"split_learning": "parallel"}), (HIERARCHICAL, {"edge_sync": "none"}),
         (HIERARCHICAL, {"edge_sync": "epoch"})]


def benchmark_runs(args: argparse.Namespace) -> list[FleetTrainingRun]:
    points = build_model(args.model, DATASET, args.width).split_points
    point = args.split or points[len(points) // 2]  # the middle one, as single-edge training cuts full_cloud
    shares = (args.train_subset // args.edges,) * args.edges
    runs = []
    for alpha in (None, args.alpha):
        for method, fleet in MODES:
            cut = method != FULL_CLOUD
            run = TrainingRun(model=args.model, method=method, split=point if cut else "", codec=args.codec if cut else "",
                              dataset=DATASET, width=args.width, epochs=args.epochs, train_subset=args.train_subset,
                              test_subset=args.test_subset, batch_size=32, optimizer=OptimizerConfig(), seed=0,
                              device=args.device)
            runs.append(FleetTrainingRun(run, shares, alpha, **fleet))
    return runs


def table(results) -> pd.DataFrame:
    rows = []
    for run, result in results.items():
        exits = [a for a in result.edge_exit_accuracy if not math.isnan(a)]
        rows.append({"method": run.run.method, "mode": run.mode or "-",
                     "partition": "iid" if run.dirichlet_alpha is None else f"dirichlet {run.dirichlet_alpha:g}",
                     "final_accuracy": result.final.final_accuracy, "exit_mean": result.final.early_exit_accuracy,
                     "exit_min": min(exits, default=math.nan), "exit_max": max(exits, default=math.nan),
                     "edge_samples": "/".join(map(str, result.edge_samples)),
                     "train_wall_s": sum(e.wall_time_s for e in result.epochs), "cached": result.cached})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edges", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-subset", type=int, default=10000)
    parser.add_argument("--test-subset", type=int, default=2000)
    parser.add_argument("--width", type=float, default=0.125)
    parser.add_argument("--model", default="vgg16")
    parser.add_argument("--split", default="", help="separation point (default: the model's middle one)")
    parser.add_argument("--codec", default="fp32")
    parser.add_argument("--alpha", type=float, default=0.5, help="Dirichlet alpha of the non-IID split")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    start = time.perf_counter()
    runs = benchmark_runs(args)
    results = fleet_accuracy(runs, None, "auto", progress=not args.no_progress)
    print(f"{args.model} width {args.width:g} cut at {runs[-1].run.split}, {args.edges} edges, {args.train_subset} training samples, "
          f"{args.epochs} epochs, tested on {args.test_subset}, codec {args.codec}")
    print(table(results).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"benchmark wall time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
