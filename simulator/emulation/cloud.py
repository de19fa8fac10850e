"""The cloud worker: serves the edge's runs one after the other, training the cloud part.

Per run, what the simulator's `CloudServer` schedules, for real:

    full_cloud      receive the N raw batches (upload once), then train the whole model on each:
                    prep + forward + backward + step
    split_learning  per batch: decode the activations, forward, loss, backward, step, then the
                    gradient down the paced downlink (rate downlink_mbps, unbounded buffer)
    hierarchical    per batch, in arrival order: decode the features, forward, loss, backward, step

A receiver thread keeps a receive posted, so arrivals queue as in the simulator's store of
delivered payloads; the edge's end-of-stream frame says that no more will come (under a drop
policy fewer than the run's batches arrive). The downlink follows the simulated run's own
link (`prediction.emulated_spec`: constant rate, or the trace and outages; `pacing.link_clock`).
The cloud's clock starts when it answers "ready" and stops when its last batch is trained;
it reports that time, the batches trained and its mean compute per batch. Its waits for the
edge are the `wait_s` the run request brings (the timeout plus the links' stalls).

Before the runs the edge may ask for the cloud's host identity ("hello") and for its part
steps at a point ("measure", followed by the real batch to measure on): the cloud measures
them here, on its own machine, while the edge waits.
"""
import time

from ..core.errors import UserError
from ..costmodel.costs import downlink_payload_bytes
from ..data.batching import get_preprocess
from ..scenario.config import Scenario
from .channel import (
    DATA,
    EDGE_RANK,
    TAG_CONTROL,
    TAG_DOWNLINK,
    TAG_UPLINK,
    Frame,
    LinkLost,
    Receiver,
    recv_frame,
    send_frame,
)
from .compute import cloud_features, cloud_raw
from .hosts import host_identity
from .pacing import PacedLink, link_clock
from .part_steps import Repeats, WorkerSteps, measure_steps
from .payloads import decode_raw
from .prediction import emulated_spec
from .session import RunRequest, mismatch, set_up, sgd, synchronize, use_device


class CloudRun:
    """One run on the cloud side."""

    def __init__(self, scenario: Scenario, request: RunRequest, timeout_s: float, wait_s: float):
        self.request, self.timeout_s, self.wait_s = request, timeout_s, wait_s
        setup = set_up(scenario, request, "cloud")
        self.threads, self.device, self.parts, self.shape = setup.threads, setup.device, setup.parts, setup.shape
        self.gradient_bytes = downlink_payload_bytes(setup.costs, request.method)
        self.affine = tuple(t.to(self.device) for t in get_preprocess(request.dataset).affine())
        self.input_shape = (request.batch_size, *scenario.cloud_profiles[request.model].input_shape)
        whole = [self.parts.edge, self.parts.cloud]
        self.optimizer = sgd(whole if request.method == "full_cloud" else [self.parts.cloud], request)
        self.downlink = None
        if request.method == "split_learning":
            downlink = emulated_spec(scenario, request, None).downlink
            self.downlink = PacedLink("downlink", lambda f: send_frame(f, EDGE_RANK, TAG_DOWNLINK, timeout_s),
                                      request.downlink_mbps, request.latency_ms, None, link_clock(downlink))
        self.compute_s, self.trained = 0.0, 0
        self.last_trained_s: float | None = None  # time.perf_counter() when the last batch was trained

    def run(self) -> dict:
        r = self.request
        uplink = Receiver(EDGE_RANK, TAG_UPLINK, r.batches + 1, self.wait_s)  # the batches, then the end
        send_frame(Frame.control({"ready": True}), EDGE_RANK, TAG_CONTROL, self.timeout_s)
        start_s = time.perf_counter()
        if self.downlink is not None:
            self.downlink.start(start_s)
        print(f"cloud worker: {r.model} {r.method} at {r.uplink_mbps:g} Mbit/s, {r.batches} batches", flush=True)
        if r.method == "full_cloud":
            stored = list(arrivals(uplink))  # upload once, then train
            for frame in stored:
                self.train_raw(frame)
        else:
            for frame in arrivals(uplink):
                self.train_features(frame)
        end_s = self.last_trained_s if self.last_trained_s is not None else start_s
        if self.downlink is not None and not self.downlink.close(self.wait_s + r.latency_ms / 1e3):
            raise LinkLost(self.downlink.error or "downlink not delivered")
        return {"cloud_s": end_s - start_s, "cloud_batches": self.trained, "threads": self.threads,
                "cloud_compute_ms": 1e3 * self.compute_s / max(self.trained, 1),
                "bytes_down": self.downlink.bytes_charged if self.downlink else 0}

    def train_raw(self, frame: Frame) -> None:
        started_s = time.perf_counter()
        cloud_raw(self.parts, self.optimizer, frame.body, self.input_shape, self.affine, self.device)
        synchronize(self.device)
        self.finish(started_s)

    def train_features(self, frame: Frame) -> None:
        started_s = time.perf_counter()
        gradient = cloud_features(self.parts, self.optimizer, frame.body, self.request.codec, self.shape,
                                  self.device, send_gradient=self.downlink is not None)
        synchronize(self.device)
        self.finish(started_s)
        if gradient is not None:
            self.downlink.send(Frame(DATA, frame.batch, gradient), self.gradient_bytes)

    def finish(self, started_s: float) -> None:
        self.last_trained_s = time.perf_counter()
        self.compute_s += self.last_trained_s - started_s
        self.trained += 1


