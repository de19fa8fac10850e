"""Building a scenario from a file's data: type it (`config`), check every value against its
limit (`limits`), and load and check every profile it names (`load` reads the file and adds
the sweep and target checks of `grid`). Errors are one line naming the file and
the key (README, "Scenario keys").
"""
import dataclasses
import functools
from pathlib import Path
from typing import Any

from ..core.errors import UserError
from ..core.names import AUTO, METHODS
from ..core.typed import build_dataclass, key_text, shown
from ..core.wire import CODECS
from ..data.specs import DATASETS
from ..links.traces import load_trace
from ..models import build_model, model_slug
from ..profiling.schema import Profile
from .config import PAIRED, SPLIT_METHODS, FleetConfig, MethodSplits, Scenario
from .fleet import build_groups
from .limits import (
    MAX_ACCURACY_EPOCHS,
    MAX_ACCURACY_WIDTH,
    MAX_BATCH_SIZE,
    MAX_CLOUD_GPUS,
    MAX_DELAY_MS,
    MAX_EPOCH_ROWS,
    MAX_EPOCHS,
    MAX_EVENT_BATCHES,
    MAX_INPUT_SIZE,
    MAX_MTU_BYTES,
    MAX_RATE_MBPS,
    MAX_REPLICATIONS,
    MAX_TIME_S,
    MAX_TRACE_SCALE,
    MAX_TRAIN_SAMPLES,
    MAX_UPLINK_BUFFER_BATCHES,
    MAX_UPLINK_RATES,
    MIN_MEAN_UP_S,
    MIN_RATE_MBPS,
)


def scenario_from_data(data: Any, file: str) -> Scenario:
    """The scenario of the YAML data `data` read from `file`, type-checked and validated, with
    its profiles loaded (the sweep and targets are not checked here)."""
    scenario: Scenario = build_dataclass(Scenario, data, file)
    scenario.path, scenario.data = file, data
    scenario.name = scenario.name or Path(file).stem
    scenario.output_dir = scenario.output_dir or str(Path("reports") / scenario.name)
    if scenario.is_fleet:
        if scenario.edge is not None:
            raise UserError(f"{file}: edge and edges exclude each other; give one edge device (edge) or a fleet "
                            "(edges: a list of groups)")
        check_values(scenario, file)
        scenario.groups = build_groups(scenario, data, file, scenario_from_data)
        first = scenario.groups[0]
        scenario.edge, scenario.edge_profiles, scenario.cloud_profiles = first.edge, first.edge_profiles, \
            first.cloud_profiles
        return scenario
    if scenario.edge is None:
        raise UserError(f"{file}: missing key edge (the edge device; or edges, a list of groups, for a fleet)")
    if scenario.cloud.gpus != 1:
        raise UserError(f"{file}: cloud.gpus {scenario.cloud.gpus} needs a fleet (edges:); one edge's batches are "
                        "trained one at a time")
    if scenario.network.cell_uplink_mbps is not None:
        raise UserError(f"{file}: network.cell_uplink_mbps needs a fleet (edges:); one edge has its link to itself")
    changed = [f.name for f in dataclasses.fields(FleetConfig) if getattr(scenario.fleet, f.name) != f.default]
    if changed:
        raise UserError(f"{file}: fleet.{changed[0]} needs a fleet (edges:); with one edge it changes nothing")
    check_values(scenario, file)
    scenario.edge_profiles, scenario.cloud_profiles = load_profiles(scenario, file)
    return scenario


