"""The runs of an emulation session: every model x uplink rate x method, each at its point.

A fixed split is used as it is. Under `split: auto` each emulated rate gets the point the
scenario's own search chooses at that rate (`sweep.split_table.search_splits`, the table of
`simulate split --no-train`) on time and memory, and the run's note says so. Accuracy is not
checked: the emulation validates the time model, any point tests it, and checking would
train every candidate for real (minutes to hours); `simulate split` gives the choice with
accuracy, to write into the scenario.
"""
import copy
from dataclasses import dataclass, replace

from ..core.names import AUTO
from ..scenario.config import Scenario
from ..sweep.split_table import search_splits
from .session import RunRequest, cutting_method, run_request


@dataclass(frozen=True)
class PlannedRun:
    request: RunRequest
    note: str  # why this point, under split: auto ('' for a fixed split)


def at_rates(scenario: Scenario, rates_mbps: list[float]) -> Scenario:
    """The scenario with `rates_mbps` as its uplink rates (profiles and path kept). With an
    uplink trace each rate is the trace's mean x a scale, so the rates must be the scenario's
    own and their scales go with them."""
    changed = copy.copy(scenario)
    scales = scenario.network.trace_scale
    if scenario.network.uplink_trace is not None:
        scales = [scenario.trace_scale(rate) for rate in rates_mbps]
    changed.network = replace(scenario.network, uplink_mbps=list(rates_mbps), trace_scale=scales)
    return changed


def plan_runs(scenario: Scenario, rates_mbps: list[float], batches: int) -> list[PlannedRun]:
    """Every model x rate x method of the scenario, in that order, at its point."""
    auto = any(m.has_auto for m in scenario.workload.models)
    choices = search_splits(at_rates(scenario, rates_mbps), None, confirm=False).choices if auto else {}
    runs = []
    for model in scenario.workload.models:
        for rate in rates_mbps:
            for method in scenario.methods:
                cut_by = cutting_method(method)
                split_point, note = model.split_for(cut_by), ""
                if split_point == AUTO:
                    choice = choices[(model.name, cut_by, rate)]
                    split_point = choice.split
                    note = (f"split: auto chose {split_point} for {cut_by} at {rate:g} Mbit/s on time and memory "
                            f"({choice.reason})")
                runs.append(PlannedRun(run_request(scenario, model.name, split_point, method, rate, batches), note))
    return runs


def points(requests: list[RunRequest]) -> list[RunRequest]:
    """One request per distinct model and point (the first run of each), in order: what to measure."""
    seen: dict[tuple[str, str], RunRequest] = {}
    for request in requests:
        seen.setdefault((request.model, request.split), request)
    return list(seen.values())
