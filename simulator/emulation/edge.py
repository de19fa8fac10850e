"""The edge worker: drives every run, trains the edge part, paces the uplink.

Per batch, what the simulator's `EdgeDevice` schedules, for real:

    full_cloud      queue the raw uint8 batch + labels on the uplink (blocks while the buffer is full)
    split_learning  prep, forward; activations + labels up; wait for the gradient; backward, step
    hierarchical    prep, forward, early exit forward + backward, step; features + labels into
                    the uplink buffer (waits only while it is full, never for the cloud; under
                    network.uplink_buffer_policy drop_* it never waits: a payload is discarded)

"prep" is the profile's `input_prep_ms`: a uint8 batch to a normalised float tensor (the
samples are drawn, shuffled and kept as uint8 before the clock starts; no augmentation).
If the cloud worker dies or the link drops, a hierarchical edge still trains all its
batches, split learning stops at once (it cannot go on without gradients), and the run
record says what happened. The uplink is paced by the simulated run's own link (`predict`'s
spec: constant rate, or the trace, its offset and the outages, `pacing.link_clock`); after
its last payload the edge ends the stream (`channel.end_of_stream`), so the cloud knows when
it has everything even when payloads were dropped. Every wait for the cloud is the timeout
plus the links' stalls over the run (`pacing.stall_allowance_s`), sent to the cloud with the
request. The runs come from the launcher's plan (`plan`), after the part steps
(`measuring`); records go to `result_path`, one JSON line per run.
"""
import contextlib
import json
import math
import time

import torch

from ..core.errors import UserError
from ..core.progress import progress_bar
from ..costmodel.costs import uplink_payload_bytes
from ..data.batching import get_preprocess, resize_raw
from ..scenario.config import Scenario
from ..training.runs import load_data
from .channel import (
    CLOUD_RANK,
    DATA,
    TAG_CONTROL,
    TAG_DOWNLINK,
    TAG_UPLINK,
    Frame,
    LinkLost,
    Receiver,
    end_of_stream,
    recv_frame,
    send_frame,
)
from .compute import edge_hierarchical, edge_split_backward, edge_split_forward
from .measuring import session_steps
from .pacing import PacedLink, link_clock, stall_allowance_s
from .part_steps import Repeats
from .payloads import encode_raw
from .prediction import predict
from .session import RunRecord, RunRequest, set_up, sgd, synchronize
from .steps_file import MeasuredSteps, request_key


