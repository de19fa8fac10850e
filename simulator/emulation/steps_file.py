"""Measured part steps, and the file that keeps them (`part_steps.json`).

`simulate emulate` measures the part steps in its workers at the start of every session and
writes them beside validation.csv; `--measure-steps` does only that. `--part-steps FILE`
reuses such a file instead, but only on the machines and torch build that measured it (a
compute model from another host silently predicted a full-model step of 64 ms where this
host takes 40): every entry records both workers' hosts (`hosts.host_identity`).

    {"schema": "part_steps/2", "created": ..., "entries": [MeasuredSteps, ...]}

One entry per model and separation point, with what was measured (`part_steps`):
`busy_ms` (step -> ms, back to back) and `after_wait_ms` (step -> {wait ms -> ms}).
"""
import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..core.errors import UserError
from ..core.files import atomic_write_text
from ..core.typed import build_dataclass, read_json
from .hosts import identity_difference
from .part_steps import CLOUD_STEPS, EDGE_STEPS
from .session import RunRequest

SCHEMA = "part_steps/2"
KEY_FIELDS = ("model", "split", "codec", "dataset", "width", "batch_size", "edge_threads", "cloud_threads")


@dataclass(frozen=True)
class MeasuredSteps:
    """Both workers' part steps of one model cut at one point, and where they were measured."""

    model: str
    split: str
    codec: str
    dataset: str
    width: float
    batch_size: int
    edge_threads: int
    cloud_threads: int
    edge_host: dict[str, Any]  # hosts.host_identity() of the edge worker
    cloud_host: dict[str, Any]
    busy_ms: dict[str, float]  # step (EDGE_STEPS + CLOUD_STEPS) -> ms per batch, back to back
    after_wait_ms: dict[str, dict[str, float]]  # step (part_steps.WAITING) -> {wait in ms, as text -> ms after it}
    repeats: int
    wait_repeats: int

    def key(self) -> tuple:
        return tuple(getattr(self, name) for name in KEY_FIELDS)

    def describe(self) -> str:
        return (f"{self.model} cut at {self.split} ({self.codec}, {self.dataset}, width {self.width:g}, batch "
                f"{self.batch_size}, {self.edge_threads}+{self.cloud_threads} threads)")



@dataclass(frozen=True)
class StepsFile:
    """A part-steps file: its schema, when it was written, and one entry per model and point."""

    schema: str
    created: str
    entries: list[MeasuredSteps]


def request_key(request: RunRequest) -> tuple:
    return tuple(getattr(request, name) for name in KEY_FIELDS)


def write_steps(path: str | Path, entries: list[MeasuredSteps]) -> Path:
    data = {"schema": SCHEMA, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "entries": [asdict(entry) for entry in entries]}
    atomic_write_text(path, json.dumps(data, indent=1) + "\n")
    return Path(path)


def load_steps(path: str | Path) -> list[MeasuredSteps]:
    """The entries of a part-steps file; one line naming the file when it is not one."""
    data = read_json(path, "part-steps")
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        found = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise UserError(f"--part-steps {path}: schema {found!r}, expected {SCHEMA!r} (written by `simulate "
                        f"emulate`, or `simulate emulate SCENARIO.yaml --measure-steps`)")
    entries = build_dataclass(StepsFile, data, str(path)).entries
    for index, entry in enumerate(entries):
        missing = sorted(set(EDGE_STEPS + CLOUD_STEPS) - set(entry.busy_ms))
        if missing:
            raise UserError(f"{path}: entries[{index}].busy_ms lacks {missing[0]}; measure again")
        times = [("busy_ms", step, ms) for step, ms in entry.busy_ms.items()] + [
            ("after_wait_ms", step, ms) for step, waits in entry.after_wait_ms.items() for ms in waits.values()]
        for field_name, step, ms in times:
            if ms < 0:
                raise UserError(f"{path}: entries[{index}].{field_name}.{step} must be >= 0 ms, got {ms:g}")
        if entry.repeats < 1 or entry.wait_repeats < 0:
            raise UserError(f"{path}: entries[{index}]: repeats must be >= 1 and wait_repeats >= 0")
    return entries


def check_steps(path: str | Path, entries: list[MeasuredSteps], requests: list[RunRequest], edge_here: dict,
                cloud_here: dict | None) -> dict[tuple, MeasuredSteps]:
    """The entry of every run's model and point, measured on `edge_here` (and `cloud_here`, when
    known) with the same torch build; else one line saying which differs."""
    by_key = {entry.key(): entry for entry in entries}
    chosen = {}
    for request in requests:
        entry = by_key.get(request_key(request))
        if entry is None:
            raise UserError(f"--part-steps {path}: no part steps for {request.model} cut at {request.split} "
                            f"({request.codec}, batch {request.batch_size}, width {request.width:g}, "
                            f"{request.edge_threads}+{request.cloud_threads} threads); leave --part-steps out to "
                            f"measure them in this run")
        for side, here in (("edge", edge_here), ("cloud", cloud_here)):
            differs = identity_difference(getattr(entry, f"{side}_host"), here) if here is not None else ""
            if differs:
                raise UserError(f"--part-steps {path}: the {side} part steps were measured elsewhere ({differs}); "
                                f"a prediction must use this machine's speed: leave --part-steps out to measure "
                                f"them here")
        chosen[entry.key()] = entry
    return chosen
