"""Frames between the edge worker and the cloud worker over `torch.distributed` (gloo, TCP).

The cloud worker is rank 0 and hosts the rendezvous (a TCPStore on its listen address); the
edge worker is rank 1 and connects to it. Every message is a frame: a header of three int64
(kind, batch, body bytes) and, unless empty, a uint8 body. Each direction of traffic has its
own gloo tag, so the uplink, the downlink and the control messages never mix:

    TAG_UPLINK    edge -> cloud: features (+ labels) or raw batches, then one CONTROL frame
                  that ends the run's stream (`end_of_stream`)
    TAG_DOWNLINK  cloud -> edge: gradients (split learning)
    TAG_CONTROL   both ways: run requests, "ready", results, errors (JSON bodies)

Gloo keeps frames of one tag between one pair in order. Every wait is bounded: a send or a
receive that does not complete within its timeout raises `LinkLost`, and so does a peer that
closed its connection (gloo reports it at once).
"""
import datetime
import json
import queue
import socket
import threading
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..core.errors import UserError
from ..core.text import one_line

CLOUD_RANK, EDGE_RANK = 0, 1
TAG_UPLINK, TAG_DOWNLINK, TAG_CONTROL = 1, 2, 3
DATA, CONTROL = 0, 1  # frame kinds


class LinkLost(Exception):
    """The peer died, closed the connection or did not answer within the timeout."""


@dataclass(frozen=True)
class Frame:
    kind: int  # DATA or CONTROL
    batch: int  # batch number (DATA), -1 for CONTROL
    body: torch.Tensor  # uint8, 1-D

    @classmethod
    def control(cls, message: dict) -> "Frame":
        return cls(CONTROL, -1, torch.frombuffer(bytearray(json.dumps(message).encode()), dtype=torch.uint8))

    def message(self) -> dict:
        return json.loads(bytes(self.body.numpy()).decode())


def parse_address(text: str, flag: str) -> tuple[str, int]:
    """"HOST:PORT" -> (host, port), or a one-line error naming the flag."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"{flag} {text!r} is not HOST:PORT with a port in 1-65535")
    return host.strip("[]"), int(port)


def wait_until_reachable(host: str, port: int, deadline: float) -> None:
    """Retry a plain TCP connect to the cloud's rendezvous until it answers or `deadline`
    (time.monotonic()) passes; a clear error names the address and the last failure."""
    last = "no answer"
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise UserError(f"--cloud {host}:{port}: no cloud worker answered within the timeout ({last}); "
                            f"start `simulate emulate-worker --role cloud --listen {host}:{port} SCENARIO.yaml` "
                            f"there, or check the address, the port and the firewall")
        try:
            with socket.create_connection((host, port), timeout=min(left, 2.0)):
                return
        except OSError as exc:
            last = exc.strerror or type(exc).__name__
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))


def connect(role: str, host: str, port: int, timeout_s: float) -> None:
    """Join the two-process group as `role` ("cloud" hosts the rendezvous, "edge" joins it).

    The edge first checks that the address answers at all, so a wrong host or port fails
    with one clear line within `timeout_s` instead of gloo's retries."""
    deadline = time.monotonic() + timeout_s
    if role == "edge":
        wait_until_reachable(host, port, deadline)
    left_s = max(1.0, deadline - time.monotonic()) if role == "edge" else timeout_s
    try:
        dist.init_process_group("gloo", init_method=f"tcp://{host}:{port}",
                                rank=CLOUD_RANK if role == "cloud" else EDGE_RANK, world_size=2,
                                timeout=datetime.timedelta(seconds=left_s))
    except (RuntimeError, ValueError) as exc:
        where = "--listen" if role == "cloud" else "--cloud"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{where} {host}:{port}: could not form the edge-cloud group within {timeout_s:g} s "
                        f"({first})") from None


def gloo_error(exc: BaseException) -> str:
    """A gloo error as one short line (its first line, without the source location)."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return one_line(first.split("] ", 1)[-1])


def send_frame(frame: Frame, dst: int, tag: int, timeout_s: float) -> None:
    """Send one frame and wait until gloo has handed it over; LinkLost on failure or timeout."""
    timeout = datetime.timedelta(seconds=timeout_s)
    header = torch.tensor([frame.kind, frame.batch, frame.body.numel()], dtype=torch.int64)
    try:
        dist.isend(header, dst, tag=tag).wait(timeout)
        if frame.body.numel():
            dist.isend(frame.body, dst, tag=tag).wait(timeout)
    except RuntimeError as exc:
        raise LinkLost(gloo_error(exc)) from None


def recv_frame(src: int, tag: int, timeout_s: float) -> Frame:
    """Receive one frame (header, then body); LinkLost on failure or timeout."""
    timeout = datetime.timedelta(seconds=timeout_s)
    header = torch.zeros(3, dtype=torch.int64)
    try:
        dist.irecv(header, src, tag=tag).wait(timeout)
        kind, batch, nbytes = header.tolist()
        body = torch.empty(nbytes, dtype=torch.uint8)
        if nbytes:
            dist.irecv(body, src, tag=tag).wait(timeout)
    except RuntimeError as exc:
        raise LinkLost(gloo_error(exc)) from None
    return Frame(kind, batch, body)


def end_of_stream(delivered: int) -> Frame:
    """The frame that ends the uplink's stream of a run, sent after its last payload on the same
    tag (so it arrives last): under a drop policy only the edge knows how many payloads came."""
    return Frame.control({"end": True, "delivered": delivered})


class Receiver:
    """A thread that keeps a receive posted on one tag and queues what arrives (unbounded),
    like the simulator's store of delivered payloads: the sender never waits for the
    receiver to be free. It receives `count` frames, or fewer up to and including a CONTROL
    frame (the end of a stream whose length only the sender knows, `end_of_stream`).
    `get` returns frames in order, or raises LinkLost."""

    def __init__(self, src: int, tag: int, count: int, timeout_s: float):
        self.frames: queue.Queue = queue.Queue()
        self.timeout_s = timeout_s
        self.arrival_s: list[float] = []  # perf_counter() at each arrival, this process's clock
        self.thread = threading.Thread(target=self.receive, args=(src, tag, count), daemon=True,
                                       name=f"receive-tag{tag}")
        self.thread.start()

    def receive(self, src: int, tag: int, count: int) -> None:
        try:
            for _ in range(count):
                frame = recv_frame(src, tag, self.timeout_s)
                self.frames.put(frame)
                self.arrival_s.append(time.perf_counter())
                if frame.kind == CONTROL:
                    return
        except LinkLost as exc:
            self.frames.put(exc)

    def get(self, timeout_s: float | None = None) -> Frame:
        try:
            item = self.frames.get(timeout=self.timeout_s if timeout_s is None else timeout_s)
        except queue.Empty:
            raise LinkLost(f"nothing arrived within {self.timeout_s if timeout_s is None else timeout_s:g} s") from None
        if isinstance(item, LinkLost):
            self.frames.put(item)  # every later get fails the same way
            raise item
        return item
