"""Accuracy of a fleet - N edges training with one cloud - from real training at proxy scale.

A `FleetTrainingRun` is a `TrainingRun` (model, method, split, codec, proxy data, optimizer,
seed) plus the fleet: each edge's share of the workload's samples, how the data is split, and
how the method runs across edges. Fleets of up to MAX_TRAINED_EDGES edges are trained; a larger
fleet's accuracy stays empty.

Data. The proxy's training set (`train_subset` samples, as `load_data` gives) is split across
the edges by `partition.partition` with sizes proportional to the shares: IID (a seeded random
split) or non-IID (per class, Dirichlet(alpha * w) proportions, w the shares normalised to mean
1; every edge gets at least one batch where the data allows). Edge i shuffles its own samples
every epoch with seed + i. Seeded from the run's seed: the same run trains the same way.

Models. One model is built with torch.manual_seed(seed); every edge part (and early exit)
starts from its weights. Per method (steps are `MethodTrainer.step`; see `fleet_trainer`):

    full_cloud           one model trained on the union of the shares - the whole training set,
                         shuffled each epoch - which is single-edge full-cloud training
                         (`runs.train`) exactly; it does not depend on the shares or the split.
    split_learning
      sequential         one edge part and one cloud part (Gupta & Raskar 2018). Each epoch the
                         edges take turns in edge order, each training all batches of its share
                         (activations up, gradients down through the codec); the edge part's
                         weights pass to the next edge through the cloud. Each edge keeps its own
                         optimizer (momentum) for the edge part; the cloud has one.
      parallel           SplitFed (Thapa et al., AAAI 2022): every edge its own edge part, one
                         shared cloud part; the edges' batches interleave round robin; at each
                         epoch's end the edge parts are averaged (FedAvg, weighted by samples,
                         parameters and buffers) and every edge continues from the average.
    hierarchical         every edge its own edge part and early exit, trained on its own share
                         with the exit's loss; the one cloud part trains on the merged stream of
                         features (round robin, through the codec, detached: no gradient returns).
                         edge_sync "epoch" averages edge parts and exits at each epoch's end as
                         above; "none" never does.

Momentum stays with each edge's optimizer in every mode; only weights travel. LR (cosine): each
optimizer decays to 0 over the steps it takes - an edge's over epochs x its batches, the cloud's
over epochs x all edges' batches.

Evaluation after each epoch, on the test subset: edge i's final accuracy is that of
cloud(codec(edge_i(x))), its early-exit accuracy that of exit_i(edge_i(x)). An epoch's
final_accuracy and early_exit_accuracy are the share-weighted means over the edges (exit: nan
unless hierarchical). Where all edges hold one edge part (full_cloud, sequential, averaged) the
parts are evaluated once. With one edge, every method trains exactly as `runs.train` does on
the same data (same batches, same steps; tests/test_fleet_training.py checks it).

Each finished run is cached as one JSON file under default_cache_dir()/fleet, written whole.
"""
import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..core.executors import CPU_JOB, SERIAL, Executor, Resources
from ..core.names import (
    EDGE_SYNCS,
    FULL_CLOUD,
    HIERARCHICAL,
    SPLIT_LEARNING,
    SPLIT_LEARNING_MODES,
)
from ..core.progress import progress_bar
from ..data.batching import BatchLoader
from ..models import build_model, model_slug
from ..models.device import resolve_device
from .fleet_trainer import FleetTrainer
from .methods import MethodTrainer
from .partition import partition
from .runs import (
    TRAINING_CODE_VERSION,
    TRAINING_THREADS,
    EpochMetrics,
    TrainingCache,
    TrainingResult,
    TrainingRun,
    batch_loaders,
    default_cache_dir,
    job_data,
    torch_threads,
    train,
)

MAX_TRAINED_EDGES = 8  # fleets larger than this are not trained (their accuracy stays empty)
FLEET_CODE_VERSION = 1  # bump when fleet training semantics change, to invalidate cached fleet runs


