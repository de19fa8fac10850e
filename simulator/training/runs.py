"""Accuracy of every method from real training, cached on disk.

A `TrainingRun` names everything that affects a training run; its hash is the cache key, so
a sweep over bit rates never retrains and a second run of a scenario reuses the results.
The cache file is written once, whole (temporary file + rename), by the process that asked
for the run when the run completes: Ctrl-C leaves the cache as it was, and the workers that
train (`core.executors`: a local process pool, Ray tasks) never touch it. Split learning with
the lossless fp32 codec computes exactly full-cloud training (tests/test_training.py proves
it), so it shares that run.

A hierarchical run may name the batches its cloud part never trains on (`cloud_skip`, the
text form of `skips`), the feature batches the edge dropped from a full uplink buffer.
"""
import contextlib
import functools
import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..core.executors import CPU_JOB, SERIAL, Executor, Resources
from ..core.files import atomic_write_text
from ..core.progress import progress_bar
from ..data.specs import DATASETS
from ..models import PAPER_MODELS, build_model, model_slug
from ..models.device import resolve_device
from .methods import MethodTrainer
from .optimizer import OptimizerConfig
from .skips import canonical_skips, decode_skips

TRAINING_CODE_VERSION = 1  # bump when training semantics change, to invalidate caches
# torch intra-op threads of every training run, wherever it runs. A run's losses and accuracies
# depend on the thread count (float sums are split differently: 1 and 2 threads differ in the
# 3rd digit of a loss), so it is fixed: the numbers do not depend on --workers or on the cores
# of the machine. Several runs train at once instead (--workers).
TRAINING_THREADS = 1


def default_cache_dir() -> Path:
    """$SIMULATOR_CACHE/training, else .cache/training under the working folder."""
    return Path(os.environ.get("SIMULATOR_CACHE", ".cache")) / "training"


