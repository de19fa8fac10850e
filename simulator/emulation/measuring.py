"""The start of a session, on the edge: who the cloud is, and both workers' part steps.

    hello     the cloud answers with its host identity (`hosts`)
    measure   for every model and point of the plan: the edge sends the request and one real
              batch; the cloud times its steps on its own machine while the edge waits; then
              the edge times its own while the cloud waits (`part_steps.measure_steps`)

so each part is measured where it runs, by the process that will run it, pinned to the same
cores, minutes before the runs. With `--part-steps FILE` nothing is measured; the file's
entries must come from these two hosts and this torch build (`steps_file.check_steps`).
Every measured entry goes to the result file as a JSON line {"part_steps": ...}.
"""
import json
from dataclasses import asdict
from typing import TextIO

from ..core.errors import UserError
from ..costmodel.costs import batch_costs, cloud_train_s
from ..scenario.config import Scenario
from .channel import CLOUD_RANK, DATA, TAG_CONTROL, Frame, recv_frame, send_frame
from .hosts import host_identity
from .part_steps import Repeats, WorkerSteps, measure_steps, measurement_bound_s
from .payloads import encode_raw
from .plan import points
from .session import RunRequest, use_device
from .steps_file import MeasuredSteps, check_steps, load_steps


def hello(timeout_s: float) -> dict:
    send_frame(Frame.control({"hello": True}), CLOUD_RANK, TAG_CONTROL, timeout_s)
    return recv_frame(CLOUD_RANK, TAG_CONTROL, timeout_s).message()["host"]


def step_estimate_s(scenario: Scenario, request: RunRequest, side: str) -> float:
    """The side's whole-model step from its profile's per-block sums: an upper scale for any of its steps."""
    profile = (scenario.edge_profiles if side == "edge" else scenario.cloud_profiles)[request.model]
    return cloud_train_s(batch_costs(profile, profile, request.split, request.codec), "full_cloud")


def measure_point(scenario: Scenario, request: RunRequest, images, labels, repeats: Repeats,
                  timeout_s: float) -> MeasuredSteps:
    """Both workers' part steps at the request's point: the cloud's first, then the edge's."""
    edge_bound_s = measurement_bound_s(step_estimate_s(scenario, request, "edge"), *repeats)
    cloud_bound_s = measurement_bound_s(step_estimate_s(scenario, request, "cloud"), *repeats)
    send_frame(Frame.control({"measure": request.to_dict(), "repeats": list(repeats),
                              "then_wait_s": timeout_s + edge_bound_s}), CLOUD_RANK, TAG_CONTROL, timeout_s)
    send_frame(Frame(DATA, 0, encode_raw(images, labels)), CLOUD_RANK, TAG_CONTROL, timeout_s)
    cloud = recv_frame(CLOUD_RANK, TAG_CONTROL, timeout_s + cloud_bound_s).message()
    if "error" in cloud:
        raise UserError(cloud["error"])
    device = use_device(scenario.edge_profiles[request.model], request.edge_threads)
    edge = measure_steps(WorkerSteps(request, "edge", images, labels, device), *repeats)
    return MeasuredSteps(model=request.model, split=request.split, codec=request.codec, dataset=request.dataset,
                         width=request.width, batch_size=request.batch_size, edge_threads=request.edge_threads,
                         cloud_threads=request.cloud_threads, edge_host=host_identity(), cloud_host=cloud["host"],
                         busy_ms=edge["busy_ms"] | cloud["busy_ms"],
                         after_wait_ms=edge["after_wait_ms"] | cloud["after_wait_ms"], repeats=repeats.repeats,
                         wait_repeats=repeats.wait_repeats)


def session_steps(scenario: Scenario, requests: list[RunRequest], data, given: str | None, repeats: Repeats,
                  timeout_s: float, out: TextIO) -> dict[tuple, MeasuredSteps]:
    """The part steps of every request's model and point, by steps_file.request_key: from the
    file `given` (checked against the cloud's host), or measured now (`repeats`) and written to `out`."""
    cloud_host = hello(timeout_s)
    if given is not None:
        return check_steps(given, load_steps(given), requests, host_identity(), cloud_host)
    measured = {}
    images, labels = data.raw(0)
    for request in points(requests):
        entry = measure_point(scenario, request, images, labels, repeats, timeout_s)
        out.write(json.dumps({"part_steps": asdict(entry)}) + "\n")
        out.flush()
        measured[entry.key()] = entry
    return measured
