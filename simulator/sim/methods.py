"""The three training methods as SimPy processes wired between the machines and the links.

Each method is one or two *phases*, each simulated in its own SimPy environment:

    split_learning      one phase; everything waits on everything (one segment).
    hierarchical        edge -> uplink (buffer of K batches) | cloud; the cloud's queue of
                        delivered features is unbounded, so the cloud is its own segment.
    full_cloud
      every_epoch       raw batches streamed up every epoch | cloud trains each on arrival.
      once              phase 1: upload the training set once; phase 2: the cloud trains
                        all epochs. The phases do not overlap (upload-then-train), so phase 2
                        is a fresh environment whose clock starts at phase 1's last delivery.

Segments and stage names feed the fast forward (see `recorder`).
"""
from collections.abc import Callable
from dataclasses import dataclass

import simpy

from ..core.names import (
    BACKWARD,
    CLOUD_GPU,
    DOWNLINK,
    EDGE_CPU,
    FORWARD,
    FULL_CLOUD,
    HIERARCHICAL,
    PREP,
    PROPAGATE,
    SEND,
    SPLIT_LEARNING,
    TRAIN,
    UPLINK,
    Stage,
    edge_compute,
)
from ..costmodel.costs import downlink_payload_bytes, packet_count, uplink_payload_bytes
from ..links.draws import LinkDraws, draw_link, link_rngs
from .devices import CloudServer, EdgeDevice
from .network import Link
from .recorder import Recorder
from .run import RunSpec

UPLINK_STAGES = ((UPLINK, SEND), (UPLINK, PROPAGATE))
DOWNLINK_STAGES = ((DOWNLINK, SEND), (DOWNLINK, PROPAGATE))
CLOUD_TRAIN = (CLOUD_GPU, TRAIN)


@dataclass(frozen=True)
class Phase:
    """One stretch of a run: how many batches, its stages by segment, and how to start it."""

    n_batches: int
    segments: tuple[tuple[Stage, ...], ...]
    lookback_batches: int  # how far back in batches one batch's times depend on earlier ones (the uplink buffer)
    start: Callable[[simpy.Environment, Recorder], None]


def link_draws(spec: RunSpec) -> tuple[LinkDraws, LinkDraws | None]:
    """The uplink's draws, one per batch it carries (full_cloud uploading once: one epoch), and the
    downlink's (split learning only, else None)."""
    n_batches = spec.epochs * spec.batches_per_epoch
    uplink_rng, downlink_rng = link_rngs(spec.seed)
    up_batches = spec.batches_per_epoch if spec.method == FULL_CLOUD and spec.raw_upload == "once" else n_batches
    up_bytes = uplink_payload_bytes(spec.costs, spec.method)
    up = draw_link(packet_count(up_bytes, spec.uplink), spec.uplink.loss_rate, spec.uplink.jitter_ms, up_batches,
                   uplink_rng)
    if spec.method != SPLIT_LEARNING:
        return up, None
    down_bytes = downlink_payload_bytes(spec.costs, spec.method)
    return up, draw_link(packet_count(down_bytes, spec.downlink), spec.downlink.loss_rate, spec.downlink.jitter_ms,
                         n_batches, downlink_rng)


def phases(spec: RunSpec) -> list[Phase]:
    """The phases of `spec`'s method, in order."""
    n_batches = spec.epochs * spec.batches_per_epoch
    up_draws, down_draws = link_draws(spec)
    compute = edge_compute(spec.edge_has_gpu)
    buffer = spec.uplink_buffer_batches

    def uplink(env: simpy.Environment, recorder: Recorder) -> Link:
        return Link(env, UPLINK, spec.uplink, up_draws, recorder, buffer, spec.drop_policy or "block",
                    keep_backlog=spec.uplink.shape.varies)

    def edge(env: simpy.Environment, recorder: Recorder) -> EdgeDevice:
        return EdgeDevice(env, recorder, spec.costs, spec.edge_has_gpu)

    def cloud(env: simpy.Environment, recorder: Recorder) -> CloudServer:
        return CloudServer(env, recorder, spec.costs, spec.method)

    def split_learning(env: simpy.Environment, recorder: Recorder) -> None:
        up, down = uplink(env, recorder), Link(env, DOWNLINK, spec.downlink, down_draws, recorder)
        env.process(edge(env, recorder).train_split(n_batches, up, down))
        env.process(cloud(env, recorder).serve(n_batches, up, down))

    def hierarchical(env: simpy.Environment, recorder: Recorder) -> None:
        up = uplink(env, recorder)
        env.process(edge(env, recorder).train_hierarchical(n_batches, up))
        env.process(cloud(env, recorder).serve(n_batches, up))

    def streamed(env: simpy.Environment, recorder: Recorder) -> None:
        up = uplink(env, recorder)
        env.process(edge(env, recorder).upload_raw(n_batches, up))
        env.process(cloud(env, recorder).serve(n_batches, up))

    def upload(env: simpy.Environment, recorder: Recorder) -> None:
        env.process(edge(env, recorder).upload_raw(spec.batches_per_epoch, uplink(env, recorder)))

    def train_stored(env: simpy.Environment, recorder: Recorder) -> None:
        env.process(cloud(env, recorder).train_stored(n_batches))

    if spec.method == SPLIT_LEARNING:
        edge_stages = ((EDGE_CPU, PREP), (compute, FORWARD))
        in_turn = edge_stages + UPLINK_STAGES + (CLOUD_TRAIN,) + DOWNLINK_STAGES + ((compute, BACKWARD),)
        return [Phase(n_batches, (in_turn,), 1, split_learning)]
    if spec.method == HIERARCHICAL:
        edge_stages = ((EDGE_CPU, PREP), (compute, TRAIN))
        return [Phase(n_batches, (edge_stages + UPLINK_STAGES, (CLOUD_TRAIN,)), buffer, hierarchical)]
    if spec.raw_upload == "every_epoch":
        return [Phase(n_batches, (UPLINK_STAGES, (CLOUD_TRAIN,)), buffer, streamed)]
    return [Phase(spec.batches_per_epoch, (UPLINK_STAGES,), buffer, upload),
            Phase(n_batches, ((CLOUD_TRAIN,),), 1, train_stored)]
