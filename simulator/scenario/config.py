"""Scenario files: what to simulate. One dataclass per YAML section, loaded and validated
here and nowhere else (README, "Scenario keys", documents every key).
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..core.errors import UserError
from ..core.typed import build_dataclass, read_yaml
from ..data.specs import DATASETS
from ..models import MODELS, build_model
from ..models.codecs import CODECS
from ..profiling.schema import Profile

Method = Literal["full_cloud", "split_learning", "hierarchical"]
METHODS: tuple[str, ...] = Method.__args__  # type: ignore[attr-defined]
AUTO = "auto"  # `split: auto`: the separation point is chosen per bit rate (split_search)


@dataclass
class ModelConfig:
    name: str  # vgg16 | resnet18
    split: str  # separation point: a block name, e.g. stage2 or layer1_1, or "auto" (split_search)


@dataclass
class WorkloadConfig:
    dataset: str  # fashion-mnist | cifar10 | cifar100 | tiny-imagenet
    models: list[ModelConfig]
    batch_size: int = 32
    epochs: int = 100
    train_samples: int | None = None  # default: the dataset's training-set size


@dataclass
class EdgeConfig:
    profiles: dict[str, str]  # model name -> profile JSON, measured or derived on the edge device
    compute: Literal["cpu", "gpu"] = "cpu"  # where the edge trains; gpu needs a cuda profile
    name: str = ""  # label for reports; default: the profiles' device name
    memory_mb: float | None = None  # memory the edge can give to training (MiB); null = no limit


@dataclass
class CloudConfig:
    profiles: dict[str, str]  # model name -> profile JSON of the cloud GPU
    name: str = ""


@dataclass
class NetworkConfig:
    uplink_mbps: list[float]  # uplink bit rates to sweep, Mbit/s
    downlink_mbps: float | None = None  # fixed downlink rate; default: downlink_ratio x uplink
    downlink_ratio: float = 1.0
    latency_ms: float = 50.0  # one-way propagation delay
    jitter_ms: float = 0.0  # mean of an exponential extra delay per transfer
    loss_rate: float = 0.0  # packet loss probability; lost packets are resent
    mtu_bytes: int = 1500  # packet size for loss and retransmission
    retransmit_timeout_ms: float = 200.0  # idle wait before each resend
    uplink_buffer_batches: int = 8  # edge-side uplink queue, in batches (hierarchical, full_cloud)
    codec: Literal["fp32", "fp16", "int8"] = "fp32"  # encoding of activations and gradients


@dataclass
class FullCloudConfig:
    raw_upload: Literal["once", "every_epoch"] = "once"  # upload the raw data once, or stream it each epoch


@dataclass
class AccuracyConfig:
    """Real training that gives each method's accuracy (README, "Accuracy from real training")."""

    enabled: bool = True  # false, or `simulate --no-train`: accuracy columns stay empty
    dataset: str | None = None  # dataset trained for real; default: workload.dataset
    data_root: str | None = None  # folder holding the dataset; default: $SIMULATOR_DATA, ./data, Debian's
    download: bool = False  # fetch a missing dataset where a network exists
    width: float = 0.25  # channel width multiplier of the trained proxy model
    epochs: int = 3
    train_subset: int | None = 10000  # stratified training subset; null = the whole training set
    test_subset: int | None = 2000  # held-out samples evaluated after each epoch; null = all
    batch_size: int | None = None  # default: workload.batch_size
    optimizer: Literal["sgd"] = "sgd"  # SGD with momentum
    lr: float = 0.05  # initial learning rate (cosine schedule to 0 unless schedule: constant)
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: Literal["cosine", "constant"] = "cosine"
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    seed: int | None = None  # default: the scenario's seed


@dataclass
class SplitSearchConfig:
    """How `split: auto` chooses a separation point (README, "Choosing the separation point")."""

    max_accuracy_drop: float = 0.02  # largest allowed drop of final accuracy below full-cloud's (0.02 = 2 points)