def arrivals(uplink: Receiver):
    """The data frames of a run's uplink, in order, until the edge's end of stream."""
    while (frame := uplink.get()).kind == DATA:
        yield frame


def serve(scenario: Scenario, timeout_s: float) -> None:
    """Answer run requests until the edge says "shutdown"; a request the scenario cannot serve
    gets an error reply (the edge reports it). LinkLost when the edge goes away."""
    wait_s = timeout_s
    while True:
        message = recv_frame(EDGE_RANK, TAG_CONTROL, wait_s).message()
        wait_s = message.get("then_wait_s", timeout_s)  # the edge measures its own steps next
        if message.get("shutdown"):
            return
        if message.get("hello"):
            send_frame(Frame.control({"host": host_identity()}), EDGE_RANK, TAG_CONTROL, timeout_s)
            continue
        request = RunRequest.from_dict(message["measure"] if "measure" in message else message["run"])
        batch = recv_frame(EDGE_RANK, TAG_CONTROL, timeout_s) if "measure" in message else None
        problem = mismatch(scenario, request)
        if problem:
            send_frame(Frame.control({"error": problem}), EDGE_RANK, TAG_CONTROL, timeout_s)
            continue
        try:
            if batch is None:
                result = CloudRun(scenario, request, timeout_s, message.get("wait_s", timeout_s)).run()
            else:
                result = measure_cloud(scenario, request, batch, Repeats(*message["repeats"]))
        except UserError as exc:
            send_frame(Frame.control({"error": str(exc)}), EDGE_RANK, TAG_CONTROL, timeout_s)
            continue
        send_frame(Frame.control(result), EDGE_RANK, TAG_CONTROL, timeout_s)


def measure_cloud(scenario: Scenario, request: RunRequest, batch: Frame, repeats: Repeats) -> dict:
    """The cloud's part steps at the request's point, on the edge's real batch (raw uint8 + labels)."""
    profile = scenario.cloud_profiles[request.model]
    device = use_device(profile, request.cloud_threads)
    images, labels = decode_raw(batch.body, (request.batch_size, *profile.input_shape))
    print(f"cloud worker: measuring part steps of {request.model} at {request.split}", flush=True)
    return measure_steps(WorkerSteps(request, "cloud", images, labels, device), *repeats) | {"host": host_identity()}