class TrainingSet:
    """`count` samples of the scenario's dataset as uint8, in a seeded random order, and the
    profile's input prep (uint8 -> normalised float32) for each batch."""

    def __init__(self, scenario: Scenario, count: int):
        a = scenario.accuracy
        train_set, _ = load_data(scenario.workload.dataset, None, 1, scenario.seed, a.data_root, a.download)
        order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(scenario.seed))
        index = order[torch.arange(count) % len(order)]
        self.images = resize_raw(train_set.images[index], scenario.workload.input_size)  # camera-sized frames
        self.labels = train_set.labels[index]
        self.scale, self.shift = get_preprocess(scenario.workload.dataset).affine()
        self.batch_size = scenario.workload.batch_size

    def raw(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = slice(batch * self.batch_size, (batch + 1) * self.batch_size)
        return self.images[rows], self.labels[rows]

    def prepared(self, batch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = self.raw(batch)
        return images.to(device).to(torch.float32).mul_(self.scale.to(device)).add_(self.shift.to(device)), \
            labels.to(device)


class EdgeRun:
    """One run on the edge side, from the cloud's "ready" to the cloud's result."""

    def __init__(self, scenario: Scenario, request: RunRequest, data: TrainingSet, steps: MeasuredSteps,
                 timeout_s: float, progress: bool):
        self.scenario, self.request, self.data = scenario, request, data
        self.timeout_s, self.progress = timeout_s, progress
        setup = set_up(scenario, request, "edge")
        self.threads, self.device, self.parts = setup.threads, setup.device, setup.parts
        self.charged_bytes = uplink_payload_bytes(setup.costs, request.method)
        prediction = predict(scenario, request, steps)
        self.spec = prediction.spec  # the simulated run: its links and buffer policy
        self.predicted_s = prediction.result.total_time_s
        # a wait for the cloud: the timeout, plus what the links' outages and trace gaps may add
        self.wait_s = timeout_s + stall_allowance_s([self.spec.uplink, self.spec.downlink],
                                                    2 * self.predicted_s + timeout_s)
        self.uplink = None
        self.edge_batches, self.compute_s, self.backward_s, self.note = 0, 0.0, 0.0, ""

    def send_up(self, batch: int, body: torch.Tensor) -> None:
        assert body.numel() == self.charged_bytes, (body.numel(), self.charged_bytes)
        self.uplink.send(Frame(DATA, batch, body), self.charged_bytes)

    def run(self) -> RunRecord:
        r = self.request
        send_frame(Frame.control({"run": r.to_dict(), "wait_s": self.wait_s}), CLOUD_RANK, TAG_CONTROL,
                   self.timeout_s)
        reply = recv_frame(CLOUD_RANK, TAG_CONTROL, self.timeout_s).message()
        if "error" in reply:
            raise UserError(reply["error"])
        self.uplink = PacedLink("uplink", lambda f: send_frame(f, CLOUD_RANK, TAG_UPLINK, self.timeout_s),
                                r.uplink_mbps, r.latency_ms, r.uplink_buffer_batches, link_clock(self.spec.uplink),
                                self.spec.drop_policy or "block")
        down = Receiver(CLOUD_RANK, TAG_DOWNLINK, r.batches, self.wait_s) if r.method == "split_learning" else None
        bar = progress_bar(total=r.batches, desc=f"emulate {r.method} @ {r.uplink_mbps:g} Mbit/s", unit="batch",
                           enabled=self.progress, leave=False)
        start_s = time.perf_counter()
        self.uplink.start(start_s)
        try:
            for batch in range(r.batches):
                getattr(self, f"batch_{r.method}")(batch, down)
                self.edge_batches += 1
                bar.update()
        except LinkLost as exc:
            self.note = (f"split learning stopped at batch {self.edge_batches + 1} of {r.batches}: no gradient "
                         f"from the cloud ({exc}); it cannot continue without gradients")
        finally:
            bar.close()
        edge_s = time.perf_counter() - start_s
        flush_s = self.wait_s + r.uplink_buffer_batches * self.charged_bytes * 8 / (r.uplink_mbps * 1e6)
        if self.uplink.close(flush_s + r.latency_ms / 1e3):
            with contextlib.suppress(LinkLost):  # a cloud lost now is reported by cloud_result
                send_frame(end_of_stream(self.uplink.delivered), CLOUD_RANK, TAG_UPLINK, self.timeout_s)
        result = self.cloud_result() if not self.note else None
        return self.record(edge_s, result)

    def cloud_result(self) -> dict | None:
        """The cloud's report, waiting at most the timeout plus twice the predicted run time."""
        try:
            result = recv_frame(CLOUD_RANK, TAG_CONTROL, self.timeout_s + 2 * self.predicted_s).message()
        except LinkLost as exc:
            lost = self.uplink.error or str(exc)
            self.note = (f"cloud worker lost during the run ({lost}); the edge trained {self.edge_batches} of "
                         f"{self.request.batches} batches, {self.uplink.delivered} reached the cloud")
            return None
        if "error" in result:
            raise UserError(result["error"])
        return result

    def record(self, edge_s: float, result: dict | None) -> RunRecord:
        r = self.request
        ok = result is not None
        cloud_s = result["cloud_s"] if ok else None
        return RunRecord(
            model=r.model, split=r.split, method=r.method, uplink_mbps=r.uplink_mbps, batches=r.batches,
            status="ok" if ok else "cloud_lost", measured_s=max(edge_s, cloud_s) if ok else None, edge_s=edge_s,
            cloud_s=cloud_s, edge_batches=self.edge_batches, cloud_batches=result["cloud_batches"] if ok else None,
            edge_compute_ms=1e3 * self.compute_s / max(self.edge_batches, 1) if r.method != "full_cloud" else None,
            edge_backward_ms=1e3 * self.backward_s / max(self.edge_batches, 1) if r.method == "split_learning"
            else None,
            cloud_compute_ms=result["cloud_compute_ms"] if ok else None,
            link_late_ms=1e3 * self.uplink.late_s / max(self.uplink.delivered, 1),
            bytes_up=self.uplink.bytes_charged, bytes_down=result["bytes_down"] if ok else 0,
            batches_dropped=self.uplink.dropped,
            edge_threads=self.threads, cloud_threads=result["threads"] if ok else None, note=self.note)

    # ---- one batch of each method ---------------------------------------------------------
    def batch_full_cloud(self, batch: int, _down) -> None:
        images, labels = self.data.raw(batch)
        self.send_up(batch, encode_raw(images, labels))

    def batch_hierarchical(self, batch: int, _down) -> None:
        if batch == 0:
            self.optimizer = sgd([self.parts.edge, self.parts.early_exit], self.request)
        started_s = time.perf_counter()
        x, y = self.data.prepared(batch, self.device)
        body = edge_hierarchical(self.parts, self.optimizer, x, y, self.request.codec)
        self.compute_s += time.perf_counter() - started_s
        self.send_up(batch, body)

    def batch_split_learning(self, batch: int, down: Receiver) -> None:
        if batch == 0:
            self.optimizer = sgd([self.parts.edge], self.request)
        started_s = time.perf_counter()
        x, y = self.data.prepared(batch, self.device)
        activations, body = edge_split_forward(self.parts, self.optimizer, x, y, self.request.codec)
        self.compute_s += time.perf_counter() - started_s
        self.send_up(batch, body)
        gradient = down.get(self.wait_s)
        started_s = time.perf_counter()
        edge_split_backward(self.optimizer, activations, gradient.body, self.request.codec)
        synchronize(self.device)
        backward_s = time.perf_counter() - started_s
        self.compute_s += backward_s
        self.backward_s += backward_s


def run_edge(scenario: Scenario, data: TrainingSet, requests: list[RunRequest], given: str | None, repeats: Repeats,
             result_path: str, timeout_s: float, progress: bool, measure_only: bool) -> None:
    """The part steps of every point (from the file `given`, or measured now with `repeats`),
    then every planned run, one JSON line each in `result_path`. After the cloud is lost, the
    remaining runs are recorded as skipped."""
    lost = ""
    with open(result_path, "a") as out:
        steps = session_steps(scenario, requests, data, given, repeats, timeout_s, out)
        for request in [] if measure_only else requests:
            if lost:
                record = skipped(request, lost)
            else:
                try:
                    record = EdgeRun(scenario, request, data, steps[request_key(request)], timeout_s, progress).run()
                except LinkLost as exc:
                    record = skipped(request, f"cloud worker lost ({exc})", "cloud_lost")
                if record.status != "ok":
                    lost = f"not run: the cloud worker was lost in an earlier run ({record.method})"
            out.write(json.dumps({"record": record.to_dict()}) + "\n")
            out.flush()
    if not lost:
        send_frame(Frame.control({"shutdown": True}), CLOUD_RANK, TAG_CONTROL, timeout_s)


def skipped(request: RunRequest, note: str, status: str = "skipped") -> RunRecord:
    return RunRecord(model=request.model, split=request.split, method=request.method,
                     uplink_mbps=request.uplink_mbps, batches=request.batches, status=status, measured_s=None,
                     edge_s=None, cloud_s=None, edge_batches=0, cloud_batches=None, edge_compute_ms=None,
                     edge_backward_ms=None, cloud_compute_ms=None, link_late_ms=math.nan, bytes_up=0, bytes_down=0,
                     batches_dropped=0, edge_threads=request.edge_threads, cloud_threads=None, note=note)
