"""Scenario files: what to simulate. One dataclass per YAML section, with its defaults; `load`
reads and validates them, in one place (README, "Scenario keys", documents every key).
"""
from dataclasses import dataclass, field
from typing import Any, Literal

from ..core.names import (
    AUTO,
    HIERARCHICAL,
    METHODS,
    SPLIT_LEARNING,
    CloudOrder,
    EdgeSync,
    Method,
    SplitLearningMode,
)
from ..data.provision import Download
from ..data.specs import DATASETS
from ..profiling.schema import Profile


@dataclass
class MethodSplits:
    """`split: {split_learning: A, hierarchical: B}`: each method's own separation point."""

    split_learning: str = AUTO
    hierarchical: str = AUTO


SPLIT_METHODS = (SPLIT_LEARNING, HIERARCHICAL)  # the methods that cut the network
PAIRED = "paired"  # network.downlink_trace: the uplink trace's own downlink (.up -> .down)


@dataclass
class ModelConfig:
    # vgg16 | resnet18 (the paper's), a torchvision model (mobilenet_v2, resnet50, vit_b_16, ...)
    # or package.module:factory (README, "Any model")
    name: str
    # separation point: a block name (e.g. stage2, layer1_1, features.7) for both methods, "auto"
    # (each method at its own best point, split_search), or a MethodSplits mapping
    split: str | MethodSplits = AUTO
    # the separation points declared by hand (module paths, in execution order), for a model whose
    # points are not found by tracing; default: found automatically
    points: list[str] | None = None

    @property
    def declared_points(self) -> tuple[str, ...] | None:
        """`points` as a tuple (hashable: a cache key); None when they are found by tracing."""
        return tuple(self.points) if self.points else None

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
    input_size: int | None = None  # images resized to input_size x input_size pixels; default: the dataset's own


@dataclass
class EdgeConfig:
    # model name -> profile JSON, measured or derived on the edge device; or a device name (a
    # datasheet key such as jetson-nano): profiles/<device>_<model>_<dataset>_b<batch_size>.json
    profiles: dict[str, str] | str
    compute: Literal["cpu", "gpu", "auto"] = "auto"  # where the edge trains; gpu needs a cuda profile; auto: the profiles' kind
    name: str = ""  # label for reports; default: the profiles' device name
    memory_mib: float | None = None  # memory the edge can give to training (MiB); null = no limit


@dataclass
class EdgeGroupConfig:
    """One group of identical edges in a fleet (`edges:`; README, "Fleets")."""

    count: int  # edges in the group
    profiles: dict[str, str] | str  # as edge.profiles
    name: str = ""  # label in edges.csv and the report; default: group<i>
    compute: Literal["cpu", "gpu", "auto"] = "auto"  # as edge.compute
    memory_mib: float | None = None  # as edge.memory_mib
    # network keys overriding the scenario's for this group's links: uplink_mbps (one rate; default:
    # the scenario's rates), downlink_mbps, latency_ms, jitter_ms, loss_rate, uplink_trace, outages, ...
    network: dict[str, Any] = field(default_factory=dict)
    train_samples: int | None = None  # each edge's share, samples per epoch; default: the workload's, split evenly


@dataclass
class FleetConfig:
    """How the methods run across a fleet (README, "Fleets")."""

    split_learning: SplitLearningMode = "sequential"  # edges take turns, or SplitFed (all at once)
    cloud_order: CloudOrder = "fifo"  # the order the cloud trains the edges' delivered batches
    edge_sync: EdgeSync = "none"  # hierarchical: average the edge parts at each epoch's end
    dirichlet_alpha: float | None = None  # real training's data split: null = IID, else non-IID Dirichlet(alpha)


@dataclass
class CloudConfig:
    profiles: dict[str, str] | str  # model name -> profile JSON of the cloud GPU, or a device name (as edge.profiles)
    name: str = ""
    gpus: int = 1  # identical GPUs serving one queue (fleets)


@dataclass
class OutageWindow:
    start_s: float  # simulated seconds since the run began
    duration_s: float


@dataclass
class OutageModel:
    """Exponential on/off periods (Gilbert-Elliott), drawn from the seed (README, "Cellular links")."""

    mean_up_s: float
    mean_down_s: float


