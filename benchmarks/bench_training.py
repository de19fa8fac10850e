"""Real-training benchmark: throughput of each method against a bare PyTorch loop, and the
accuracy the shipped scenario's proxy training reaches.

    python benchmarks/bench_training.py [--batches 40] [--rounds 3] [--skip-accuracy]

(a) Images/s of MethodTrainer (full_cloud, split_learning, hierarchical) and of a bare loop
    (`training.bare_training_loop`: zero_grad, forward, cross-entropy, backward, SGD step) on
    the same model and the same real Fashion-MNIST batches, all CPU threads. Rounds are
    interleaved and the median kept, so drift on a shared machine hits every method alike.
(b) Final and early-exit accuracy of scenarios/low_bitrate.yaml's training settings at the
    points of (a) (VGG-16 stage3, ResNet-18 layer3_1; the scenario itself uses split: auto),
    reused from .cache/training/ when present, else trained: about 5 minutes on 2 cores.
"""
import argparse
import os
import statistics
import time

import torch

from simulator.data.batching import BatchLoader, subset
from simulator.data.readers import load_dataset
from simulator.models import build_model
from simulator.scenario.load import load_scenario
from simulator.training.methods import MethodTrainer, bare_training_loop
from simulator.training.optimizer import OptimizerConfig
from simulator.training.runs import proxy_note, scenario_accuracy

CASES = [("vgg16", "stage3"), ("resnet18", "layer3_1")]


def method_images_per_s(arch: str, point: str, method: str, batches: list) -> float:
    torch.manual_seed(0)
    trainer = MethodTrainer(build_model(arch, "fashion-mnist", 0.25), point, method, "fp32", OptimizerConfig(),
                            len(batches))
    trainer.train(True)
    start = time.perf_counter()
    for x, y in batches:
        trainer.step(x, y)
    return sum(len(y) for _, y in batches) / (time.perf_counter() - start)


def bare_images_per_s(arch: str, batches: list) -> float:
    torch.manual_seed(0)
    return bare_training_loop(build_model(arch, "fashion-mnist", 0.25), batches, OptimizerConfig())


def throughput(n_batches: int, rounds: int) -> None:
    data = subset(load_dataset("fashion-mnist", "train"), 32 * (n_batches + 5), 0)
    batches = list(BatchLoader(data, 32, True, 0))
    warmup, timed = batches[:5], batches[5:]
    print(f"(a) training throughput, width 0.25, Fashion-MNIST batches of 32, {len(timed)} batches, "
          f"{torch.get_num_threads()} threads, median of {rounds} interleaved rounds")
    for arch, point in CASES:
        runners = {"bare loop": lambda: bare_images_per_s(arch, timed)}
        for method in ("full_cloud", "split_learning", "hierarchical"):
            runners[method] = lambda method=method: method_images_per_s(arch, point, method, timed)
        bare_images_per_s(arch, warmup)
        samples = {name: [] for name in runners}
        for _ in range(rounds):
            for name, run in runners.items():
                samples[name].append(run())
        bare = statistics.median(samples["bare loop"])
        for name, values in samples.items():
            median = statistics.median(values)
            print(f"    {arch:<9} {name:<15} {median:8.1f} images/s  ({100 * median / bare:5.1f}% of bare)")


def accuracy() -> None:
    scenario = load_scenario("scenarios/low_bitrate.yaml")
    for model, (arch, point) in zip(scenario.workload.models, CASES):  # the throughput cases' points, not auto
        model.split = point
    started = time.perf_counter()
    results = scenario_accuracy(scenario, progress=False)
    source = "cache" if all(r.cached for r in results.values()) else f"trained in {time.perf_counter() - started:.0f} s"
    print(f"(b) accuracy, scenarios/low_bitrate.yaml ({proxy_note(scenario)}; {source})")
    for (model, method, _split), result in results.items():
        run, final = result.run, result.final
        exit_acc = "" if run.method != "hierarchical" else f", early exit {100 * final.early_exit_accuracy:.1f}%"
        per_epoch = " ".join(f"{100 * e.final_accuracy:.1f}" for e in result.epochs)
        print(f"    {model:<9} {method:<15} split {run.split or '-':<9} final {100 * final.final_accuracy:.1f}%"
              f"{exit_acc}  (per epoch: {per_epoch})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    throughput(args.batches, args.rounds)
    if not args.skip_accuracy:
        accuracy()


if __name__ == "__main__":
    main()
