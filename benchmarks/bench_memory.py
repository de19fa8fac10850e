"""Fidelity of the edge memory model: predicted against measured peak memory of hierarchical
edge training, at every separation point.

    python benchmarks/bench_memory.py [--widths 0.25 1.0] [--datasets cifar10 fashion-mnist]
                                      [--device cpu|cuda] [--buffer-batches 8] [--codec fp32]

For each model, dataset and width it measures a profile (`simulate profile`'s code, one
timing repeat: only its memory fields are used), predicts the edge's peak with
`memory.edge_memory`, and measures the real peak of a steady-state hierarchical edge step
(`memory_probe.measure_edge_training_peak_bytes`: CUDA's max_memory_allocated on a GPU, the
profiler's allocation record on the CPU). Target: every |error| within 15%.
"""
import argparse

import torch

from simulator.costmodel.memory import MB, edge_memory
from simulator.data.specs import get_dataset_spec
from simulator.models import PAPER_MODELS as MODELS, build_model
from simulator.models.device import resolve_device
from simulator.models.split import split
from simulator.profiling.measure import measure_profile
from simulator.profiling.memory_probe import measure_edge_training_peak_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=float, nargs="+", default=[0.25, 1.0])
    parser.add_argument("--datasets", nargs="+", default=["cifar10", "fashion-mnist"])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--buffer-batches", type=int, default=8)
    parser.add_argument("--codec", default="fp32")
    args = parser.parse_args()
    device = resolve_device(args.device, "--device")
    print(f"device {device}, torch threads {torch.get_num_threads()}, batch {args.batch_size}, "
          f"uplink buffer {args.buffer_batches} batches, codec {args.codec}\n")
    print(f"{'model':<9} {'dataset':<14} {'width':>5} {'split':<9} {'predicted MiB':>13} {'measured MiB':>12} "
          f"{'error':>7}  peak phase")
    errors = []
    for dataset in args.datasets:
        classes = get_dataset_spec(dataset).num_classes
        for width in args.widths:
            for name in args.models:
                profile = measure_profile(name, dataset, args.batch_size, device.type, repeats=1, warmup=0,
                                          width=width, progress=False)
                for point in profile.layer_names[:-1]:
                    predicted = edge_memory(profile, point, args.buffer_batches, args.codec)
                    torch.manual_seed(0)
                    model = build_model(name, dataset, width)
                    measured = measure_edge_training_peak_bytes(model, split(model, point), args.batch_size, classes,
                                                                args.buffer_batches, args.codec, device)
                    error = predicted.peak_bytes / measured - 1
                    errors.append(abs(error))
                    print(f"{name:<9} {dataset:<14} {width:>5} {point:<9} {predicted.peak_mib:>13.2f} "
                          f"{measured / MB:>12.2f} {100 * error:>+6.1f}%  {predicted.peak_phase}")
    print(f"\n{len(errors)} points: mean |error| {100 * sum(errors) / len(errors):.1f}%, "
          f"max |error| {100 * max(errors):.1f}% (target: within 15%)")


if __name__ == "__main__":
    main()
