"""Simulate a fleet: N edges, one cloud of k GPUs, in one SimPy environment (README, "Fleets").

    full_cloud      every edge uploads its raw share (once, or streamed every epoch); the cloud
                    trains the union. Once: training starts when the last upload arrived.
    split_learning  sequential (Gupta & Raskar): one model; the edges take turns, each an
                    epoch's share; between turns the edge part's weights go up the finishing
                    edge's uplink and down the next edge's downlink.
                    parallel (SplitFed): every edge at once, the cloud serving their batches
                    from its queue; at each epoch's end every edge sends its edge part up,
                    waits until the cloud has all of them, and receives the average.
    hierarchical    every edge trains its own edge part and exit and streams features; the
                    cloud trains one cloud part from the merged stream (`fleet.cloud_order`).
                    edge_sync epoch: the edge parts and exits are averaged as in SplitFed
                    (the cloud keeps training what it has meanwhile).

The run ends when every batch was trained and every weight transfer arrived. One edge with its
own link and one GPU is the single-edge simulation exactly (tests/test_fleet.py holds them equal).
"""
import contextlib
import gc
import math

import simpy

from ..core.names import (
    CLOUD_GPU,
    DOWNLINK,
    FULL_CLOUD,
    HIERARCHICAL,
    SPLIT_LEARNING,
    TRAIN,
    UPLINK,
)
from ..costmodel.costs import (
    cloud_train_s,
    downlink_payload_bytes,
    edge_stages_s,
    serialisation_time_s,
    split_learning_batch_s,
    uplink_payload_bytes,
)
from ..sim.cell import Cell
from .cloud import CloudQueue, FleetCloud
from .edges import FleetEdge
from .spec import EdgeResult, FleetResult, FleetSpec


class SyncRound:
    """One averaging round: every edge's weights reach the cloud, then each edge gets the average."""

    def __init__(self, env: simpy.Environment, edges: list[FleetEdge], tag: int):
        self.tag = tag
        self.all_in = simpy.AllOf(env, [env.process(self._arrival(edge)) for edge in edges])

    def _arrival(self, edge: FleetEdge):
        yield edge.weights_up.get()

    def join(self, edge: FleetEdge):
        """Edge `edge`'s part of the round (use with `yield from`)."""
        yield from edge.send_weights(self.tag)
        yield self.all_in
        yield from edge.receive_weights(self.tag)


def simulate_fleet(spec: FleetSpec) -> FleetResult:
    """Run `spec` to its end; per-edge and fleet totals."""
    env = simpy.Environment()
    cell = Cell(env, spec.cell_uplink_mbps * 1e6) if spec.cell_uplink_mbps is not None else None
    queue = CloudQueue(env, spec.n_edges, spec.cloud_order)
    edges = [FleetEdge(env, i, group, run, queue, cell) for i, (group, run) in enumerate(spec.edges())]
    def gradient_down(edge: int, batch: int):
        yield from edges[edge].downlink.send(batch, downlink_payload_bytes(edges[edge].run.costs, spec.method))

    cloud = FleetCloud(env, spec.cloud_gpus, queue, [e.recorder for e in edges],
                       [cloud_train_s(e.run.costs, spec.method) for e in edges],
                       after=gradient_down if spec.method == SPLIT_LEARNING else None)
    work = [env.process(process) for process in method_processes(env, spec, edges, queue)]
    with frozen_objects():
        env.run(until=simpy.AllOf(env, work + [e.recorder.done for e in edges]))
    results = tuple(edge_result(edge, cloud.wait_s[edge.index]) for edge in edges)
    return FleetResult(total_time_s=max(r.total_time_s for r in results), cloud_gpus=spec.cloud_gpus,
                       cloud_busy_s=cloud.busy_s, cloud_offered_load=offered_load(spec, edges), edges=results)


@contextlib.contextmanager
def frozen_objects():
    """Keep the objects alive now (the fleet's machines, links and logs) out of the garbage
    collector's full passes while the run lasts: with a thousand edges those passes would scan
    them again and again (about 15% of the run's time), although none of them is garbage. It
    holds for the whole process until the run ends (gc.unfreeze)."""
    gc.freeze()  # no gc.collect() first: a full pass costs tens of ms, more than a small fleet's whole run
    try:
        yield
    finally:
        gc.unfreeze()


