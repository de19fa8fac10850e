"""The simulator's prediction for an emulated run, from part steps measured on this machine.

    predicted_s   the discrete-event simulation of the same scenario, model, point, method and
                  rates, for one epoch of `batches` batches (`sweep.points.run_spec` with
                  batches_per_epoch = batches, epochs = 1, replication 0: its trace offset and
                  outage draws, which the real run's paced links follow too), each worker's
                  compute per batch the part steps given (`MeasuredSteps`, never read from a
                  file here)
    structural_s  the same simulation with each run's own per-batch compute, measured in the
                  workers during the run, in place of the part steps: what is left of the
                  error is the pipeline, link and queue model's (`structural_spec`)

Compute charged per batch, for each step s of the method (README "Real runs"):

    busy_ms[s] + wake_ms(s, idle)      idle = the worker's idle time per batch before s,
                                       (total_s - busy_s) / batches of the simulation itself

where wake_ms(s, idle) = after_wait_ms[s] at `idle`, minus busy_ms[s] (never below 0: a step
cannot gain from waiting, a lower mean is noise): linear between the waits measured, 0 at no
wait, the longest wait's beyond it. It applies to the steps that
follow a wait (`part_steps.WAITING`): the hierarchical edge (waiting for room in the uplink
buffer), split learning's edge backward (for the gradient), the cloud (for an arrival); never
to full-cloud's cloud, which trains the stored batches back to back. The idle time depends on
what is charged, so the simulation is repeated until the charge settles (a few passes).
"""
import itertools
import math
from dataclasses import dataclass, replace

from ..costmodel.costs import (
    BatchCosts,
    PartSteps,
    cloud_train_s,
    hierarchical_edge_train_s,
    split_edge_backward_s,
    split_edge_forward_s,
)
from ..scenario.config import Scenario
from ..sim.engine import simulate
from ..sim.run import RunResult, RunSpec
from ..sweep.points import SweepPoint, run_spec
from .session import RunRequest
from .steps_file import MeasuredSteps

PASSES = 6  # most simulations per prediction; the charge settles within 0.1% in 2-3 here
EDGE_WAITING = {"hierarchical": "hierarchical_edge", "split_learning": "split_edge_backward"}  # method -> step
CLOUD_WAITING = {"hierarchical": "hierarchical_cloud", "split_learning": "split_cloud"}
PART_FIELDS = {"hierarchical_edge": "hierarchical_edge_s", "split_edge_forward": "split_edge_forward_s",
               "split_edge_backward": "split_edge_backward_s", "hierarchical_cloud": "hierarchical_cloud_s",
               "split_cloud": "split_cloud_s", "full_cloud": "full_cloud_s"}


@dataclass(frozen=True)
class Prediction:
    result: RunResult
    spec: RunSpec  # with the part steps charged, wake-up included
    edge_wake_ms: float  # wake-up cost charged per batch (0 where the step never waits; nan without an edge step)
    cloud_wake_ms: float


def emulated_spec(scenario: Scenario, request: RunRequest, steps: PartSteps | None) -> RunSpec:
    """The scenario's run of the request's model, point, method and rate as one epoch of its
    batches, computing `steps` per batch (None: the profiles' per-block sums)."""
    spec = run_spec(scenario, SweepPoint(request.model, request.split, request.method, request.uplink_mbps))
    costs = spec.costs if steps is None else replace(spec.costs, part_steps=steps)
    return replace(spec, costs=costs, batches_per_epoch=request.batches, epochs=1, trace_batches=0)


def busy_steps(measured: MeasuredSteps) -> PartSteps:
    return PartSteps(**{field: measured.busy_ms[step] / 1e3 for step, field in PART_FIELDS.items()})


