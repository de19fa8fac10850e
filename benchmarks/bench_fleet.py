"""Fleets: simulation throughput against the fleet size, and the scaling curves of
scenarios/fleet.yaml; prints figures, asserts nothing.

    (a) batches simulated per second at 1, 10, 100 and 1,000 edges, per method (hierarchical
        with edge averaging, split learning sequential and parallel, full_cloud streamed), every
        edge a Jetson Orin Nano (shipped profile, VGG-16 on Fashion-MNIST at stage2) with its own
        10 Mbit/s link in a 200 Mbit/s cell, 4 A100s; `--batches` per edge;
    (b) scenarios/fleet.yaml without training: time per epoch, the cloud's utilisation and
        offered load against the fleet size, per method and mode, and where the cloud saturates.

    python benchmarks/bench_fleet.py             # (a) and (b), about 2 minutes here
    python benchmarks/bench_fleet.py --quick     # (a) at 1, 10 and 100 edges only
"""
import argparse
import math
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from simulator.costmodel import LinkSpec, batch_costs
from simulator.fleet.engine import simulate_fleet
from simulator.fleet.runs import weight_bytes
from simulator.fleet.spec import EdgeGroupSpec, FleetSpec
from simulator.profiling.schema import Profile
from simulator.report.fleet import saturation_edges
from simulator.sim import RunSpec

ROOT = Path(__file__).resolve().parent.parent

EDGE = ROOT / "profiles/jetson-orin-nano_vgg16_fashion-mnist_b32.json"
CLOUD = ROOT / "profiles/a100_vgg16_fashion-mnist_b32.json"
SPLIT = "stage2"
MODES = [("hierarchical", {"edge_sync": "epoch"}), ("split_learning", {"split_learning": "sequential"}),
         ("split_learning", {"split_learning": "parallel"}), ("full_cloud", {})]


def fleet_spec(method: str, mode: dict, edges: int, batches: int) -> FleetSpec:
    edge, cloud = Profile.load(EDGE), Profile.load(CLOUD)
    costs = batch_costs(edge, cloud, SPLIT, "fp16")
    run = RunSpec(method, costs, LinkSpec(10.0, 40.0), LinkSpec(20.0, 40.0), batches_per_epoch=batches // 2,
                  epochs=2, uplink_buffer_batches=8, edge_has_gpu=True, raw_upload="every_epoch",
                  fast_forward=False, trace_batches=0)
    group = EdgeGroupSpec("jetson", edges, run, weight_bytes(edge, SPLIT, method))
    return FleetSpec(method, (group,), cloud_gpus=4, cell_uplink_mbps=200.0, **mode)


def throughput(sizes: list[int], batches: int) -> pd.DataFrame:
    rows = []
    for edges in sizes:
        for method, mode in MODES:
            spec = fleet_spec(method, mode, edges, batches)
            start = time.perf_counter()
            result = simulate_fleet(spec)
            wall_s = time.perf_counter() - start
            total = edges * batches
            rows.append({"edges": edges, "method": method, "mode": spec.mode, "batches": total, "wall_s": wall_s,
                         "batches_per_s": total / wall_s, "simulated_s": result.total_time_s})
            print(f"  {edges:>5} edges  {method:<15} {spec.mode:<22} {total:>8,} batches  {wall_s:7.2f} s  "
                  f"{total / wall_s:9,.0f} batches/s", flush=True)
    return pd.DataFrame(rows)


def scaling(scenario: Path) -> pd.DataFrame:
    from simulator.fleet.runner import run_fleet
    from simulator.scenario.load import load_scenario

    with tempfile.TemporaryDirectory() as folder:
        data = yaml.safe_load(scenario.read_text())
        data["output_dir"] = folder
        copy = Path(folder) / scenario.name
        copy.write_text(yaml.safe_dump(data))
        import os

        cwd = os.getcwd()
        os.chdir(ROOT)  # profiles/ and traces/ open from the repository
        try:
            table = run_fleet(load_scenario(str(copy)), progress=False, train=False)
        finally:
            os.chdir(cwd)
    return table


def saturation_text(table: pd.DataFrame) -> list[str]:
    """Where each method's offered load crosses the cloud's GPUs (the report's rule)."""
    lines = []
    for (method, mode), rows in table.groupby(["method", "fleet_mode"], sort=False):
        rows = rows.drop_duplicates("edges")
        edges = saturation_edges(rows.edges, rows.cloud_offered_load, rows.cloud_gpus)
        ratio = (rows.sort_values("edges").cloud_offered_load / rows.cloud_gpus).dropna()
        state = (f"saturates at about {edges:.0f} edges" if math.isfinite(edges) else "no offered load" if ratio.empty
                 else "saturated from the smallest fleet" if ratio.iloc[0] >= 1 else
                 f"never saturates (offered load {ratio.iloc[-1]:.2f} GPUs at the largest fleet)")
        lines.append(f"  {method:<15} {mode:<28} {state}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="(a) at 1, 10 and 100 edges; no (b)")
    parser.add_argument("--batches", type=int, default=40, help="batches per edge (2 epochs)")
    parser.add_argument("--scenario", default=str(ROOT / "scenarios/fleet.yaml"))
    args = parser.parse_args()
    sizes = [1, 10, 100] if args.quick else [1, 10, 100, 1000]
    print(f"(a) simulation throughput, {args.batches} batches per edge:")
    table = throughput(sizes, args.batches)
    flat = table.pivot_table(index="edges", columns="mode", values="batches_per_s")
    print("\nbatches/s by fleet size (columns: mode):\n")
    print(flat.to_string(float_format=lambda v: f"{v:,.0f}"))
    print(f"\nper batch, {sizes[-1]:,} edges against 1 edge: "
          + ", ".join(f"{mode} {flat[mode].iloc[-1] / flat[mode].iloc[0]:.2f}x" for mode in flat.columns))
    if args.quick:
        return
    print(f"\n(b) {args.scenario} without training:")
    table = scaling(Path(args.scenario))
    shown = table.drop_duplicates(["method", "fleet_mode", "edges"])
    print(shown.pivot_table(index="edges", columns=["method", "fleet_mode"], values="time_per_epoch_s")
          .to_string(float_format=lambda v: f"{v:,.1f}"))
    print("\ncloud utilisation:\n")
    print(shown.pivot_table(index="edges", columns=["method", "fleet_mode"], values="cloud_utilisation")
          .to_string(float_format=lambda v: f"{v:.0%}"))
    print("\nthe cloud's saturation point:\n")
    print("\n".join(saturation_text(shown)))


if __name__ == "__main__":
    main()