def positive(file: str, key: str, value: float, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise UserError(f"{file}: {key} must be {'>= 0' if allow_zero else '> 0'}, got {value}")


def check_values(s: Scenario, file: str) -> None:
    """Every value in range (limits.py), before any profile is read."""
    check_workload(s, file)
    check_network(s, file)
    check_accuracy(s, file)
    if s.edge is not None and s.edge.memory_mib is not None:
        positive(file, "edge.memory_mib", s.edge.memory_mib)
    if s.cloud.gpus < 1:
        raise UserError(f"{file}: cloud.gpus must be >= 1, got {s.cloud.gpus}")
    MAX_CLOUD_GPUS.check(file, "cloud.gpus", s.cloud.gpus)
    if s.fleet.dirichlet_alpha is not None:
        positive(file, "fleet.dirichlet_alpha", s.fleet.dirichlet_alpha)
    if not 0 <= s.split_search.max_accuracy_drop < 1:
        raise UserError(f"{file}: split_search.max_accuracy_drop must be in [0, 1) (a fraction: 0.02 = 2 points), "
                        f"got {s.split_search.max_accuracy_drop}")
    positive(file, "seed", s.seed, allow_zero=True)
    check_output_dir(s.output_dir, file)
    if not s.methods:
        raise UserError(f"{file}: methods is empty; valid: {', '.join(METHODS)}")
    if len(set(s.methods)) != len(s.methods):
        raise UserError(f"{file}: methods lists a method twice")
    runs = len(s.workload.models) * len(s.network.uplink_mbps) * len(s.methods) * s.replications
    MAX_EPOCH_ROWS.check(file, f"workload.epochs {s.workload.epochs:,} x {runs:,} runs (models x network.uplink_mbps "
                         "x methods) =", s.workload.epochs * runs)
    n = s.network
    if s.is_fleet:
        return  # each group checks its own share (scenario.fleet); the fleet's total has its own limit
    if n.jitter_ms > 0 or n.loss_rate > 0 or n.uplink_trace or n.downlink_trace or n.outages or n.outage_model \
            or n.uplink_buffer_policy != "block":
        batches = s.workload.epochs * s.batches_per_epoch
        MAX_EVENT_BATCHES.check(file, f"workload.epochs {s.workload.epochs:,} x {s.batches_per_epoch:,} batches per "
                                "epoch (simulated event by event: jitter, loss, a trace, outages or a drop policy) =",
                                batches)


def check_output_dir(output_dir: str, file: str) -> None:
    """output_dir is a folder or can become one (nothing on its path is a file); read-only, so
    `validate` writes nothing. Whether the folder is writable is checked when a run starts."""
    node = Path(output_dir)
    try:
        while not node.exists():
            node = node.parent
        if not node.is_dir():
            raise UserError(f"{file}: output_dir {shown(output_dir)} cannot be a folder: {node} is a file")
    except OSError as exc:  # a name too long for the file system
        raise UserError(f"{file}: output_dir {shown(output_dir)}: {exc.strerror}") from None


def check_workload(s: Scenario, file: str) -> None:
    w = s.workload
    if w.dataset not in DATASETS:
        raise UserError(f"{file}: workload.dataset {w.dataset!r} is not valid; valid: {', '.join(DATASETS)}")
    if not w.models:
        raise UserError(f"{file}: workload.models is empty; list at least one model")
    seen = set()
    if w.input_size is not None:
        positive(file, "workload.input_size", w.input_size)
        MAX_INPUT_SIZE.check(file, "workload.input_size", w.input_size)
    for i, model in enumerate(w.models):
        if model.name in seen:
            raise UserError(f"{file}: workload.models[{i}].name {model.name!r} is listed twice")
        seen.add(model.name)
        if model.points is not None and (not model.points or not all(isinstance(p, str) and p for p in model.points)):
            raise UserError(f"{file}: workload.models[{i}].points must list module paths (e.g. features.7), in "
                            f"execution order; leave it out to find them by tracing")
        try:
            points = model_blocks(model.name, w.dataset, w.input_size, model.declared_points)[1]
        except UserError as exc:
            raise UserError(f"{file}: workload.models[{i}].name: {exc}") from None
        for method in SPLIT_METHODS:
            split = model.split_for(method)
            key = f"workload.models[{i}].split" + (f".{method}" if isinstance(model.split, MethodSplits) else "")
            if split != AUTO and split not in points:
                raise UserError(f"{file}: {key} {shown(split)} is not a separation point of {model.name}; valid: "
                                f"{AUTO}, {', '.join(points)}")
    positive(file, "workload.batch_size", w.batch_size)
    MAX_BATCH_SIZE.check(file, "workload.batch_size", w.batch_size)
    positive(file, "workload.epochs", w.epochs)
    MAX_EPOCHS.check(file, "workload.epochs", w.epochs)
    if w.train_samples is not None:
        positive(file, "workload.train_samples", w.train_samples)
        MAX_TRAIN_SAMPLES.check(file, "workload.train_samples", w.train_samples)


def check_network(s: Scenario, file: str) -> None:
    n = s.network
    check_traces(s, file)
    if not n.uplink_mbps and not s.is_fleet:  # a fleet's groups may each set their own (scenario.fleet)
        raise UserError(f"{file}: network.uplink_mbps is empty; give at least one bit rate in Mbit/s")
    MAX_UPLINK_RATES.check(file, "the number of network.uplink_mbps rates", len(n.uplink_mbps))
    positive(file, "network.downlink_ratio", n.downlink_ratio)
    seen = set()
    for i, rate in enumerate(n.uplink_mbps):
        check_rate(file, f"network.uplink_mbps[{i}]", rate)
        if rate in seen:
            raise UserError(f"{file}: network.uplink_mbps[{i}] {rate:g} is listed twice")
        seen.add(rate)
        if n.downlink_mbps is None:  # downlink = ratio x uplink must be a rate too
            check_rate(file, f"network.downlink_ratio {n.downlink_ratio:g} x network.uplink_mbps[{i}] {rate:g} =",
                       rate * n.downlink_ratio)
    if n.downlink_mbps is not None:
        check_rate(file, "network.downlink_mbps", n.downlink_mbps)
    if n.cell_uplink_mbps is not None:
        check_rate(file, "network.cell_uplink_mbps", n.cell_uplink_mbps)
    for key in ("latency_ms", "jitter_ms", "retransmit_timeout_ms"):
        positive(file, f"network.{key}", getattr(n, key), allow_zero=True)
        MAX_DELAY_MS.check(file, f"network.{key}", getattr(n, key))
    positive(file, "network.mtu_bytes", n.mtu_bytes)
    MAX_MTU_BYTES.check(file, "network.mtu_bytes", n.mtu_bytes)
    positive(file, "network.uplink_buffer_batches", n.uplink_buffer_batches)
    MAX_UPLINK_BUFFER_BATCHES.check(file, "network.uplink_buffer_batches", n.uplink_buffer_batches)
    if not 0 <= n.loss_rate < 1:
        raise UserError(f"{file}: network.loss_rate must be in [0, 1), got {n.loss_rate}")
    assert n.codec in CODECS


def check_traces(s: Scenario, file: str) -> None:
    """Trace files, scales, offset and outages (README, "Cellular links"). With an uplink trace,
    network.uplink_mbps becomes the trace's mean rate x each scale; trace paths become paths
    that open from the working folder."""
    n = s.network
    base = Path(file).resolve().parent
    MAX_UPLINK_RATES.check(file, "the number of network.trace_scale values", len(n.trace_scale))
    for i, scale in enumerate(n.trace_scale):
        positive(file, f"network.trace_scale[{i}]", scale)
        MAX_TRACE_SCALE.check(file, f"network.trace_scale[{i}]", scale)
        if scale in n.trace_scale[:i]:
            raise UserError(f"{file}: network.trace_scale[{i}] {scale:g} is listed twice")
    if n.uplink_trace is not None:
        if n.uplink_mbps:
            raise UserError(f"{file}: network.uplink_mbps and network.uplink_trace exclude each other; with a "
                            "trace leave uplink_mbps out and list network.trace_scale values instead")
        n.uplink_trace = trace_path(n.uplink_trace, base, file, "network.uplink_trace")
        mean_mbps = load_trace(n.uplink_trace).mean_mbps
        n.uplink_mbps = [mean_mbps * scale for scale in n.trace_scale]
        for i, (scale, rate) in enumerate(zip(n.trace_scale, n.uplink_mbps)):
            check_rate(file, f"network.trace_scale[{i}] {scale:g} x the trace's mean {mean_mbps:g} Mbit/s =", rate)
    elif len(n.trace_scale) != 1:
        raise UserError(f"{file}: network.trace_scale lists {len(n.trace_scale)} values but sweeps only with "
                        "network.uplink_trace; give one scale (of the downlink trace) or an uplink trace")
    if n.downlink_trace is not None:
        if n.downlink_mbps is not None:
            raise UserError(f"{file}: network.downlink_mbps and network.downlink_trace exclude each other")
        if n.downlink_trace == PAIRED:
            if n.uplink_trace is None or not n.uplink_trace.endswith(".up"):
                raise UserError(f"{file}: network.downlink_trace: paired needs a network.uplink_trace whose name ends "
                                "in .up (its downlink is the same name with .down)")
            n.downlink_trace = n.uplink_trace[:-3] + ".down"
        n.downlink_trace = trace_path(n.downlink_trace, base, file, "network.downlink_trace")
        s.downlink_trace_mean_mbps = load_trace(n.downlink_trace).mean_mbps
    if n.trace_offset_s == "random" and n.uplink_trace is None and n.downlink_trace is None:
        raise UserError(f"{file}: network.trace_offset_s: random needs a trace (network.uplink_trace or "
                        "downlink_trace); without one there is nothing to start in")
    if n.trace_offset_s != "random":
        positive(file, "network.trace_offset_s", n.trace_offset_s, allow_zero=True)
        MAX_TIME_S.check(file, "network.trace_offset_s", n.trace_offset_s)
    for i, window in enumerate(n.outages):
        positive(file, f"network.outages[{i}].start_s", window.start_s, allow_zero=True)
        positive(file, f"network.outages[{i}].duration_s", window.duration_s)
        MAX_TIME_S.check(file, f"network.outages[{i}].start_s", window.start_s)
        MAX_TIME_S.check(file, f"network.outages[{i}].duration_s", window.duration_s)
    if n.outage_model is not None:
        for key in ("mean_up_s", "mean_down_s"):
            positive(file, f"network.outage_model.{key}", getattr(n.outage_model, key))
            MAX_TIME_S.check(file, f"network.outage_model.{key}", getattr(n.outage_model, key))
        MIN_MEAN_UP_S.check(file, "network.outage_model.mean_up_s", n.outage_model.mean_up_s)
    positive(file, "replications", s.replications)
    MAX_REPLICATIONS.check(file, "replications", s.replications)


def trace_path(value: str, base: Path, file: str, key: str) -> str:
    """The trace file `value` names (as written, else relative to the scenario), read and checked."""
    path = resolve_path(value, base)
    try:
        load_trace(str(path))
    except UserError as e:
        raise UserError(f"{file}: {key}: {e}") from None
    return str(path)


def check_rate(file: str, key: str, rate_mbps: float) -> None:
    positive(file, key, rate_mbps)
    MIN_RATE_MBPS.check(file, key, rate_mbps)
    MAX_RATE_MBPS.check(file, key, rate_mbps)


def check_accuracy(s: Scenario, file: str) -> None:
    a = s.accuracy
    if a.dataset is not None and a.dataset not in DATASETS:
        raise UserError(f"{file}: accuracy.dataset {shown(a.dataset)} is not valid; valid: {', '.join(DATASETS)}")
    dataset = DATASETS.get(a.dataset or s.workload.dataset)
    positive(file, "accuracy.width", a.width)
    MAX_ACCURACY_WIDTH.check(file, "accuracy.width", a.width)
    if a.input_size is not None:
        positive(file, "accuracy.input_size", a.input_size)
        MAX_INPUT_SIZE.check(file, "accuracy.input_size", a.input_size)
    positive(file, "accuracy.epochs", a.epochs)
    MAX_ACCURACY_EPOCHS.check(file, "accuracy.epochs", a.epochs)
    positive(file, "accuracy.lr", a.lr)
    positive(file, "accuracy.momentum", a.momentum, allow_zero=True)
    positive(file, "accuracy.weight_decay", a.weight_decay, allow_zero=True)
    if a.seed is not None:
        positive(file, "accuracy.seed", a.seed, allow_zero=True)
    if a.batch_size is not None:
        positive(file, "accuracy.batch_size", a.batch_size)
        MAX_BATCH_SIZE.check(file, "accuracy.batch_size", a.batch_size)
    for key, size in (("train_subset", dataset.train_samples), ("test_subset", dataset.test_samples)):
        value = getattr(a, key)
        if value is not None:
            positive(file, f"accuracy.{key}", value)
            if value > size:
                raise UserError(f"{file}: accuracy.{key} {value:,} is more than {dataset.name} has ({size:,}); "
                                f"null takes them all")


@functools.cache
def model_blocks(model: str, dataset: str, input_size: int | None = None,
                 points: tuple[str, ...] | None = None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(block names, separation points) of `model` for `dataset` at `input_size`; they do not
    depend on the width."""
    net = build_model(model, dataset, width=0.0625, input_size=input_size, points=points)
    return tuple(net.block_names), tuple(net.split_points)


def load_profiles(s: Scenario, file: str) -> tuple[dict[str, Profile], dict[str, Profile]]:
    """Load every profile and check it matches the workload (model, dataset, batch size, blocks,
    early exits, device kind)."""
    base = Path(file).resolve().parent
    loaded: list[dict[str, Profile]] = []
    for side, config in (("edge", s.edge), ("cloud", s.cloud)):
        if isinstance(config.profiles, str):
            config.profiles = device_profiles(s, side, config.profiles, base, file)
        profiles = {}
        for model in s.workload.models:
            key = f"{side}.profiles.{model.name}"
            if model.name not in config.profiles:
                raise UserError(f"{file}: missing key {key} (profile JSON for {model.name} on the {side} device)")
            try:
                profiles[model.name] = profile = load_profile(resolve_path(config.profiles[model.name], base))
            except UserError as exc:
                raise UserError(f"{file}: {key}: {exc}") from None
            shape = list(DATASETS[s.workload.dataset].shape_at(s.workload.input_size))
            expected = {"model": model.name, "dataset": s.workload.dataset, "batch_size": s.workload.batch_size,
                        "input_shape": shape}
            for attr, want in expected.items():
                if getattr(profile, attr) != want:
                    raise UserError(f"{file}: {key}: profile is for {attr} {shown(getattr(profile, attr))}, the "
                                    f"workload needs {want!r} (profile another, or derive one)")
            blocks, points = model_blocks(model.name, s.workload.dataset, s.workload.input_size, model.declared_points)
            if tuple(profile.layer_names) != blocks:
                raise UserError(f"{file}: {key}: profile has the blocks {shown(profile.layer_names)}, but "
                                f"{model.name} has {', '.join(blocks)} (profile it again)")
            exits = [head.after for head in profile.exits]
            if side == "edge" and tuple(exits) != points:
                raise UserError(f"{file}: {key}: profile has early exits after {shown(exits)}, but {model.name} has "
                                f"one after each of {', '.join(points)} (profile it again)")
        loaded.append(profiles)
        extra = [name for name in config.profiles if name not in {m.name for m in s.workload.models}]
        if extra:
            raise UserError(f"{file}: {side}.profiles.{key_text(extra[0])}: no such model in workload.models")
    kinds = sorted({profile.device.kind for profile in loaded[0].values()})
    if s.edge.compute == "auto":
        if len(kinds) > 1:
            raise UserError(f"{file}: edge.profiles mixes {' and '.join(kinds)} profiles; edge.compute auto needs one "
                            "kind (give profiles of one device)")
        s.edge.compute = "gpu" if kinds == ["cuda"] else "cpu"
    want_kind = "cuda" if s.edge.compute == "gpu" else "cpu"
    for name, profile in loaded[0].items():
        if profile.device.kind != want_kind:
            raise UserError(f"{file}: edge.profiles.{name}: a {profile.device.kind} profile, but edge.compute is "
                            f"{s.edge.compute!r} (needs a {want_kind} profile)")
    return loaded[0], loaded[1]


PROFILE_FOLDER = "profiles"


def profile_stem(model: str, dataset: str, batch_size: int, input_size: int | None = None) -> str:
    """<model>_<dataset>[_<size>px]_b<batch>: the part of a profile's file name after the device."""
    size = f"_{input_size}px" if input_size is not None else ""
    return f"{model_slug(model)}_{dataset}{size}_b{batch_size}"


def profile_file(device: str, model: str, dataset: str, batch_size: int, input_size: int | None = None) -> str:
    """The shipped name of a device's profile: profiles/<device>_<model>_<dataset>[_<size>px]_b<batch>.json."""
    return f"{PROFILE_FOLDER}/{device}_{profile_stem(model, dataset, batch_size, input_size)}.json"


def device_profiles(s: Scenario, side: str, device: str, base: Path, file: str) -> dict[str, str]:
    """`<side>.profiles: DEVICE`: each model's profile file of that device for the workload."""
    w = s.workload
    if not device or "/" in device or "\\" in device or device.endswith(".json"):
        raise UserError(f"{file}: {side}.profiles {shown(device)} is not a device name; give a device such as "
                        f"jetson-nano, or a mapping of model name to profile JSON")
    paths = {}
    for model in w.models:
        name = profile_file(device, model.name, w.dataset, w.batch_size, w.input_size)
        if not exists(resolve_path(name, base)):
            folder = resolve_path(PROFILE_FOLDER, base)
            searched = ", ".join(dict.fromkeys(str(root.resolve()) for root in (Path("."), base, base.parent)))
            stem = profile_stem(model.name, w.dataset, w.batch_size, w.input_size)
            have = sorted(p.name[:-len(f"_{stem}.json")] for p in folder.glob(f"*_{stem}.json")) if folder.is_dir() else []
            size = f" at {w.input_size}x{w.input_size}" if w.input_size is not None else ""
            raise UserError(f"{file}: {side}.profiles {device!r}: no profile {name} ({model.name} on {w.dataset}{size} "
                            f"at batch {w.batch_size}) under {searched}; devices with one: {', '.join(have) or 'none'} (or derive it: "
                            f"simulate profile --derive {device} --from MEASURED.json --batch-size {w.batch_size})")
        paths[model.name] = name
    return paths


@functools.lru_cache(maxsize=512)
def _cached_profile(path: str, mtime_ns: int, size: int) -> Profile:
    return Profile.load(path)


def load_profile(path: Path) -> Profile:
    """Profile.load, once per file version: a sweep loads the same files for many settings."""
    try:
        stat = path.stat()
    except OSError:
        return Profile.load(path)  # reports the missing or unreadable file
    return _cached_profile(str(path), stat.st_mtime_ns, stat.st_size)


def resolve_path(value: str, base: Path) -> Path:
    """A profile path as written, else relative to the scenario's folder, else to its parent."""
    path = Path(value)
    if path.is_absolute() or exists(path):
        return path
    for root in (base, base.parent):
        if exists(root / path):
            return root / path
    return path


def exists(path: Path) -> bool:
    """Path.exists, with a name too long for the file system counting as absent (read_text reports it)."""
    try:
        return path.exists()
    except OSError:
        return False
