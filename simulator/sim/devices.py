"""The machines: an edge device and a cloud server, each owning SimPy resources.

Every piece of work holds its resource for a duration from `costs` and is logged as a stage
(resource, what) with its busy time (names: `core.names`).
"""
import simpy

from ..core.names import (
    BACKWARD,
    CLOUD_GPU,
    EDGE_CPU,
    FORWARD,
    FULL_CLOUD,
    HIERARCHICAL,
    PREP,
    SPLIT_LEARNING,
    TRAIN,
    edge_compute,
)
from ..costmodel.costs import (
    BatchCosts,
    cloud_train_s,
    downlink_payload_bytes,
    hierarchical_edge_train_s,
    split_edge_backward_s,
    split_edge_forward_s,
    uplink_payload_bytes,
)
from .network import Link
from .recorder import Recorder, StageLog


def work(env: simpy.Environment, resource: simpy.Resource, log: StageLog, batch: int, duration_s: float):
    """Hold `resource` for `duration_s` and log it (use with `yield from`)."""
    with resource.request() as request:
        yield request
        start_s = env.now
        yield env.timeout(duration_s)
        log.add(batch, start_s, env.now, duration_s)


class EdgeDevice:
    """The edge: a CPU and, if `has_gpu`, a GPU.

    Without a GPU the CPU does everything, one step after the other. With one, the CPU does
    input prep and the GPU the forward/backward/step. In hierarchical training the CPU then
    prefetches with depth 1: it starts preparing batch i+1 when the GPU starts batch i, so
    the two overlap but the CPU never runs further ahead. Split learning keeps prep and
    compute strictly in turn either way.
    """

    def __init__(self, env: simpy.Environment, recorder: Recorder, costs: BatchCosts, has_gpu: bool):
        self.env = env
        self.recorder = recorder
        self.costs = costs
        self.has_gpu = has_gpu
        self.cpu = simpy.Resource(env, capacity=1)
        # Runs forward, backward and the step: the GPU when there is one, else the CPU itself.
        self.compute = simpy.Resource(env, capacity=1) if has_gpu else self.cpu
        self.compute_name = edge_compute(has_gpu)

    def prepare(self, batch: int):
        """Input prep of one batch on the CPU (process)."""
        yield from work(self.env, self.cpu, self.recorder.log(EDGE_CPU, PREP), batch, self.costs.edge_prep_s)

    def train_hierarchical(self, n_batches: int, uplink: Link, first: int = 0):
        """Train edge blocks + early exit on batches first .. first + n_batches - 1, queueing the
        features (+ labels) up; blocks while the uplink buffer is full."""
        log = self.recorder.log(self.compute_name, TRAIN)
        train_s = hierarchical_edge_train_s(self.costs)
        payload_bytes = uplink_payload_bytes(self.costs, HIERARCHICAL)
        last = first + n_batches - 1
        prepared = self.env.process(self.prepare(first))
        for batch in range(first, last + 1):
            yield prepared
            if self.has_gpu and batch < last:
                prepared = self.env.process(self.prepare(batch + 1))  # prefetch while the GPU trains
            yield from work(self.env, self.compute, log, batch, train_s)
            yield from uplink.send(batch, payload_bytes)
            if not self.has_gpu and batch < last:
                prepared = self.env.process(self.prepare(batch + 1))

    def train_split(self, n_batches: int, uplink: Link, downlink: Link, first: int = 0):
        """Split learning on batches first .. first + n_batches - 1: prep, forward, activations
        (+ labels) up, wait for the gradient, backward + step; the next batch starts only then."""
        forward = self.recorder.log(self.compute_name, FORWARD)
        backward = self.recorder.log(self.compute_name, BACKWARD)
        payload_bytes = uplink_payload_bytes(self.costs, SPLIT_LEARNING)
        for batch in range(first, first + n_batches):
            yield from self.prepare(batch)
            yield from work(self.env, self.compute, forward, batch, split_edge_forward_s(self.costs))
            yield from uplink.send(batch, payload_bytes)
            yield downlink.delivered.get()
            yield from work(self.env, self.compute, backward, batch, split_edge_backward_s(self.costs))

    def upload_raw(self, n_batches: int, uplink: Link, first: int = 0):
        """Full cloud: queue raw batches (+ labels) up, as fast as the uplink buffer allows."""
        payload_bytes = uplink_payload_bytes(self.costs, FULL_CLOUD)
        for batch in range(first, first + n_batches):
            yield from uplink.send(batch, payload_bytes)


class CloudServer:
    """The cloud: one GPU that trains the cloud part (or, for full_cloud, the whole model)."""

    def __init__(self, env: simpy.Environment, recorder: Recorder, costs: BatchCosts, method: str):
        self.env = env
        self.gpu = simpy.Resource(env, capacity=1)
        self.log = recorder.log(CLOUD_GPU, TRAIN)
        self.train_s = cloud_train_s(costs, method)
        self.gradient_bytes = downlink_payload_bytes(costs, method)

    def serve(self, n_batches: int, uplink: Link, downlink: Link | None = None):
        """Train each batch delivered by the uplink, in order; in split learning, send the
        gradient back down."""
        for _ in range(n_batches):
            batch = yield uplink.delivered.get()
            yield from work(self.env, self.gpu, self.log, batch, self.train_s)
            if downlink is not None:
                yield from downlink.send(batch, self.gradient_bytes)

    def train_stored(self, n_batches: int):
        """Train `n_batches` from data already uploaded (full_cloud, raw_upload="once")."""
        for batch in range(n_batches):
            yield from work(self.env, self.gpu, self.log, batch, self.train_s)
