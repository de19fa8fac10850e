"""Scenario files: what to simulate. One dataclass per YAML section, with its defaults; `load`
reads and validates them, in one place (README, "Scenario keys", documents every key).
"""
from dataclasses import dataclass, field
from typing import Any, Literal

from ..core.names import AUTO, HIERARCHICAL, METHODS, SPLIT_LEARNING, Method
from ..data.provision import Download
from ..data.specs import DATASETS
from ..profiling.schema import Profile


@dataclass
class MethodSplits:
    """`split: {split_learning: A, hierarchical: B}`: each method's own separation point."""

    split_learning: str = AUTO
    hierarchical: str = AUTO


SPLIT_METHODS = (SPLIT_LEARNING, HIERARCHICAL)  # the methods that cut the network


@dataclass
class ModelConfig:
    name: str  # vgg16 | resnet18
    # separation point: a block name (e.g. stage2 or layer1_1) for both methods, "auto" (each
    # method at its own best point, split_search), or a MethodSplits mapping
    split: str | MethodSplits

    def split_for(self, method: str) -> str:
        """The point `method` trains at: a block name or AUTO; "" for full_cloud (no cut)."""
        if method not in SPLIT_METHODS:
            return ""
        return getattr(self.split, method) if isinstance(self.split, MethodSplits) else self.split

    @property
    def has_auto(self) -> bool:
        return any(self.split_for(method) == AUTO for method in SPLIT_METHODS)

    def split_text(self) -> str:
        if isinstance(self.split, MethodSplits):
            return f"split_learning@{self.split.split_learning}/hierarchical@{self.split.hierarchical}"
        return self.split


@dataclass
class WorkloadConfig:
    dataset: str  # fashion-mnist | cifar10 | cifar100 | tiny-imagenet
    models: list[ModelConfig]
    batch_size: int = 32
    epochs: int = 100
    train_samples: int | None = None  # default: the dataset's training-set size


@dataclass
class EdgeConfig:
    # model name -> profile JSON, measured or derived on the edge device; or a device name (a
    # datasheet key such as jetson-nano): profiles/<device>_<model>_<dataset>_b<batch_size>.json
    profiles: dict[str, str] | str
    compute: Literal["cpu", "gpu", "auto"] = "auto"  # where the edge trains; gpu needs a cuda profile; auto: the profiles' kind
    name: str = ""  # label for reports; default: the profiles' device name
    memory_mib: float | None = None  # memory the edge can give to training (MiB); null = no limit


@dataclass
class CloudConfig:
    profiles: dict[str, str] | str  # model name -> profile JSON of the cloud GPU, or a device name (as edge.profiles)
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
    download: Download = "auto"  # fetching a missing dataset: auto, network or never (README, "Datasets")
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
class TargetConfig:
    """A published figure to check (README, "Targets"): `metric` of `method`'s rows of
    results.csv for `model` on `dataset`, at the rates `uplink_mbps` (default: every rate)."""

    model: str
    dataset: str
    metric: str  # a numeric column of results.csv, e.g. reduction_vs_split_learning
    value: float
    tolerance: float  # reproduced when |simulated - value| <= tolerance
    uplink_mbps: list[float] = field(default_factory=list)
    method: Method = "hierarchical"
    source: str = ""  # where the figure is published
    name: str = ""  # default: <model>_<dataset>_<metric>


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
    # dotted scenario key -> values: the scenario is run at every combination (README, "Sweeps")
    sweep: dict[str, list[Any]] = field(default_factory=dict)
    targets: list[TargetConfig] = field(default_factory=list)
    # Filled by load_scenario, not YAML keys:
    path: str = field(default="", init=False)
    data: dict = field(default_factory=dict, init=False)  # the file's data as read, for the sweep's settings
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
        models = ", ".join(f"{m.name}@{m.split_text()}" for m in self.workload.models)
        return (f"{models} on {self.workload.dataset}, {len(self.methods)} methods x "
                f"{len(self.network.uplink_mbps)} uplink rates, {self.workload.epochs} epochs of "
                f"{self.batches_per_epoch} batches")