@dataclass
class Scenario:
    workload: WorkloadConfig
    edge: EdgeConfig
    cloud: CloudConfig
    network: NetworkConfig
    methods: list[Method] = field(default_factory=lambda: list(METHODS))
    full_cloud: FullCloudConfig = field(default_factory=FullCloudConfig)
    accuracy: AccuracyConfig = field(default_factory=AccuracyConfig)
    split_search: SplitSearchConfig = field(default_factory=SplitSearchConfig)
    seed: int = 0
    name: str = ""  # default: the file name without .yaml
    output_dir: str = ""  # default: reports/<name>
    description: str = ""
    # Filled by load_scenario, not YAML keys:
    path: str = field(default="", init=False)
    edge_profiles: dict[str, Profile] = field(default_factory=dict, init=False)
    cloud_profiles: dict[str, Profile] = field(default_factory=dict, init=False)

    @property
    def train_samples(self) -> int:
        return self.workload.train_samples or DATASETS[self.workload.dataset].train_samples

    @property
    def batches_per_epoch(self) -> int:
        """ceil(train_samples / batch_size): the last batch is padded to a full batch."""
        return -(-self.train_samples // self.workload.batch_size)

    def downlink_mbps(self, uplink_mbps: float) -> float:
        if self.network.downlink_mbps is not None:
            return self.network.downlink_mbps
        return uplink_mbps * self.network.downlink_ratio

    def summary(self) -> str:
        models = ", ".join(f"{m.name}@{m.split}" for m in self.workload.models)
        return (f"{models} on {self.workload.dataset}, {len(self.methods)} methods x "
                f"{len(self.network.uplink_mbps)} uplink rates, {self.workload.epochs} epochs of "
                f"{self.batches_per_epoch} batches")


def load_scenario(path: str | Path) -> Scenario:
    """Read, type-check and validate a scenario, loading every profile it names."""
    file = str(path)
    scenario: Scenario = build_dataclass(Scenario, read_yaml(path), file, "")
    scenario.path = file
    scenario.name = scenario.name or Path(file).stem
    scenario.output_dir = scenario.output_dir or str(Path("reports") / scenario.name)
    check_values(scenario, file)
    scenario.edge_profiles, scenario.cloud_profiles = load_profiles(scenario, file)
    return scenario


def positive(file: str, key: str, value: float, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise UserError(f"{file}: {key} must be {'>= 0' if allow_zero else '> 0'}, got {value}")


def check_values(s: Scenario, file: str) -> None:
    w, n = s.workload, s.network
    if w.dataset not in DATASETS:
        raise UserError(f"{file}: workload.dataset {w.dataset!r} is not valid; valid: {', '.join(DATASETS)}")
    if not w.models:
        raise UserError(f"{file}: workload.models is empty; list at least one model")
    seen = set()
    for i, model in enumerate(w.models):
        if model.name not in MODELS:
            raise UserError(f"{file}: workload.models[{i}].name {model.name!r} is not valid; valid: {', '.join(MODELS)}")
        if model.name in seen:
            raise UserError(f"{file}: workload.models[{i}].name {model.name!r} is listed twice")
        seen.add(model.name)
        points = build_model(model.name, w.dataset, width=0.0625).split_points
        if model.split != AUTO and model.split not in points:
            raise UserError(f"{file}: workload.models[{i}].split {model.split!r} is not a separation point of "
                            f"{model.name}; valid: {AUTO}, {', '.join(points)}")
    if s.edge.memory_mb is not None:
        positive(file, "edge.memory_mb", s.edge.memory_mb)
    if not 0 <= s.split_search.max_accuracy_drop < 1:
        raise UserError(f"{file}: split_search.max_accuracy_drop must be in [0, 1) (a fraction: 0.02 = 2 points), "
                        f"got {s.split_search.max_accuracy_drop}")
    positive(file, "workload.batch_size", w.batch_size)
    positive(file, "workload.epochs", w.epochs)
    if w.train_samples is not None:
        positive(file, "workload.train_samples", w.train_samples)
    if not s.methods:
        raise UserError(f"{file}: methods is empty; valid: {', '.join(METHODS)}")
    if len(set(s.methods)) != len(s.methods):
        raise UserError(f"{file}: methods lists a method twice")
    if not n.uplink_mbps:
        raise UserError(f"{file}: network.uplink_mbps is empty; give at least one bit rate in Mbit/s")
    for i, rate in enumerate(n.uplink_mbps):
        positive(file, f"network.uplink_mbps[{i}]", rate)
    if n.downlink_mbps is not None:
        positive(file, "network.downlink_mbps", n.downlink_mbps)
    positive(file, "network.downlink_ratio", n.downlink_ratio)
    positive(file, "network.latency_ms", n.latency_ms, allow_zero=True)
    positive(file, "network.jitter_ms", n.jitter_ms, allow_zero=True)
    positive(file, "network.retransmit_timeout_ms", n.retransmit_timeout_ms, allow_zero=True)
    positive(file, "network.mtu_bytes", n.mtu_bytes)
    positive(file, "network.uplink_buffer_batches", n.uplink_buffer_batches)
    if not 0 <= n.loss_rate < 1:
        raise UserError(f"{file}: network.loss_rate must be in [0, 1), got {n.loss_rate}")
    assert n.codec in CODECS
    a = s.accuracy
    if a.dataset is not None and a.dataset not in DATASETS:
        raise UserError(f"{file}: accuracy.dataset {a.dataset!r} is not valid; valid: {', '.join(DATASETS)}")
    positive(file, "accuracy.width", a.width)
    positive(file, "accuracy.epochs", a.epochs)
    positive(file, "accuracy.lr", a.lr)
    positive(file, "accuracy.momentum", a.momentum, allow_zero=True)
    positive(file, "accuracy.weight_decay", a.weight_decay, allow_zero=True)
    for key in ("train_subset", "test_subset", "batch_size"):
        if getattr(a, key) is not None:
            positive(file, f"accuracy.{key}", getattr(a, key))


def load_profiles(s: Scenario, file: str) -> tuple[dict[str, Profile], dict[str, Profile]]:
    """Load every profile and check it matches the workload (model, dataset, batch size, device kind)."""
    base = Path(file).resolve().parent
    loaded: list[dict[str, Profile]] = []
    for side, config in (("edge", s.edge), ("cloud", s.cloud)):
        profiles = {}
        for model in s.workload.models:
            key = f"{side}.profiles.{model.name}"
            if model.name not in config.profiles:
                raise UserError(f"{file}: missing key {key} (profile JSON for {model.name} on the {side} device)")
            try:
                profiles[model.name] = profile = Profile.load(resolve_path(config.profiles[model.name], base))
            except UserError as exc:
                raise UserError(f"{file}: {key}: {exc}") from None
            expected = {"model": model.name, "dataset": s.workload.dataset, "batch_size": s.workload.batch_size}
            for attr, want in expected.items():
                if getattr(profile, attr) != want:
                    raise UserError(f"{file}: {key}: profile is for {attr} {getattr(profile, attr)!r}, the workload "
                                    f"needs {want!r} (profile another, or derive one)")
            if model.split != AUTO and model.split not in profile.layer_names:
                raise UserError(f"{file}: {key}: profile has no layer {model.split!r}; valid: "
                                + ", ".join(profile.layer_names[:-1]))
        loaded.append(profiles)
        extra = sorted(set(config.profiles) - {m.name for m in s.workload.models})
        if extra:
            raise UserError(f"{file}: {side}.profiles.{extra[0]}: no such model in workload.models")
    want_kind = "cuda" if s.edge.compute == "gpu" else "cpu"
    for name, profile in loaded[0].items():
        if profile.device.kind != want_kind:
            raise UserError(f"{file}: edge.profiles.{name}: a {profile.device.kind} profile, but edge.compute is "
                            f"{s.edge.compute!r} (needs a {want_kind} profile)")
    return loaded[0], loaded[1]


def resolve_path(value: str, base: Path) -> Path:
    """A profile path as written, else relative to the scenario's folder, else to its parent."""
    path = Path(value)
    if path.is_absolute() or path.exists():
        return path
    for root in (base, base.parent):
        if (root / path).exists():
            return root / path
    return path