@dataclass
class NetworkConfig:
    # uplink bit rates to sweep, Mbit/s; left out with an uplink_trace (trace_scale is the axis then)
    uplink_mbps: list[float] = field(default_factory=list)
    downlink_mbps: float | None = None  # fixed downlink rate; default: downlink_ratio x uplink
    downlink_ratio: float = 1.0
    latency_ms: float = 50.0  # one-way propagation delay
    jitter_ms: float = 0.0  # mean of an exponential extra delay per transfer
    loss_rate: float = 0.0  # packet loss probability; lost packets are resent
    mtu_bytes: int = 1500  # packet size for loss and retransmission
    retransmit_timeout_ms: float = 200.0  # idle wait before each resend
    uplink_buffer_batches: int = 8  # edge-side uplink queue, in batches (hierarchical, full_cloud)
    codec: Literal["fp32", "fp16", "int8"] = "fp32"  # encoding of activations and gradients
    # what the edge does when the uplink buffer is full: wait, or discard a feature batch
    # (hierarchical training only; split learning and full_cloud always wait)
    uplink_buffer_policy: Literal["block", "drop_oldest", "drop_newest"] = "block"
    # measured capacity in place of the constant rate (README, "Cellular links"): a Mahimahi
    # trace or a time_s,mbps CSV; downlink_trace "paired": the uplink trace's file with .up -> .down
    uplink_trace: str | None = None
    downlink_trace: str | None = None
    trace_scale: list[float] = field(default_factory=lambda: [1.0])  # multiplies the traces' capacity; the axis
    trace_offset_s: float | Literal["random"] = 0.0  # where in the trace the run starts; random: from the seed
    outages: list[OutageWindow] = field(default_factory=list)  # windows in which both links carry nothing
    outage_model: OutageModel | None = None
    # fleets: uplink capacity shared by every edge, Mbit/s; active transmitters split it equally, each
    # also capped by its own link (null: every edge has its own link)
    cell_uplink_mbps: float | None = None


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
    width: float = 0.25  # channel width multiplier of the trained proxy model (vgg16 and resnet18 only)
    input_size: int | None = None  # pixels the proxy trains at (resized on the fly); default: workload.input_size
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
    cloud: CloudConfig
    network: NetworkConfig
    edge: EdgeConfig | None = None  # one edge device; or `edges`, a fleet
    edges: list[EdgeGroupConfig] = field(default_factory=list)  # a fleet: groups of edges (README, "Fleets")
    fleet: FleetConfig = field(default_factory=FleetConfig)
    methods: list[Method] = field(default_factory=lambda: list(METHODS))
    full_cloud: FullCloudConfig = field(default_factory=FullCloudConfig)
    accuracy: AccuracyConfig = field(default_factory=AccuracyConfig)
    split_search: SplitSearchConfig = field(default_factory=SplitSearchConfig)
    seed: int = 0
    replications: int = 1  # runs of every stochastic configuration, each with its own seed and trace offset
    name: str = ""  # default: the file name without .yaml
    output_dir: str = ""  # default: reports/<name>
    description: str = ""
    # dotted scenario key -> values: the scenario is run at every combination (README, "Sweeps")
    sweep: dict[str, list[Any]] = field(default_factory=dict)
    targets: list[TargetConfig] = field(default_factory=list)
    # Filled by load_scenario, not YAML keys:
    path: str = field(default="", init=False)
    data: dict = field(default_factory=dict, init=False)  # the file's data as read, for the sweep's settings
    downlink_trace_mean_mbps: float = field(default=0.0, init=False)  # set with network.downlink_trace
    edge_profiles: dict[str, Profile] = field(default_factory=dict, init=False)
    cloud_profiles: dict[str, Profile] = field(default_factory=dict, init=False)
    # a fleet's groups, each as the one-edge scenario of one of its edges (`scenario.fleet`)
    groups: list["Scenario"] = field(default_factory=list, init=False)

    @property
    def is_fleet(self) -> bool:
        return bool(self.edges)

    @property
    def train_samples(self) -> int:
        return self.workload.train_samples or DATASETS[self.workload.dataset].train_samples

    @property
    def batches_per_epoch(self) -> int:
        """ceil(train_samples / batch_size): the last batch is padded to a full batch."""
        return -(-self.train_samples // self.workload.batch_size)

    def downlink_mbps(self, uplink_mbps: float) -> float:
        """The downlink's rate (its trace's mean x scale with a downlink trace)."""
        if self.network.downlink_trace is not None:
            return self.downlink_trace_mean_mbps * self.trace_scale(uplink_mbps)
        if self.network.downlink_mbps is not None:
            return self.network.downlink_mbps
        return uplink_mbps * self.network.downlink_ratio

    def trace_scale(self, uplink_mbps: float) -> float:
        """The trace scale of the run at `uplink_mbps` (the trace's mean rate x scale with an
        uplink trace; the one scale of the downlink trace otherwise)."""
        if self.network.uplink_trace is None:
            return self.network.trace_scale[0]
        return self.network.trace_scale[self.network.uplink_mbps.index(uplink_mbps)]

    @property
    def stochastic(self) -> bool:
        """Whether runs draw random numbers: jitter, loss, an outage model or a random trace offset."""
        n = self.network
        return (n.jitter_ms > 0 or n.loss_rate > 0 or n.outage_model is not None
                or (n.trace_offset_s == "random" and (n.uplink_trace or n.downlink_trace) is not None))

    def summary(self) -> str:
        models = ", ".join(f"{m.name}@{m.split_text()}" for m in self.workload.models)
        if self.is_fleet:
            groups = ", ".join(f"{c.count} x {c.name}" for c in self.edges)
            rates = f" x {len(self.network.uplink_mbps)} uplink rates" if self.network.uplink_mbps else ""
            return (f"{models} on {self.workload.dataset}, {len(self.methods)} methods{rates}; a fleet of {groups} "
                    f"({sum(c.count for c in self.edges)} edges), {self.cloud.gpus} cloud GPU(s), "
                    f"{self.workload.epochs} epochs")
        return (f"{models} on {self.workload.dataset}, {len(self.methods)} methods x "
                f"{len(self.network.uplink_mbps)} uplink rates, {self.workload.epochs} epochs of "
                f"{self.batches_per_epoch} batches")