def wake_ms(measured: MeasuredSteps, step: str, idle_ms: float) -> float:
    """Extra time of `step` after `idle_ms` of idle, interpolated in the measured waits."""
    points = [(0.0, 0.0)] + sorted((float(wait), max(0.0, ms - measured.busy_ms[step]))  # below busy: noise
                                   for wait, ms in measured.after_wait_ms[step].items())
    if idle_ms >= points[-1][0]:
        return points[-1][1]
    for (w0, c0), (w1, c1) in itertools.pairwise(points):
        if idle_ms <= w1:
            return c0 + (c1 - c0) * (max(idle_ms, 0.0) - w0) / (w1 - w0)
    raise AssertionError("unreachable")


def idle_per_batch_ms(result: RunResult, spec: RunSpec) -> tuple[float, float]:
    """(edge, cloud) idle time per batch of the simulated run, ms: (total - busy) / batches."""
    batches = spec.batches_per_epoch * spec.epochs
    return (1e3 * (result.total_time_s - result.edge_busy_s) / batches,
            1e3 * (result.total_time_s - result.cloud_busy_s) / batches)


def predict(scenario: Scenario, request: RunRequest, measured: MeasuredSteps) -> Prediction:
    """The simulation of one emulated run, the wake-up cost charged where the workers wait."""
    method, base = request.method, busy_steps(measured)
    steps = base
    for _ in range(PASSES):
        spec = emulated_spec(scenario, request, steps)
        result = simulate(spec)
        if method == "full_cloud":
            return Prediction(result, spec, math.nan, 0.0)
        edge_step, cloud_step = PART_FIELDS[EDGE_WAITING[method]], PART_FIELDS[CLOUD_WAITING[method]]
        edge_idle_ms, cloud_idle_ms = idle_per_batch_ms(result, spec)
        wake = (wake_ms(measured, EDGE_WAITING[method], edge_idle_ms),
                wake_ms(measured, CLOUD_WAITING[method], cloud_idle_ms))
        charged = replace(base, **{edge_step: getattr(base, edge_step) + wake[0] / 1e3,
                                   cloud_step: getattr(base, cloud_step) + wake[1] / 1e3})
        if all(math.isclose(getattr(charged, f), getattr(steps, f), rel_tol=1e-3) for f in (edge_step, cloud_step)):
            break
        steps = charged
    return Prediction(result, spec, 1e3 * (getattr(steps, edge_step) - getattr(base, edge_step)),
                      1e3 * (getattr(steps, cloud_step) - getattr(base, cloud_step)))


def structural_spec(spec: RunSpec, edge_compute_ms: float | None, edge_backward_ms: float | None,
                    cloud_compute_ms: float) -> RunSpec:
    """`spec` with the run's own per-batch compute (measured in the workers, prep included) in
    place of the part steps charged; the other terms unchanged."""
    steps = spec.costs.part_steps
    method = spec.method
    if method == "full_cloud":
        steps = replace(steps, full_cloud_s=cloud_compute_ms / 1e3)
    elif method == "hierarchical":
        steps = replace(steps, hierarchical_edge_s=edge_compute_ms / 1e3, hierarchical_cloud_s=cloud_compute_ms / 1e3)
    else:
        steps = replace(steps, split_edge_forward_s=(edge_compute_ms - edge_backward_ms) / 1e3,
                        split_edge_backward_s=edge_backward_ms / 1e3, split_cloud_s=cloud_compute_ms / 1e3)
    return replace(spec, costs=replace(spec.costs, part_steps=steps, edge_prep_s=0.0))


def predicted_compute_ms(costs: BatchCosts, method: str) -> tuple[float, float]:
    """(edge, cloud) compute per batch the simulator charges, ms (edge: nan for full_cloud)."""
    if method == "full_cloud":
        edge_s = math.nan
    elif method == "hierarchical":
        edge_s = costs.edge_prep_s + hierarchical_edge_train_s(costs)
    else:
        edge_s = costs.edge_prep_s + split_edge_forward_s(costs) + split_edge_backward_s(costs)
    return 1e3 * edge_s, 1e3 * cloud_train_s(costs, method)