@dataclass(frozen=True)
class FleetTrainingRun:
    """Everything that affects one fleet's training (and so its cache key); module docstring."""

    run: TrainingRun  # the common fields; built with TrainingRun(...), so split learning over fp32 stays split
    shares: tuple[int, ...]  # each edge's samples per epoch in the simulated workload, in edge order
    dirichlet_alpha: float | None  # None: IID split; else per-class Dirichlet(alpha) proportions
    split_learning: str = ""  # "sequential" | "parallel" for split_learning, else ""
    edge_sync: str = ""  # "none" | "epoch" for hierarchical, else ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "shares", tuple(int(s) for s in self.shares))
        method = self.run.method
        if not 1 <= len(self.shares) <= MAX_TRAINED_EDGES or min(self.shares) < 1:
            raise ValueError(f"a trained fleet has 1 to {MAX_TRAINED_EDGES} edges of positive shares, "
                             f"got {self.shares!r}")
        if self.dirichlet_alpha is not None and not self.dirichlet_alpha > 0:
            raise ValueError(f"dirichlet_alpha must be positive or None, got {self.dirichlet_alpha!r}")
        if self.run.cloud_skip:
            raise ValueError("a fleet run has no cloud_skip")
        valid = {SPLIT_LEARNING: ("split_learning", SPLIT_LEARNING_MODES), HIERARCHICAL: ("edge_sync", EDGE_SYNCS)}
        for owner, (field, choices) in valid.items():
            value = getattr(self, field)
            if (method == owner and value not in choices) or (method != owner and value):
                wanted = f"one of {', '.join(choices)}" if method == owner else '""'
                raise ValueError(f"{method} needs {field} {wanted}, got {value!r}")

    @property
    def edges(self) -> int:
        return len(self.shares)

    @property
    def mode(self) -> str:
        """How the method runs across edges: "sequential", "parallel", "sync_epoch", "sync_none" or ""."""
        return self.split_learning or (f"sync_{self.edge_sync}" if self.edge_sync else "")

    def key(self) -> str:
        """sha256 of the run, torch's version and the code versions, 20 hex digits."""
        payload = json.dumps({"fleet": asdict(self), "torch": torch.__version__.split("+")[0],
                              "code": TRAINING_CODE_VERSION, "fleet_code": FLEET_CODE_VERSION}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:20]


def _training_run(fields: dict) -> TrainingRun:
    """A TrainingRun from its asdict() form, through TrainingResult's own reader (one copy of it)."""
    return TrainingResult.from_json(json.dumps({"run": fields, "device_name": "", "epochs": []})).run


