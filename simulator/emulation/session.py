"""What both workers agree on for one emulated run: the request, the model, the optimizer.

The edge worker drives: for every run it sends a `RunRequest`; the cloud worker checks it
against its own copy of the scenario, builds the same model from the same seed and answers
"ready". Both then train their part of `split(model, point)` as `training.MethodTrainer`
does, split across the two processes. The edge writes one `RunRecord` per run.
"""
import os
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from ..core.names import AUTO, FULL_CLOUD, HIERARCHICAL
from ..costmodel.costs import BatchCosts, batch_costs
from ..models import SplitModel, build_model, split
from ..profiling.schema import Profile
from ..scenario.config import Scenario
from ..training.methods import MethodTrainer
from ..training.optimizer import OptimizerConfig
from ..training.optimizer import sgd as build_sgd


@dataclass(frozen=True)
class RunRequest:
    """One run, as the edge asks the cloud for it."""

    model: str
    split: str
    method: str
    codec: str
    dataset: str
    batch_size: int
    width: float  # channel width multiplier, from the profiles
    uplink_mbps: float
    downlink_mbps: float
    latency_ms: float
    uplink_buffer_batches: int
    batches: int
    seed: int
    lr: float
    momentum: float
    weight_decay: float
    edge_threads: int  # torch intra-op threads of each worker (the profiles' `device.threads`)
    cloud_threads: int
    input_size: int | None = None  # workload.input_size
    points: list[str] | None = None  # workload.models[].points

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RunRequest":
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


def run_request(scenario: Scenario, model: str, split_point: str, method: str, uplink_mbps: float,
                batches: int) -> RunRequest:
    """The run of `model` cut at `split_point`, each worker at its profile's thread count."""
    n, a = scenario.network, scenario.accuracy
    return RunRequest(model=model, split=split_point, method=method, codec=n.codec,
                      dataset=scenario.workload.dataset, batch_size=scenario.workload.batch_size,
                      width=scenario.edge_profiles[model].width, uplink_mbps=uplink_mbps,
                      downlink_mbps=scenario.downlink_mbps(uplink_mbps), latency_ms=n.latency_ms,
                      uplink_buffer_batches=n.uplink_buffer_batches, batches=batches, seed=scenario.seed,
                      lr=a.lr, momentum=a.momentum, weight_decay=a.weight_decay,
                      edge_threads=profile_threads(scenario.edge_profiles[model]),
                      cloud_threads=profile_threads(scenario.cloud_profiles[model]),
                      input_size=scenario.workload.input_size,
                      points=next(m.points for m in scenario.workload.models if m.name == model))


def cutting_method(method: str) -> str:
    """The method whose point a run uses: its own, and hierarchical's for full_cloud (whose
    processes still hold the network in two parts, with the same math)."""
    return HIERARCHICAL if method == FULL_CLOUD else method


def mismatch(scenario: Scenario, request: RunRequest) -> str:
    """Why the cloud's scenario cannot serve `request` ('' when it can). Its split must be the
    scenario's, or, under `split: auto`, any separation point of the cloud profile."""
    if request.model not in scenario.cloud_profiles:
        return f"{scenario.path}: the cloud worker's scenario has no model {request.model!r}"
    model = next(m for m in scenario.workload.models if m.name == request.model)
    configured = model.split_for(cutting_method(request.method))
    points = scenario.cloud_profiles[request.model].layer_names[:-1]
    if request.split not in (points if configured == AUTO else [configured]):
        return (f"{scenario.path}: the cloud worker's scenario has split {configured!r} for {request.model}, the "
                f"edge asked for {request.split!r}; give both workers the same scenario")
    mine = run_request(scenario, request.model, request.split, request.method, request.uplink_mbps, request.batches)
    for key in ("codec", "dataset", "batch_size", "input_size", "points"):
        if getattr(mine, key) != getattr(request, key):
            return (f"{scenario.path}: the cloud worker's scenario has {key} {getattr(mine, key)!r}, the edge's "
                    f"{getattr(request, key)!r}; give both workers the same scenario")
    if scenario.cloud_profiles[request.model].width != request.width:
        return (f"{scenario.path}: the cloud profile of {request.model} is for width "
                f"{scenario.cloud_profiles[request.model].width:g}, the edge's for {request.width:g}")
    return ""


