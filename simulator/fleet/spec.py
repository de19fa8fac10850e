"""One fleet run: what to simulate (`FleetSpec`) and what it took (`FleetResult`, `EdgeResult`).

A fleet is groups of identical edges. Each group carries the `RunSpec` one of its edges would
have alone (its costs, links, share of the data, compute, seed): the fleet engine reuses the
single-edge machines and links, adding the shared cell, the cloud's k GPUs and the weight
traffic of hand-overs and averaging.
"""
from dataclasses import dataclass, replace

import numpy as np

from ..core.names import (
    CLOUD_ORDERS,
    EDGE_SYNCS,
    HIERARCHICAL,
    SPLIT_LEARNING,
    SPLIT_LEARNING_MODES,
)
from ..links.traces import load_trace
from ..sim.run import RunSpec


@dataclass(frozen=True)
class EdgeGroupSpec:
    """`count` edges alike: each runs `run` (method, costs, links, batches per epoch, seed)."""

    name: str
    count: int
    run: RunSpec
    # fp32 parameters of the edge part (hierarchical: and its early exit), the payload of a
    # hand-over or an averaging round, bytes
    weight_bytes: int = 0
    random_trace_offset: bool = False  # each edge starts its trace at its own point (trace_offset_s: random)


@dataclass(frozen=True)
class FleetSpec:
    method: str
    groups: tuple[EdgeGroupSpec, ...]
    cloud_gpus: int = 1
    cell_uplink_mbps: float | None = None  # None: every uplink has its own capacity
    split_learning: str = "sequential"  # or parallel (SplitFed)
    cloud_order: str = "fifo"  # or round_robin
    edge_sync: str = "none"  # hierarchical: average the edge parts at each epoch's end ("epoch")

    def __post_init__(self) -> None:
        if not self.groups or any(g.count < 1 for g in self.groups):
            raise ValueError("a fleet needs at least one group of at least one edge")
        if len({(g.run.method, g.run.epochs) for g in self.groups}) != 1 or self.groups[0].run.method != self.method:
            raise ValueError("every group must run the fleet's method for the same number of epochs")
        if self.split_learning not in SPLIT_LEARNING_MODES:
            raise ValueError(f"unknown split_learning {self.split_learning!r}; valid: {', '.join(SPLIT_LEARNING_MODES)}")
        if self.cloud_order not in CLOUD_ORDERS:
            raise ValueError(f"unknown cloud_order {self.cloud_order!r}; valid: {', '.join(CLOUD_ORDERS)}")
        if self.edge_sync not in EDGE_SYNCS:
            raise ValueError(f"unknown edge_sync {self.edge_sync!r}; valid: {', '.join(EDGE_SYNCS)}")
        if self.cloud_gpus < 1:
            raise ValueError(f"cloud_gpus must be >= 1, got {self.cloud_gpus!r}")

    @property
    def epochs(self) -> int:
        return self.groups[0].run.epochs

    @property
    def n_edges(self) -> int:
        return sum(g.count for g in self.groups)

    @property
    def mode(self) -> str:
        """How the method runs across the fleet, for results.csv's fleet_mode."""
        if self.method == SPLIT_LEARNING:
            return self.split_learning
        if self.method == HIERARCHICAL:
            return f"{self.cloud_order}, edge_sync {self.edge_sync}"
        return self.groups[0].run.raw_upload

    @property
    def syncs(self) -> bool:
        """Whether edge parts are averaged through the cloud at each epoch's end (not with one edge:
        averaging one model changes nothing, so a one-edge fleet runs as a single edge does)."""
        averaged = (self.method == SPLIT_LEARNING and self.split_learning == "parallel") or \
            (self.method == HIERARCHICAL and self.edge_sync == "epoch")
        return averaged and self.n_edges > 1

    def edges(self) -> list[tuple[EdgeGroupSpec, RunSpec]]:
        """Every edge in order (group by group): its group and its own RunSpec. Edge 0 keeps its
        group's seed, so a one-edge fleet draws what the single edge draws; edge i > 0 draws its
        own jitter, loss and outages (and, with random_trace_offset, its own trace position)."""
        out = []
        for group in self.groups:
            for _ in range(group.count):
                index = len(out)
                run = group.run if index == 0 else edge_run(group, index)
                out.append((group, run))
        return out


def edge_seed(seed: int, edge: int) -> int:
    return int(np.random.SeedSequence([seed, edge]).generate_state(1)[0])


def edge_run(group: EdgeGroupSpec, edge: int) -> RunSpec:
    """Edge `edge`'s RunSpec: its group's with its own random streams."""
    run = group.run
    seed = edge_seed(run.seed, edge)
    links = {}
    for name in ("uplink", "downlink"):
        link = getattr(run, name)
        shape = link.shape
        if shape.outage_model is not None:
            shape = replace(shape, outage_seed=edge_seed(shape.outage_seed, edge))
        if group.random_trace_offset and shape.trace is not None:
            period_s = load_trace(shape.trace).period_s
            shape = replace(shape, offset_s=float(np.random.default_rng(seed).uniform(0.0, period_s)))
        links[name] = replace(link, shape=shape) if shape is not link.shape else link
    return replace(run, seed=seed, **links)


@dataclass(frozen=True)
class EdgeResult:
    """One edge's run (edges.csv): times in simulated seconds, traffic in bytes."""

    group: str
    edge: int  # 0-based across the fleet
    total_time_s: float  # until its last batch was trained (and its last weights delivered)
    wait_cloud_s: float  # its batches' time in the cloud's queue, summed
    wait_cell_s: float  # its payloads' time on the wire beyond its own link's, summed (the cell's share)
    bytes_up: int  # features / activations / raw batches and weights
    bytes_down: int  # gradients and weights
    sync_bytes: int  # weights up and down (hand-overs, averaging), within bytes_up + bytes_down
    batches_trained: int  # its batches the cloud trained
    batches_dropped: int  # its feature batches its uplink discarded


@dataclass(frozen=True)
class FleetResult:
    total_time_s: float
    cloud_gpus: int
    cloud_busy_s: float  # GPU-seconds of training
    cloud_offered_load: float  # GPUs' worth of work the edges offer (`offered_load`); nan where it does not apply
    edges: tuple[EdgeResult, ...]

    @property
    def cloud_utilisation(self) -> float:
        return self.cloud_busy_s / (self.cloud_gpus * self.total_time_s) if self.total_time_s > 0 else 0.0

    def total(self, name: str) -> float:
        return sum(getattr(e, name) for e in self.edges)