@dataclass(frozen=True)
class FleetTrainingResult:
    run: FleetTrainingRun
    epochs: tuple[EpochMetrics, ...]  # share-weighted means over the edges, per epoch
    edge_final_accuracy: tuple[float, ...]  # after the last epoch, per edge
    edge_exit_accuracy: tuple[float, ...]  # after the last epoch, per edge (nan unless hierarchical)
    edge_samples: tuple[int, ...]  # training samples each edge got from the partition
    device_name: str
    cached: bool = False

    @property
    def final(self) -> EpochMetrics:
        return self.epochs[-1]

    def to_json(self) -> str:
        data = {name: getattr(self, name) for name in ("edge_final_accuracy", "edge_exit_accuracy", "edge_samples",
                                                       "device_name")}
        return json.dumps({"run": asdict(self.run), "epochs": [asdict(e) for e in self.epochs], **data}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "FleetTrainingResult":
        data = json.loads(text)
        fleet = data["run"]
        run = FleetTrainingRun(**{**fleet, "run": _training_run(fleet["run"]), "shares": tuple(fleet["shares"])})
        return cls(run, tuple(EpochMetrics(**e) for e in data["epochs"]), tuple(data["edge_final_accuracy"]),
                   tuple(data["edge_exit_accuracy"]), tuple(data["edge_samples"]), data["device_name"], True)


def weighted_mean(values: list[float], weights: tuple[int, ...]) -> float:
    """sum w_i v_i / sum w_i; exactly v when every value is v (no rounding noise)."""
    if len(set(values)) == 1:
        return values[0]
    return sum(w * v for w, v in zip(weights, values)) / sum(weights)


def fleet_trainer(run: FleetTrainingRun, edge_batches: list[int], edge_samples: list[int],
                  device: torch.device | str = "cpu") -> FleetTrainer:
    """The fleet's trainers, built as `runs.train` builds its one (same seed, model and cut)."""
    r = run.run
    torch.manual_seed(r.seed)
    model = build_model(r.model, r.dataset, r.width, r.input_size, r.points)
    point = r.split or model.split_points[len(model.split_points) // 2]
    first = MethodTrainer(model, point, r.method, r.codec or "fp32", r.optimizer,
                          total_steps=r.epochs * sum(edge_batches)).to(torch.device(device))
    first.train(True)
    sequential = run.split_learning == "sequential"
    average = run.split_learning == "parallel" or run.edge_sync == "epoch"
    return FleetTrainer(first, edge_batches, edge_samples, r.epochs, r.optimizer, sequential, average)


def train_fleet(run: FleetTrainingRun, train_set, test_set, progress: bool = True) -> FleetTrainingResult:
    """Train the fleet for real (at torch's current thread count) on `train_set` split across its
    edges, evaluating every edge on `test_set` after each epoch (module docstring)."""
    r = run.run
    device = resolve_device(r.device, "accuracy.device")
    pieces = partition(train_set.labels, run.shares, run.dirichlet_alpha, r.seed, min_samples=r.batch_size)
    edge_samples = tuple(len(piece) for piece in pieces)
    union_loader, test_loader = batch_loaders(r, train_set, test_set)
    if r.method == FULL_CLOUD:
        single = train(r, union_loader, test_loader, progress)
        final = single.final
        return FleetTrainingResult(run, single.epochs, (final.final_accuracy,) * run.edges, (math.nan,) * run.edges,
                                   edge_samples, single.device_name)
    loaders = [BatchLoader(replace(train_set, images=train_set.images[index], labels=train_set.labels[index]),
                           r.batch_size, True, r.seed + i, str(device), input_size=r.input_size)
               for i, index in enumerate(torch.from_numpy(piece) for piece in pieces)]
    fleet = fleet_trainer(run, [len(loader) for loader in loaders], list(edge_samples), device)
    label = f"train fleet of {run.edges} {r.model} {r.method}" + (f" {run.mode}" if run.mode else "")
    bar = progress_bar(total=r.epochs * sum(len(loader) for loader in loaders), desc=label, unit="batch",
                       enabled=progress, leave=False)
    hierarchical, history = r.method == HIERARCHICAL, []
    for epoch in range(1, r.epochs + 1):
        start = time.perf_counter()
        steps = fleet.train_epoch(loaders, bar.update)
        wall_s = time.perf_counter() - start
        accuracy = fleet.evaluate(test_loader)
        finals, exits = [a[0] for a in accuracy], [a[1] if hierarchical else math.nan for a in accuracy]
        history.append(EpochMetrics(epoch, float(np.mean([s.loss for s in steps])),
                                    float(np.mean([s.exit_loss for s in steps])) if hierarchical else math.nan,
                                    weighted_mean(finals, run.shares),
                                    weighted_mean(exits, run.shares) if hierarchical else math.nan, wall_s))
        bar.set_postfix(acc=f"{history[-1].final_accuracy:.3f}")
    bar.close()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    return FleetTrainingResult(run, tuple(history), tuple(finals), tuple(exits), edge_samples, name)


class FleetTrainingCache(TrainingCache):
    """One JSON file per finished fleet run under `root` (default: default_cache_dir()/fleet)."""

    result_type = FleetTrainingResult

    def __init__(self, root: str | Path | None = None):
        super().__init__(root if root is not None else default_cache_dir() / "fleet")

    def path(self, run: FleetTrainingRun) -> Path:
        mode = f"-{run.mode}" if run.mode else ""
        return self.root / f"{model_slug(run.run.model)}-{run.run.method}{mode}-{run.edges}edges-{run.key()}.json"



@dataclass(frozen=True)
class FleetTrainingJob:
    """One fleet run as a worker receives it (as runs.TrainingJob)."""

    run: FleetTrainingRun
    data_root: str | None  # the submitting process has provisioned the dataset
    threads: int
    progress: bool  # a per-batch bar (in this process only)


def fleet_job(job: FleetTrainingJob) -> FleetTrainingResult:
    """A worker's side: train `job.run` at `job.threads` threads, its data loaded once per worker."""
    from ..data.provision import locate

    r = job.run.run
    folders = tuple(locate(r.dataset, split, job.data_root, "never") for split in ("train", "test"))
    data = job_data(r.dataset, r.train_subset, r.test_subset, r.seed, job.data_root, folders)
    with torch_threads(job.threads):
        return train_fleet(job.run, *data, progress=job.progress)


def fleet_accuracy(runs: list[FleetTrainingRun], data_root: str | None, download: str, progress: bool = True,
                   cache_root: str | Path | None = None,
                   executor: Executor = SERIAL) -> dict[FleetTrainingRun, FleetTrainingResult]:
    """Every run's result: from the cache (`cache_root`, default default_cache_dir()/fleet) where
    present, else trained through `executor` (default: in this process) at TRAINING_THREADS
    threads, and cached by this process as each arrives (Ctrl-C keeps the finished ones).

    Every dataset a missing run needs is found (fetched as `download` allows) before any training.
    """
    from ..data.provision import SPLITS, locate

    cache = FleetTrainingCache(cache_root)
    results = {run: cached for run in dict.fromkeys(runs) if (cached := cache.get(run)) is not None}
    missing = [run for run in dict.fromkeys(runs) if run not in results]
    for dataset in dict.fromkeys(run.run.dataset for run in missing):
        for split in SPLITS:
            locate(dataset, split, data_root, download)
    jobs = [FleetTrainingJob(run, data_root, TRAINING_THREADS, progress and executor.in_process) for run in missing]
    gpu = any(run.run.device == "cuda" or (run.run.device == "auto" and executor.gpus() > 0) for run in missing)
    trained = executor.map(fleet_job, jobs, len(jobs), desc="train fleets" if progress and not executor.in_process
                           else None, resources=Resources(gpus=1.0) if gpu else CPU_JOB, chunk=1)
    for run, result in zip(missing, trained):
        cache.put(result)
        results[run] = result
    return {run: results[run] for run in runs}