def method_processes(env: simpy.Environment, spec: FleetSpec, edges: list[FleetEdge], queue: CloudQueue) -> list:
    """The generators that drive `spec.method` across the fleet."""
    rounds: dict[int, SyncRound] = {}  # made when its first edge joins: a round holds a process per edge

    def epochs_of(edge: FleetEdge, train):
        """Edge `edge` trains epoch after epoch through `train(n, first)`, averaging after each."""
        per_epoch = edge.run.batches_per_epoch
        if not spec.syncs:
            yield from train(edge.n_batches, 0)
            return
        for epoch in range(spec.epochs):
            yield from train(per_epoch, epoch * per_epoch)
            if epoch not in rounds:
                rounds[epoch] = SyncRound(env, edges, -1 - epoch)
            sync = rounds[epoch]
            yield from sync.join(edge)
            rounds.pop(epoch, None)  # every edge has joined (the average came after all weights arrived)

    if spec.method == HIERARCHICAL:
        return [epochs_of(e, lambda n, first, e=e: e.device.train_hierarchical(n, e.uplink, first)) for e in edges]
    if spec.method == SPLIT_LEARNING and spec.split_learning == "parallel":
        return [epochs_of(e, lambda n, first, e=e: e.device.train_split(n, e.uplink, e.downlink, first))
                for e in edges]
    if spec.method == SPLIT_LEARNING:
        return [take_turns(spec, edges)]
    if edges[0].run.raw_upload == "every_epoch":
        return [e.device.upload_raw(e.n_batches, e.uplink) for e in edges]
    return [upload_then_train(env, edges, queue)]


def take_turns(spec: FleetSpec, edges: list[FleetEdge]):
    """Sequential split learning: per epoch, each edge its share in turn; the edge part's weights
    go from each edge through the cloud to the next (none before the very first turn)."""
    previous = None
    for epoch in range(spec.epochs):
        for edge in edges:
            if previous is not None and previous is not edge:
                tag = -1 - (epoch * len(edges) + edge.index)
                yield from previous.send_weights(tag)
                yield previous.weights_up.get()
                yield from edge.receive_weights(tag)
            per_epoch = edge.run.batches_per_epoch
            yield from edge.device.train_split(per_epoch, edge.uplink, edge.downlink, epoch * per_epoch)
            previous = edge


def upload_then_train(env: simpy.Environment, edges: list[FleetEdge], queue: CloudQueue):
    """full_cloud, raw_upload once: every edge uploads its share at once; when the last has
    arrived the cloud trains every epoch of the union from storage."""
    for edge in edges:
        edge.uplink.receiver = edge.uplink.delivered.put  # stored, not trained on arrival
        env.process(edge.device.upload_raw(edge.run.batches_per_epoch, edge.uplink))
    for edge in edges:
        for _ in range(edge.run.batches_per_epoch):
            yield edge.uplink.delivered.get()
    for epoch in range(edges[0].run.epochs):
        for edge in edges:
            per_epoch = edge.run.batches_per_epoch
            for batch in range(epoch * per_epoch, (epoch + 1) * per_epoch):
                queue.put(edge.index, batch)


def edge_result(edge: FleetEdge, wait_cloud_s: float) -> EdgeResult:
    recorder = edge.recorder
    return EdgeResult(group=edge.group.name, edge=edge.index,
                      total_time_s=max(edge.finished_s, edge.uplink.last_delivery_s, edge.downlink.last_delivery_s),
                      wait_cloud_s=wait_cloud_s, wait_cell_s=edge.uplink.cell_wait_s,
                      bytes_up=recorder.bytes_sent(UPLINK), bytes_down=recorder.bytes_sent(DOWNLINK),
                      sync_bytes=edge.sync_bytes, batches_trained=recorder.batches_done((CLOUD_GPU, TRAIN)),
                      batches_dropped=len(recorder.dropped))


def offered_load(spec: FleetSpec, edges: list[FleetEdge]) -> float:
    """GPUs' worth of cloud work the edges would offer if the cloud were infinitely fast:

        sum over edges of cloud_train_s / period_s,

    where period_s is the edge's batch period without waiting for the cloud: the slowest of its
    compute stages and its uplink transfer (hierarchical, streamed full_cloud), or one
    split-learning round trip less the cloud's share (split learning; sequential: only one
    edge at a time, so the largest of them). With a cell, the edges' uplink bits per second are
    scaled down to the cell's capacity when they would exceed it. nan for full_cloud uploading
    once: the cloud then trains stored data, as fast as it can.
    """
    method = spec.method
    if method == FULL_CLOUD and edges[0].run.raw_upload == "once":
        return math.nan
    loads, bits_per_s = [], []
    for edge in edges:
        run = edge.run
        cloud_s = cloud_train_s(run.costs, method)
        if method == SPLIT_LEARNING:
            period_s = split_learning_batch_s(run.costs, run.uplink, run.downlink) - cloud_s
        else:
            up_bytes = uplink_payload_bytes(run.costs, method)
            period_s = max((*edge_stages_s(run.costs, method, run.edge_has_gpu),
                            serialisation_time_s(up_bytes, run.uplink)))
        period_s = max(period_s, 1e-12)
        loads.append(cloud_s / period_s)
        bits_per_s.append(uplink_payload_bytes(run.costs, method) * 8 / period_s)
    if method == SPLIT_LEARNING and spec.split_learning == "sequential":
        return max(loads)
    if spec.cell_uplink_mbps is not None:
        scale = min(1.0, spec.cell_uplink_mbps * 1e6 / sum(bits_per_s))
        loads = [load * scale for load in loads]
    return sum(loads)