@dataclass(frozen=True)
class TrainingRun:
    """Everything that affects one training run (and so its cache key)."""

    model: str
    method: str
    split: str  # "" for full_cloud
    codec: str  # "" for full_cloud
    dataset: str
    width: float
    epochs: int
    train_subset: int | None
    test_subset: int | None
    batch_size: int
    optimizer: OptimizerConfig
    seed: int
    device: str
    cloud_skip: str = ""  # hierarchical: the batches the cloud skips, in `skips`' text form; "" for none
    input_size: int | None = None  # the proxy's images resized to this many pixels; None: the dataset's own
    points: tuple[str, ...] | None = None  # separation points declared by hand (models.graph); None: traced

    @classmethod
    def of(cls, model: str, method: str, split: str, codec: str, cloud_skip: str = "", **rest) -> "TrainingRun":
        """The canonical run: full_cloud ignores the split and codec; split learning over fp32 is full_cloud;
        a skip text that skips nothing is ""."""
        if cloud_skip and method != "hierarchical":
            raise ValueError(f"only hierarchical training can skip cloud batches, not {method}")
        if method == "full_cloud" or (method == "split_learning" and codec == "fp32"):
            return cls(model=model, method="full_cloud", split="", codec="", **rest)
        return cls(model=model, method=method, split=split, codec=codec,
                   cloud_skip=canonical_skips(cloud_skip, rest["epochs"]) if cloud_skip else "", **rest)

    def key(self) -> str:
        """A hash of the run, torch's version and the code version; a run without skips leaves
        `cloud_skip` out, and one at the dataset's own size without declared points leaves
        `input_size` and `points` out, so it keeps the key it had before those fields existed."""
        run = asdict(self)
        for name, empty in (("cloud_skip", ""), ("input_size", None), ("points", None)):
            if run[name] == empty:
                del run[name]
        payload = json.dumps({"run": run, "torch": torch.__version__.split("+")[0],
                              "code": TRAINING_CODE_VERSION}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int  # 1-based
    train_loss: float  # mean final-exit loss over the epoch's batches
    exit_train_loss: float  # mean early-exit loss (hierarchical), else nan
    final_accuracy: float  # held-out test accuracy of edge + cloud
    early_exit_accuracy: float  # held-out test accuracy of the edge alone (hierarchical), else nan
    wall_time_s: float  # real training time of this epoch on this machine (evaluation excluded)
    cloud_skipped_batches: int = 0  # training batches the cloud skipped (hierarchical with cloud_skip)


@dataclass(frozen=True)
class TrainingResult:
    run: TrainingRun
    epochs: tuple[EpochMetrics, ...]
    device_name: str
    cached: bool = False

    @property
    def final(self) -> EpochMetrics:
        return self.epochs[-1]

    def to_json(self) -> str:
        return json.dumps({"run": asdict(self.run), "device_name": self.device_name,
                           "epochs": [asdict(e) for e in self.epochs]}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "TrainingResult":
        data = json.loads(text)
        run = data["run"]
        run["optimizer"] = OptimizerConfig(**run["optimizer"])
        if run.get("points") is not None:
            run["points"] = tuple(run["points"])
        return cls(TrainingRun(**run), tuple(EpochMetrics(**e) for e in data["epochs"]), data["device_name"], True)


@contextlib.contextmanager
def torch_threads(threads: int):
    """Run the block with torch's intra-op thread count at `threads`, then restore it."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train(run: TrainingRun, train_batches, test_batches, progress: bool = True) -> TrainingResult:
    """Train `run` for real (at torch's current thread count) and evaluate on the held-out
    batches after every epoch.

    With `run.cloud_skip`, a skipped batch trains the edge and its exit only (see
    `MethodTrainer.step`); the epoch's train_loss averages the batches the cloud trained on
    (nan if none) and exit_train_loss every batch.
    """
    device = resolve_device(run.device, "accuracy.device")
    torch.manual_seed(run.seed)
    model = build_model(run.model, run.dataset, run.width, run.input_size, run.points)
    point = run.split or model.split_points[len(model.split_points) // 2]  # full_cloud: any cut, same math
    skips = decode_skips(run.cloud_skip, run.epochs, len(train_batches))
    trainer = MethodTrainer(model, point, run.method, run.codec or "fp32", run.optimizer,
                            total_steps=run.epochs * len(train_batches)).to(device)
    trainer.train(True)
    label = f"train {run.model} {run.method}" + (f"@{run.split}" if run.split else "")
    bar = progress_bar(total=run.epochs * len(train_batches), desc=label, unit="batch", enabled=progress,
                       leave=False)
    history = []
    for epoch in range(1, run.epochs + 1):
        losses, exit_losses, start = [], [], time.perf_counter()
        for (x, y), skipped in zip(train_batches, skips[epoch - 1], strict=True):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            step = trainer.step(x, y, cloud=False) if skipped else trainer.step(x, y)  # plain call: no skip
            if not skipped:
                losses.append(step.loss)
            exit_losses.append(step.exit_loss)
            bar.update()
        wall_s = time.perf_counter() - start
        final_acc, exit_acc = trainer.evaluate((x.to(device), y.to(device)) for x, y in test_batches)
        has_exit = run.method == "hierarchical"
        history.append(EpochMetrics(epoch, sum(losses) / len(losses) if losses else math.nan,
                                    sum(exit_losses) / len(exit_losses) if has_exit else math.nan,
                                    final_acc, exit_acc if has_exit else math.nan, wall_s,
                                    cloud_skipped_batches=sum(skips[epoch - 1])))
        bar.set_postfix(acc=f"{final_acc:.3f}")
    bar.close()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    return TrainingResult(run, tuple(history), name)


class TrainingCache:
    """One JSON file per finished run under `root`, named by the run's key."""

    result_type = TrainingResult  # what an entry holds (`from_json`)

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()

    def path(self, run: TrainingRun) -> Path:
        return self.root / f"{model_slug(run.model)}-{run.method}-{run.key()}.json"

    def get(self, run: TrainingRun) -> TrainingResult | None:
        path = self.path(run)
        if not path.is_file():
            return None
        try:
            result = self.result_type.from_json(path.read_text())
        except (ValueError, KeyError, TypeError, RecursionError):
            return None  # unreadable entry: retrain and overwrite
        return result if result.run == run else None

    def put(self, result: TrainingResult) -> None:
        atomic_write_text(self.path(result.run), result.to_json() + "\n")


# ---- a scenario's training runs ---------------------------------------------------------------

RowKey = tuple[str, str, str]  # (model, method, split) of results.csv rows; split is "" for full_cloud


def training_size(scenario) -> int | None:
    """The pixels the proxy trains at: accuracy.input_size, else workload.input_size; None when
    that is the trained dataset's own size (no resizing)."""
    a, w = scenario.accuracy, scenario.workload
    size = a.input_size or w.input_size
    native = DATASETS[a.dataset or w.dataset].input_shape[1]
    return None if size in (None, native) else size


def run_settings(scenario) -> dict:
    """The TrainingRun fields every run of a scenario shares (from its `accuracy` section)."""
    a, w = scenario.accuracy, scenario.workload
    optimizer = OptimizerConfig(lr=a.lr, momentum=a.momentum, weight_decay=a.weight_decay, schedule=a.schedule)
    return dict(dataset=a.dataset or w.dataset, width=a.width, epochs=a.epochs, train_subset=a.train_subset,
                test_subset=a.test_subset, batch_size=a.batch_size or w.batch_size, optimizer=optimizer,
                seed=scenario.seed if a.seed is None else a.seed, device=a.device, input_size=training_size(scenario))


def model_settings(scenario, model: str) -> dict:
    """The fields that depend on the model: the width multiplier (the paper's models only; the
    others train at their own width, 1) and the declared separation points."""
    config = next((m for m in scenario.workload.models if m.name == model), None)
    return {"width": scenario.accuracy.width if model in PAPER_MODELS else 1.0,
            "points": config.declared_points if config is not None else None}


def training_runs(scenario, rows: list[RowKey]) -> dict[RowKey, TrainingRun]:
    """(model, method, split) -> the canonical TrainingRun giving that row's accuracy."""
    common = run_settings(scenario)
    return {(model, method, split): TrainingRun.of(model, method, split, scenario.network.codec,
                                                   **{**common, **model_settings(scenario, model)})
            for model, method, split in rows}


def proxy_note(scenario) -> str:
    """How the trained configuration differs from the simulated workload ('' when it does not)."""
    a, w = scenario.accuracy, scenario.workload
    differences = []
    if (a.dataset or w.dataset) != w.dataset:
        differences.append(f"{a.dataset} stands in for {w.dataset}")
    trained = DATASETS[a.dataset or w.dataset]
    size = training_size(scenario)
    if size is not None:
        differences.append(f"{trained.name} resized from {trained.input_shape[1]} to {size} pixels on the fly")
    simulated = w.input_size or DATASETS[w.dataset].input_shape[1]
    if (a.input_size or w.input_size) is not None and (size or trained.input_shape[1]) != simulated:
        differences.append(f"trained at {size or trained.input_shape[1]} pixels, simulated at {simulated}")
    paper = [m.name for m in w.models if m.name in PAPER_MODELS]
    if a.width != 1.0 and paper:
        differences.append(f"width {a.width:g}" + ("" if len(paper) == len(w.models) else f" ({', '.join(paper)})"))
    if a.epochs != w.epochs:
        differences.append(f"{a.epochs} of {w.epochs} epochs")
    if a.train_subset is not None:
        differences.append(f"{a.train_subset} training samples")
    if a.test_subset is not None:
        differences.append(f"tested on {a.test_subset} samples")
    return ("proxy: " + "; ".join(differences)) if differences else ""


def load_data(dataset: str, train_subset: int | None, test_subset: int | None, seed: int,
              data_root: str | None, download: str) -> tuple:
    """(train, test) ImageSets, subset as configured."""
    from ..data.batching import subset
    from ..data.readers import load_dataset

    train_set = load_dataset(dataset, "train", data_root, download)
    test_set = load_dataset(dataset, "test", data_root, download)
    if train_subset is not None:
        train_set = subset(train_set, train_subset, seed)
    if test_subset is not None:
        test_set = subset(test_set, test_subset, seed)
    return train_set, test_set


def batch_loaders(run: TrainingRun, train_set, test_set) -> tuple:
    """Fresh loaders: every method sees the same batches in the same order."""
    from ..data.batching import BatchLoader

    device = str(resolve_device(run.device, "accuracy.device"))
    return (BatchLoader(train_set, run.batch_size, True, run.seed, device, input_size=run.input_size),
            BatchLoader(test_set, 256, False, run.seed, device, input_size=run.input_size))


@dataclass(frozen=True)
class TrainingJob:
    """One training run as a worker receives it: the run, where its data is, how to train."""

    run: TrainingRun
    data_root: str | None  # accuracy.data_root; the process that submits has provisioned the dataset
    threads: int  # torch intra-op threads (TRAINING_THREADS)
    progress: bool  # a per-batch bar (in this process only)


@functools.lru_cache(maxsize=1)
def job_data(dataset: str, train_subset: int | None, test_subset: int | None, seed: int, data_root: str | None,
             folders: tuple[Path, Path]) -> tuple:
    """`load_data` without fetching, kept for a worker's next job (a scenario's runs share it);
    `folders`, where the train and test splits are now, keys it to the files actually read."""
    return load_data(dataset, train_subset, test_subset, seed, data_root, "never")


def train_job(job: TrainingJob) -> TrainingResult:
    """A worker's side: train `job.run` at `job.threads` threads (`train`)."""
    from ..data.provision import locate

    run = job.run
    folders = tuple(locate(run.dataset, split, job.data_root, "never") for split in ("train", "test"))
    data = job_data(run.dataset, run.train_subset, run.test_subset, run.seed, job.data_root, folders)
    with torch_threads(job.threads):
        return train(run, *batch_loaders(run, *data), progress=job.progress)


class TrainingResults:
    """The results of a scenario's training runs, each trained on demand the first time it is
    asked for (through `executor`, default in this process) and cached, in memory and on disk.

    `threads`: torch intra-op threads while training (default TRAINING_THREADS).
    """

    def __init__(self, scenario, progress: bool = True, cache: TrainingCache | None = None,
                 threads: int | None = None, executor: Executor | None = None):
        self.scenario, self.progress, self.cache = scenario, progress, cache or TrainingCache()
        self.threads = threads or TRAINING_THREADS
        self.executor = executor or SERIAL
        self.results: dict[TrainingRun, TrainingResult] = {}
        self.provisioned = False

    def known(self, run: TrainingRun) -> TrainingResult | None:
        """The run's result if it was trained in this session or is in the cache, else None."""
        if run not in self.results:
            cached = self.cache.get(run)
            if cached is None:
                return None
            self.results[run] = cached
        return self.results[run]

    def result(self, run: TrainingRun) -> TrainingResult:
        """The run's result, training it when it is neither known nor cached."""
        if self.known(run) is None:
            train_missing([(self, run)], self.executor)
        return self.results[run]

    def provision(self) -> None:
        """Find the dataset here once, fetching it as accuracy.download allows (a missing dataset
        is a one-line error before any work is sent out); the workers then only read it."""
        if not self.provisioned:
            from ..data.provision import locate

            a = self.scenario.accuracy
            for split in ("train", "test"):
                locate(a.dataset or self.scenario.workload.dataset, split, a.data_root, a.download)
            self.provisioned = True

    def job(self, run: TrainingRun, executor: Executor) -> TrainingJob:
        return TrainingJob(run, self.scenario.accuracy.data_root, self.threads, self.progress and executor.in_process)


def train_missing(wanted: list[tuple[TrainingResults, TrainingRun]], executor: Executor,
                  desc: str | None = None) -> None:
    """Train every run of `wanted` that its TrainingResults does not know yet, all at once through
    `executor` (a run wanted twice trains once). Each result is written to the cache by this
    process as it arrives, whole, so Ctrl-C keeps the runs that finished."""
    owners: dict[TrainingRun, list[TrainingResults]] = {}
    for results, run in wanted:
        if results.known(run) is None and results not in owners.setdefault(run, []):
            owners[run].append(results)
    if not owners:
        return
    for results in dict.fromkeys(r for rs in owners.values() for r in rs):
        results.provision()
    jobs = [rs[0].job(run, executor) for run, rs in owners.items()]
    gpu = any(run.device == "cuda" or (run.device == "auto" and executor.gpus() > 0) for run in owners)
    trained = executor.map(train_job, jobs, len(jobs), desc=desc, resources=Resources(gpus=1.0) if gpu else CPU_JOB,
                           chunk=1)
    for (run, rs), result in zip(owners.items(), trained):
        for cache in {r.cache.path(run): r.cache for r in rs}.values():
            cache.put(result)
        for results in rs:
            results.results[run] = result


def fixed_rows(scenario) -> list[RowKey]:
    """The result rows of a scenario whose models all have a fixed separation point."""
    if any(m.has_auto for m in scenario.workload.models):
        raise ValueError("a model has split: auto; pass the rows of its chosen points")
    return [(m.name, method, m.split_for(method)) for m in scenario.workload.models for method in scenario.methods]


def scenario_accuracy(scenario, rows: list[RowKey] | None = None, progress: bool = True,
                      cache: TrainingCache | None = None,
                      results: TrainingResults | None = None) -> dict[RowKey, TrainingResult]:
    """Train (or reuse from the cache) every run the result rows need (default: `fixed_rows`),
    the missing ones all at once through `results.executor`."""
    results = results or TrainingResults(scenario, progress, cache)
    rows = fixed_rows(scenario) if rows is None else rows
    runs = training_runs(scenario, rows)
    train_missing([(results, run) for run in runs.values()], results.executor)
    return {key: results.result(run) for key, run in runs.items()}
