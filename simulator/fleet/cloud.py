"""The fleet's cloud: k identical GPUs serving one queue of the batches every edge delivers.

    edges' uplinks --deliver(edge, batch)--> queue --> GPU 1 .. GPU k (each takes the next batch)

The queue hands batches out in one of two orders (`fleet.cloud_order`):

    fifo         in the order they arrived, whichever edge sent them
    round_robin  one batch per edge in turn among the edges with batches waiting: an edge that
                 delivers in bursts cannot starve the others

Both take O(1) per batch. A batch's *cloud wait* is the time from its delivery to a GPU
taking it; each edge's waits are summed (edges.csv `wait_cloud_s`).
"""
from collections import deque
from collections.abc import Callable

import simpy

from ..core.names import CLOUD_GPU, CLOUD_ORDERS, TRAIN
from ..sim.recorder import Recorder

Item = tuple[int, int, float]  # (edge, batch, delivered at s)


class CloudQueue:
    """Batches delivered by the edges, waiting for a GPU, taken in `order`."""

    def __init__(self, env: simpy.Environment, n_edges: int, order: str):
        if order not in CLOUD_ORDERS:
            raise ValueError(f"unknown cloud order {order!r}; valid: {', '.join(CLOUD_ORDERS)}")
        self.env = env
        self.round_robin = order == "round_robin"
        self.fifo: deque[Item] = deque()
        self.per_edge: list[deque[Item]] = [deque() for _ in range(n_edges)] if self.round_robin else []
        self.turns: deque[int] = deque()  # edges with batches waiting, in the order they get their turn
        self.idle: deque[simpy.Event] = deque()  # GPUs waiting for a batch

    def put(self, edge: int, batch: int) -> None:
        item = (edge, batch, self.env.now)
        if self.idle:
            self.idle.popleft().succeed(item)
        elif not self.round_robin:
            self.fifo.append(item)
        else:
            if not self.per_edge[edge]:
                self.turns.append(edge)
            self.per_edge[edge].append(item)

    def get(self) -> simpy.Event:
        """An event that succeeds with the next (edge, batch, delivered_s)."""
        event = self.env.event()
        if not self.round_robin and self.fifo:
            event.succeed(self.fifo.popleft())
        elif self.round_robin and self.turns:
            edge = self.turns.popleft()
            waiting = self.per_edge[edge]
            event.succeed(waiting.popleft())
            if waiting:
                self.turns.append(edge)  # back of the line
        else:
            self.idle.append(event)
        return event


class FleetCloud:
    """`gpus` GPUs, each training the next queued batch: `train_s[edge]` seconds, logged in that
    edge's recorder; `after(edge, batch)` then runs (split learning: the gradient goes down)."""

    def __init__(self, env: simpy.Environment, gpus: int, queue: CloudQueue, recorders: list[Recorder],
                 train_s: list[float], after: Callable[[int, int], object] | None = None):
        self.env = env
        self.queue = queue
        self.logs = [recorder.log(CLOUD_GPU, TRAIN) for recorder in recorders]
        self.train_s = train_s
        self.after = after
        self.busy_s = 0.0
        self.wait_s = [0.0] * len(recorders)  # per edge: delivered until a GPU took it, summed
        for _ in range(gpus):
            env.process(self.serve())

    def serve(self):
        """One GPU: take the next batch, train it, hand it on; for ever."""
        while True:
            edge, batch, delivered_s = yield self.queue.get()
            start_s = self.env.now
            self.wait_s[edge] += start_s - delivered_s
            yield self.env.timeout(self.train_s[edge])
            self.busy_s += self.train_s[edge]
            self.logs[edge].add(batch, start_s, self.env.now, self.train_s[edge])
            if self.after is not None:
                yield from self.after(edge, batch)