@dataclass(frozen=True)
class RunRecord:
    """What the edge observed of one run (times in seconds, this machine's clocks)."""

    model: str
    split: str
    method: str
    uplink_mbps: float
    batches: int
    status: str  # ok | cloud_lost | skipped
    measured_s: float | None  # until the last batch was trained (max of edge_s, cloud_s); None unless ok
    edge_s: float | None  # edge: start to its last batch done (trained, or queued for full_cloud)
    cloud_s: float | None  # cloud: "ready" to its last batch trained
    edge_batches: int  # batches the edge finished
    cloud_batches: int | None  # batches the cloud trained (None when it never said)
    edge_compute_ms: float | None  # mean per batch: prep + forward/backward/step + encoding, edge
    edge_backward_ms: float | None  # split learning: the part of it after the gradient came down
    cloud_compute_ms: float | None  # mean per batch: decode + forward/backward/step (+ encoding), cloud
    link_late_ms: float  # mean real hand-over time after each scheduled delivery (wire + wake-up)
    bytes_up: int  # bytes charged on the uplink (the simulator's count)
    bytes_down: int
    batches_dropped: int  # payloads the uplink discarded under a drop_* buffer policy (hierarchical)
    edge_threads: int
    cloud_threads: int | None
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def profile_threads(profile: Profile) -> int:
    """The intra-op thread count the profile was measured with (all cores when it does not say).
    Only the launcher reads it; workers get it in the RunRequest."""
    return profile.device.threads or os.cpu_count() or 1


def use_device(profile: Profile, threads: int) -> torch.device:
    """Run like the profile was measured: `threads` intra-op threads, and CUDA for a CUDA profile."""
    torch.set_num_threads(threads)
    return torch.device("cuda" if profile.device.kind == "cuda" else "cpu")


def declared(request: RunRequest) -> tuple[str, ...] | None:
    return tuple(request.points) if request.points else None


def build_parts(request: RunRequest, device: torch.device) -> tuple[SplitModel, tuple[int, ...]]:
    """The split model both workers build from the same seed (each uses its own part), and
    the shape of one batch of features at the separation point."""
    torch.manual_seed(request.seed)
    model = build_model(request.model, request.dataset, request.width, request.input_size, declared(request))
    parts = split(model, request.split)
    for module in parts.modules().values():
        module.to(device).train()
    return parts, (request.batch_size, *model.feature(request.split).shape)


def warm_up(request: RunRequest, input_shape: list[int], device: torch.device) -> None:
    """One untimed step of the whole method on a throwaway model, before the clock starts.

    The first optimizer step of a process imports half of torch (about 1.4 s here) and every
    new tensor shape sets up its kernels once; the profiler leaves both out with its warm-up
    runs, so the emulation does too. The real model is built afterwards from its own seed."""
    model = build_model(request.model, request.dataset, request.width, request.input_size, declared(request)).to(device)
    trainer = MethodTrainer(model, request.split, request.method, request.codec,
                            OptimizerConfig(lr=request.lr, schedule="constant"), total_steps=1).to(device)
    x = torch.randn(request.batch_size, *input_shape, device=device)
    trainer.step(x, torch.randint(0, model.num_classes, (request.batch_size,), device=device))


@dataclass
class WorkerSetup:
    """One worker's side of a run, ready before the clock starts."""

    threads: int  # torch intra-op threads, from the request
    device: torch.device
    parts: SplitModel
    shape: tuple[int, ...]  # one batch of features at the separation point
    costs: BatchCosts  # what the simulator charges per batch (payload bytes)


def set_up(scenario: Scenario, request: RunRequest, side: str) -> WorkerSetup:
    """The `side` ("edge" or "cloud") profile's threads and device, a warm-up step, the model."""
    edge, cloud = scenario.edge_profiles[request.model], scenario.cloud_profiles[request.model]
    profile = edge if side == "edge" else cloud
    threads = request.edge_threads if side == "edge" else request.cloud_threads
    device = use_device(profile, threads)
    warm_up(request, profile.input_shape, device)
    parts, shape = build_parts(request, device)
    return WorkerSetup(threads, device, parts, shape, batch_costs(edge, cloud, request.split, request.codec))


def sgd(modules: list[nn.Module], request: RunRequest) -> torch.optim.Optimizer:
    """SGD with momentum over the modules' parameters (the accuracy section's settings, constant rate)."""
    return build_sgd((p for module in modules for p in module.parameters()),
                     OptimizerConfig(lr=request.lr, momentum=request.momentum, weight_decay=request.weight_decay,
                                     schedule="constant"))


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
