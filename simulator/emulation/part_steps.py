"""Whole-part step times (`costs.PartSteps`): each worker's per-batch computation, timed in one
piece on this machine at the profile's thread count.

The profile times every block alone; a training step runs them as one chain. Alone, a block
allocates its output afresh and starts with cold caches, so on this repository's 2-core CPU
at one thread the per-block sum over-states VGG-16's (width 0.25) edge step by about 20%
and the whole model's by about 15% - far beyond the 5% the emulation is held to. These
files hold the chain's times (warm-up runs, then the 10th percentile of 60 back-to-back
repeats on an idle machine; `step_ms` says why not the median), with exactly the code the workers run
(`compute`), codec encoding and decoding included:

    simulate emulate SCENARIO.yaml --measure-steps

writes, beside each edge profile, `<profile stem>.steps-<split>-<codec>.json`; the
simulator's prediction for an emulated run then uses them (validation.csv says which).
Both parts are measured on the machine the command runs on.
"""
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import torch

from ..core.files import atomic_write_text
from ..data.batching import get_preprocess
from ..scenario.config import Scenario
from .compute import cloud_features, cloud_raw, edge_hierarchical, edge_split_backward, edge_split_forward
from .payloads import encode_raw, encode_with_labels
from .prediction import steps_path
from .session import build_parts, profile_threads, run_request, sgd, use_profile_device, warm_up

SCHEMA = "part_steps/1"
STEPS_CHILD = "SIMULATOR_PART_STEPS_CHILD"  # set in the measuring child process
QUANTILE = 10  # percent: the step time kept is the 10th percentile of the repeats (step_ms)


def step_ms(run: Callable[..., object], warmup: int, repeats: int,
            setup: Callable[[], object] = lambda: None) -> float:
    """The undisturbed wall time of run(setup()) (run() without a setup): the QUANTILE-th
    quantile of `repeats` runs after `warmup`, the setup untimed.

    Not the median: on a shared machine interference only ever adds time and comes in spells
    of seconds to minutes, so a median taken during a slow spell is 10-15% high (seen here:
    medians of 40.2, 42.8 and 46.4 ms for the same edge step within an hour, while the runs
    themselves trained at 38-40 ms per batch). A low quantile of many repeats is stable."""
    samples = []
    for index in range(warmup + repeats):
        state = setup()
        started = time.perf_counter()
        run(state) if state is not None else run()
        if index >= warmup:
            samples.append((time.perf_counter() - started) * 1e3)
    return statistics.quantiles(samples, n=100, method="inclusive")[QUANTILE - 1]


def measure_part_steps(scenario: Scenario, model: str, warmup: int = 3, repeats: int = 60) -> dict:
    """Time every computation of both workers on random data (seconds -> ms in the result)."""
    times: dict[str, float] = {}
    for side, profile in (("edge", scenario.edge_profiles[model]), ("cloud", scenario.cloud_profiles[model])):
        device = use_profile_device(profile)
        request = run_request(scenario, model, "split_learning", 1.0, 1)
        warm_up(request, profile.input_shape, device)
        parts, shape = build_parts(request, device)
        batch = request.batch_size
        x = torch.randn(batch, *profile.input_shape, device=device)
        y = torch.randint(0, 10, (batch,), device=device)
        codec = request.codec
        if side == "edge":
            hierarchical = sgd([parts.edge, parts.early_exit], request)
            times["hierarchical_edge_ms"] = step_ms(lambda: edge_hierarchical(parts, hierarchical, x, y, codec),
                                                      warmup, repeats)
            edge_only = sgd([parts.edge], request)
            times["split_edge_forward_ms"] = step_ms(lambda: edge_split_forward(parts, edge_only, x, y, codec),
                                                       warmup, repeats)
            gradient = cloud_features(parts, sgd([parts.cloud], request), encode_with_labels(codec, parts.edge(x), y),
                                      codec, shape, device, send_gradient=True)
            times["split_edge_backward_ms"] = step_ms(
                lambda activations: edge_split_backward(edge_only, activations, gradient, codec), warmup, repeats,
                setup=lambda: edge_split_forward(parts, edge_only, x, y, codec)[0])
        else:
            body = encode_with_labels(codec, parts.edge(x).detach(), y)
            cloud = sgd([parts.cloud], request)
            for method, send in (("hierarchical", False), ("split", True)):
                times[f"{method}_cloud_ms"] = step_ms(
                    lambda: cloud_features(parts, cloud, body, codec, shape, device, send), warmup, repeats)
            raw = encode_raw(torch.randint(0, 256, (batch, *profile.input_shape), dtype=torch.uint8), y.cpu())
            affine = tuple(t.to(device) for t in get_preprocess(request.dataset).affine())
            whole = sgd([parts.edge, parts.cloud], request)
            times["full_cloud_ms"] = step_ms(
                lambda: cloud_raw(parts, whole, raw, (batch, *profile.input_shape), affine, device), warmup, repeats)
    return times


def measure_like_the_workers(scenario_path: str) -> None:
    """Measure in a process started as the workers are (`launcher.worker_env`: OMP_NUM_THREADS
    at the profile's thread count from the start, not lowered later by torch.set_num_threads,
    which left the edge step about 1 ms, 2.5%, slower here), then print what was written."""
    from ..core.errors import UserError
    from ..scenario.config import load_scenario
    from .processes import worker_env
    from .session import profile_threads

    scenario = load_scenario(scenario_path)
    if os.environ.get(STEPS_CHILD) == "1":
        print(f"wrote {', '.join(map(str, write_part_steps(scenario)))}")
        return
    threads = max(profile_threads(p) for p in scenario.edge_profiles.values())
    env = worker_env(threads) | {STEPS_CHILD: "1"}
    child = subprocess.run([sys.executable, "-m", "simulator", "emulate", scenario_path, "--measure-steps"], env=env)
    if child.returncode != 0:
        raise UserError(f"measuring part steps failed (exit status {child.returncode})")


def write_part_steps(scenario: Scenario, warmup: int = 3, repeats: int = 60) -> list[Path]:
    """Measure and write the part steps of every model of the scenario."""
    written = []
    for m in scenario.workload.models:
        edge, cloud = scenario.edge_profiles[m.name], scenario.cloud_profiles[m.name]
        steps = measure_part_steps(scenario, m.name, warmup, repeats)
        data = {"schema": SCHEMA, "model": m.name, "dataset": scenario.workload.dataset, "width": edge.width,
                "batch_size": scenario.workload.batch_size, "split": m.split, "codec": scenario.network.codec,
                "edge_device": asdict(edge.device) | {"threads": profile_threads(edge)},
                "cloud_device": asdict(cloud.device) | {"threads": profile_threads(cloud)},
                "torch_version": torch.__version__, "warmup": warmup, "repeats": repeats,
                "statistic": f"{QUANTILE}th percentile",
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "steps_ms": steps}
        path = steps_path(scenario, m.name)
        atomic_write_text(path, json.dumps(data, indent=1) + "\n")
        written.append(path)
    return written
