"""One edge of a fleet: its machine, its links and what it recorded, in the fleet's one SimPy
environment. The machine and links are the single-edge ones (`sim.devices`, `sim.network`).

Weights (an edge part handed over, or averaged through the cloud) travel as control payloads
(negative batch numbers) on the same links, after whatever is queued before them: they see
the link's rate, latency, the cell and outages, but not the random loss and jitter draws, and
a drop policy never discards them.
"""
import simpy

from ..core.names import (
    BACKWARD,
    DOWNLINK,
    EDGE_CPU,
    FORWARD,
    FULL_CLOUD,
    PREP,
    SPLIT_LEARNING,
    TRAIN,
    UPLINK,
    edge_compute,
)
from ..links.draws import LinkDraws
from ..sim.cell import Cell
from ..sim.devices import EdgeDevice
from ..sim.methods import CLOUD_TRAIN, DOWNLINK_STAGES, UPLINK_STAGES, link_draws
from ..sim.network import Link
from ..sim.recorder import Recorder
from ..sim.run import RunSpec
from .cloud import CloudQueue
from .spec import EdgeGroupSpec


def stages(run: RunSpec) -> tuple[tuple[tuple[str, str], ...], ...]:
    """The recorder's stages of one edge's run, the cloud's training last (it ends a batch),
    except in split learning, where the edge's backward does."""
    compute = edge_compute(run.edge_has_gpu)
    cloud = (CLOUD_TRAIN,)
    if run.method == SPLIT_LEARNING:
        return (((EDGE_CPU, PREP), (compute, FORWARD)) + UPLINK_STAGES + cloud + DOWNLINK_STAGES
                + ((compute, BACKWARD),),)
    if run.method == FULL_CLOUD:
        return (UPLINK_STAGES + DOWNLINK_STAGES, cloud)
    return (((EDGE_CPU, PREP), (compute, TRAIN)) + UPLINK_STAGES + DOWNLINK_STAGES, cloud)


class FleetEdge:
    """Edge `index` of group `group`: an EdgeDevice, an uplink into the cloud's queue (through
    the cell, if any) and a downlink; weights delivered up land in `weights_up`."""

    def __init__(self, env: simpy.Environment, index: int, group: EdgeGroupSpec, run: RunSpec,
                 queue: CloudQueue, cell: Cell | None):
        self.env = env
        self.index = index
        self.group = group
        self.run = run
        self.n_batches = run.epochs * run.batches_per_epoch
        self.recorder = Recorder(env, self.n_batches, stages(run), 1, 0, fast_forward=False)
        self.device = EdgeDevice(env, self.recorder, run.costs, run.edge_has_gpu)
        self.weights_up = simpy.Store(env)  # weights this edge sent, delivered to the cloud
        self.sync_bytes = 0
        up_draws, down_draws = link_draws(run)  # no downlink draws but in split learning: it carries weights only

        def deliver(batch: int) -> None:
            if batch >= 0:
                queue.put(index, batch)
            else:
                self.weights_up.put(batch)

        self.uplink = Link(env, UPLINK, run.uplink, up_draws, self.recorder, run.uplink_buffer_batches,
                           run.drop_policy or "block", cell=cell, receiver=deliver)
        self.downlink = Link(env, DOWNLINK, run.downlink, down_draws or LinkDraws.empty(), self.recorder)

    def send_weights(self, tag: int):
        """Send this edge's weights up (use with `yield from`); they reach `weights_up`."""
        self.sync_bytes += self.group.weight_bytes
        yield from self.uplink.send(tag, self.group.weight_bytes)

    def receive_weights(self, tag: int):
        """The cloud sends weights down to this edge; returns when they arrived (`yield from`)."""
        self.sync_bytes += self.group.weight_bytes
        yield from self.downlink.send(tag, self.group.weight_bytes)
        yield self.downlink.delivered.get()

    @property
    def finished_s(self) -> float:
        """When its last batch was trained (the run waits for every edge's)."""
        return self.recorder.finished_s
