"""Hostile input: whatever a scenario or a profile holds, `simulate validate` and
`simulate run --no-train` either succeed or end with one line on stderr naming the file and
the key, exit status 2, and nothing written. Values no one can mean are refused with their limit.

The scenario is a tiny VGG-16 workload on hand-written profiles (20 batches per run), so every
mutation that stays valid still runs in about a second.
"""
import contextlib
import json
import math
import os
import random
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import assert_user_error, run_in_process
from hand_profiles import vgg16_profile
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from simulator.core.files import MAX_TEXT_BYTES
from simulator.scenario.limits import MAX_EPOCHS


def write_profiles(folder: Path) -> tuple[Path, Path]:
    edge, cloud = folder / "edge.json", folder / "cloud.json"
    edge.write_text(json.dumps(vgg16_profile("cpu", [10.0] * 6).to_dict()))
    cloud.write_text(json.dumps(vgg16_profile("cuda", [1.0] * 6).to_dict()))
    return edge, cloud


def tiny_scenario(folder: Path) -> dict:
    """2 epochs of 10 batches, 2 bit rates, 3 methods: 6 runs of 20 batches; profiles in `folder`."""
    edge, cloud = write_profiles(folder)
    return {"workload": {"dataset": "cifar10", "epochs": 2, "train_samples": 320,
                         "models": [{"name": "vgg16", "split": "stage2"}]},
            "edge": {"profiles": {"vgg16": str(edge)}}, "cloud": {"profiles": {"vgg16": str(cloud)}},
            "network": {"uplink_mbps": [1.0, 10.0], "latency_ms": 20.0},
            "accuracy": {"enabled": False}, "output_dir": str(folder / "out")}


def write(folder: Path, content: dict | str | bytes, name: str = "scenario.yaml") -> Path:
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return path


def with_key(data: dict, dotted: str, value) -> dict:
    """`data` with the key at `dotted` (network.latency_ms) set to `value`."""
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return data


def assert_refused(folder: Path, path: Path, *fragments: str) -> None:
    """Both commands: one line naming the file and every fragment, exit 2, no output folder."""
    for command in (["validate", path], ["run", path, "--no-train", "--no-progress"]):
        assert_user_error(run_in_process(*command), str(path), *fragments)
    assert not (folder / "out").exists()


def run_ok(path: Path) -> pd.DataFrame:
    proc = run_in_process("run", path, "--no-train", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    return pd.read_csv(Path(yaml.safe_load(path.read_text())["output_dir"]) / "results.csv")


def test_the_tiny_scenario_runs(tmp_path):
    results = run_ok(write(tmp_path, tiny_scenario(tmp_path)))
    assert len(results) == 6 and (results.batches_per_epoch == 10).all()


# ---- non-finite numbers --------------------------------------------------------------------

@pytest.mark.parametrize("literal", [".nan", ".inf", "-.inf", ".NaN", "-.Inf"])
@pytest.mark.parametrize("key", ["network.latency_ms", "network.uplink_mbps", "edge.memory_mib",
                                 "split_search.max_accuracy_drop", "accuracy.lr"])
def test_non_finite_numbers_in_yaml(tmp_path, key, literal):
    data = with_key(tiny_scenario(tmp_path), key, "PLACEHOLDER")
    path = write(tmp_path, yaml.safe_dump(data).replace("PLACEHOLDER", literal))
    assert_refused(tmp_path, path, key, "finite number", literal.lstrip("-.").lower())


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("key", ["layers[1].fwd_ms", "exits[0].bwd_ms", "input_prep_ms", "width",
                                 "derivation.datasheet.peak"])
def test_non_finite_numbers_in_profile_json(tmp_path, key, token):
    data = tiny_scenario(tmp_path)
    profile = vgg16_profile("cpu", [10.0] * 6).to_dict()
    profile["derivation"] = {"datasheet": {"peak": 1.0}}
    path_in_json = {"layers[1].fwd_ms": ("layers", 1, "fwd_ms"), "exits[0].bwd_ms": ("exits", 0, "bwd_ms"),
                    "input_prep_ms": ("input_prep_ms",), "width": ("width",),
                    "derivation.datasheet.peak": ("derivation", "datasheet", "peak")}[key]
    node = profile
    for part in path_in_json[:-1]:
        node = node[part]
    node[path_in_json[-1]] = "PLACEHOLDER"
    edge = tmp_path / "edge.json"
    edge.write_text(json.dumps(profile).replace('"PLACEHOLDER"', token))
    path = write(tmp_path, data)
    assert_refused(tmp_path, path, "edge.profiles.vgg16", str(edge), key, "finite number")


# ---- not UTF-8 text ------------------------------------------------------------------------

NOT_UTF8 = {"random bytes": random.Random(0).randbytes(4000),
            "latin-1": "description: caf\u00e9 au lait\n".encode("latin-1"),
            "utf-16": "description: hello\n".encode("utf-16")}


@pytest.mark.parametrize("kind", NOT_UTF8, ids=list(NOT_UTF8))
def test_a_scenario_that_is_not_utf8(tmp_path, kind):
    path = write(tmp_path, NOT_UTF8[kind])
    assert_refused(tmp_path, path, "not UTF-8 text")


@pytest.mark.parametrize("kind", NOT_UTF8, ids=list(NOT_UTF8))
def test_a_profile_that_is_not_utf8(tmp_path, kind):
    data = tiny_scenario(tmp_path)
    (tmp_path / "cloud.json").write_bytes(NOT_UTF8[kind])
    assert_refused(tmp_path, write(tmp_path, data), "cloud.profiles.vgg16", "cloud.json", "not UTF-8 text")


def test_a_utf8_byte_order_mark_is_fine(tmp_path):
    data = tiny_scenario(tmp_path)
    (tmp_path / "edge.json").write_bytes(b"\xef\xbb\xbf" + (tmp_path / "edge.json").read_bytes())
    path = write(tmp_path, b"\xef\xbb\xbf" + yaml.safe_dump(data).encode())
    assert run_in_process("validate", path).returncode == 0


# ---- sizes no one can mean -----------------------------------------------------------------

ABSURD = {
    "epochs": ("workload.epochs", 10**12, "limit of 10,000 epochs"),
    "train samples": ("workload.train_samples", 10**15, "limit of 10,000,000,000 samples"),
    "batch size": ("workload.batch_size", 10**9, "limit of 65,536 samples"),
    "bit-rate list": ("network.uplink_mbps", [float(r) for r in range(1, 100_001)], "limit of 1,000 rates"),
    "uplink buffer": ("network.uplink_buffer_batches", 10**9, "limit of 10,000 batches"),
    "training epochs": ("accuracy.epochs", 10**9, "limit of 1,000 epochs"),
    "training subset": ("accuracy.train_subset", 10**9, "more than cifar10 has (50,000)"),
    "training batch": ("accuracy.batch_size", 10**9, "limit of 65,536 samples"),
    "width": ("accuracy.width", 1e300, "limit of 4"),
    "an integer of 2^70": ("seed", 2**70, "64-bit"),
}


@pytest.mark.parametrize("case", ABSURD, ids=list(ABSURD))
def test_absurd_sizes_are_refused_quickly_with_their_limit(tmp_path, case):
    key, value, limit = ABSURD[case]
    path = write(tmp_path, with_key(tiny_scenario(tmp_path), key, value))
    started = time.perf_counter()
    assert_refused(tmp_path, path, key.split(".")[-1], limit)
    assert time.perf_counter() - started < 30  # refused before any simulation (a 100,000-rate list parses in ~1 s)


def test_the_longest_workload_runs_fast_when_deterministic(tmp_path):
    """MAX_EPOCHS epochs of 10^9 samples (3x10^11 batches per run) fast-forward in seconds;
    every result is finite and the epochs table has one row per epoch and run."""
    data = tiny_scenario(tmp_path)
    data["workload"].update(epochs=MAX_EPOCHS.value, train_samples=10**9)
    started = time.perf_counter()
    results = run_ok(write(tmp_path, data))
    assert time.perf_counter() - started < 60
    batches = MAX_EPOCHS.value * math.ceil(10**9 / 32)
    assert (results.epochs * results.batches_per_epoch == batches).all()
    assert results.select_dtypes("number").apply(lambda column: column.dropna().map(math.isfinite).all()).all()
    assert len(pd.read_csv(tmp_path / "out" / "epochs.csv")) == 6 * MAX_EPOCHS.value


def test_a_long_workload_with_jitter_is_refused(tmp_path):
    data = tiny_scenario(tmp_path)
    data["workload"].update(epochs=100, train_samples=10**6)  # 31,250 batches per epoch
    data["network"]["jitter_ms"] = 1.0
    assert_refused(tmp_path, write(tmp_path, data), "workload.epochs 100 x 31,250 batches", "= 3,125,000",
                   "limit of 1,000,000 batches", "event by event")


EXTREME = {
    "rate 1e308": ("network.uplink_mbps", [1e308], "limit of 1e+09 Mbit/s"),
    "rate 1e-300": ("network.uplink_mbps", [1e-300], "below the limit of 1e-06 Mbit/s"),
    "latency 1e300": ("network.latency_ms", 1e300, "limit of 1e+07 ms"),
    "downlink ratio 1e300": ("network.downlink_ratio", 1e300, "= 1e+300 is over the limit of 1e+09 Mbit/s"),
    "jitter 1e300": ("network.jitter_ms", 1e300, "limit of 1e+07 ms"),
    "mtu 2^63": ("network.mtu_bytes", 2**63 - 1, "limit of 4,294,967,296 bytes"),
    "negative seed": ("seed", -1, ">= 0"),
}


@pytest.mark.parametrize("case", EXTREME, ids=list(EXTREME))
def test_extreme_floats_are_refused(tmp_path, case):
    key, value, fragment = EXTREME[case]
    path = write(tmp_path, with_key(tiny_scenario(tmp_path), key, value))
    assert_refused(tmp_path, path, key.split(".")[-1], fragment)


def test_values_at_the_limits_give_finite_results(tmp_path):
    data = tiny_scenario(tmp_path)
    data["network"].update(uplink_mbps=[1e-6, 1e9], latency_ms=1e7, retransmit_timeout_ms=1e7, loss_rate=0.999,
                           jitter_ms=1e7, downlink_ratio=1.0)
    results = run_ok(write(tmp_path, data))
    times = results.total_time_s
    assert times.map(math.isfinite).all() and (times > 0).all()
    slow = results[results.uplink_mbps == 1e-6]
    # At 1 bit/s every method sends at least one epoch of raw samples' worth: 10 batches of
    # 32 x (3,072 + 1) bytes = 7.9 million seconds (the features after stage2 are 10x more).
    assert (slow.total_time_s >= 10 * 32 * 3073 * 8).all()


# ---- YAML that is not a scenario -----------------------------------------------------------

BILLION_LAUGHS = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 10))
# The same in one value: a list whose last item expands to 9^10 strings.
LAUGHS_IN_ONE_VALUE = "[&a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol], " + ", ".join(
    f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)) + "]"


# name -> (the scenario's text from the valid one's, fragments of the error)
YAML_CASES = {
    "a list": (lambda base: "- 1\n- 2\n", ["top level must be a mapping"]),
    "a scalar": (lambda base: "42\n", ["top level must be a mapping"]),
    "empty": (lambda base: "", ["missing key workload"]),
    "duplicate key": (lambda base: base + "seed: 1\nseed: 2\n", ["duplicate key 'seed'", "line"]),
    "integer key": (lambda base: base + "1: 2\n", ["unknown key 1", "valid keys"]),
    "list key": (lambda base: base + "? [a, b]\n: 3\n", ["malformed YAML", "unhashable key"]),
    "deep nesting": (lambda base: "description: " + "[" * 5000 + "]" * 5000 + "\n", ["malformed YAML", "nesting"]),
    "alias bomb": (lambda base: BILLION_LAUGHS + base, ["unknown key a0"]),
    "alias bomb as a value": (lambda base: base + f"full_cloud: {LAUGHS_IN_ONE_VALUE}\n",
                              ["full_cloud must be a mapping, got [['lol'"]),
    "over 4 MiB": (lambda base: base + "#" + "x" * MAX_TEXT_BYTES + "\n", ["over the limit of 4 MiB"]),
    "a tab": (lambda base: base.replace("  latency_ms", "\tlatency_ms"), ["malformed YAML", "line"]),
    "unclosed": (lambda base: "workload: [unclosed\n", ["malformed YAML", "line"]),
    "a code tag": (lambda base: base + "seed: !!python/object/apply:os.system [ls]\n",
                   ["malformed YAML", "python/object"]),
    "NUL in a string": (lambda base: base + 'name: "a\\0b"\n', ["name", "NUL"]),
    "a NUL byte": (lambda base: base + "name: a\0b\n", ["malformed YAML"]),
    "an impossible date": (lambda base: base.replace("epochs: 2", "epochs: 2001-13-45"), ["malformed YAML", "month"]),
    "5000 digits": (lambda base: base.replace("epochs: 2", "epochs: " + "9" * 5000), ["malformed YAML", "4300 digits"]),
    "a date for a number": (lambda base: base.replace("epochs: 2", "epochs: 2001-12-14"),
                            ["workload.epochs", "must be an integer"]),
    "a float for an integer": (lambda base: base.replace("epochs: 2", "epochs: 2.5"), ["workload.epochs", "integer"]),
    "bytes for a number": (lambda base: base.replace("epochs: 2", "epochs: !!binary aGVsbG8="), ["workload.epochs"]),
    "a key with a newline": (lambda base: base + '"a\\nb": 1\n', ["unknown key 'a\\nb'"]),
    "a mapping for a list": (lambda base: base.replace("  - name: vgg16\n    split: stage2", "    name: vgg16\n"
                                                       "    split: stage2"), ["workload.models must be a list"]),
    "output_dir under a file": (lambda base: base.replace("/out\n", "/edge.json/out\n"), ["output_dir", "is a file"]),
}


@pytest.mark.parametrize("case", YAML_CASES, ids=list(YAML_CASES))
def test_yaml_that_is_not_a_scenario(tmp_path, case):
    make, fragments = YAML_CASES[case]
    base = yaml.safe_dump(tiny_scenario(tmp_path))
    text = make(base)
    assert text != base
    path = write(tmp_path, text)
    started = time.perf_counter()
    assert_refused(tmp_path, path, *fragments)
    assert time.perf_counter() - started < 30


def test_numbers_in_exponent_form(tmp_path):
    """1e1 is a number, as in JSON and YAML 1.2 (YAML 1.1 would read a string)."""
    path = write(tmp_path, yaml.safe_dump(tiny_scenario(tmp_path)).replace("latency_ms: 20.0", "latency_ms: 2e1"))
    assert (run_ok(path).latency_ms == 20.0).all()


@pytest.mark.parametrize("where", ["a folder", "a device", "a name too long", "missing"])
def test_a_profile_path_that_is_not_a_file(tmp_path, where):
    value = {"a folder": str(tmp_path), "a device": "/dev/zero", "a name too long": "p" * 5000,
             "missing": str(tmp_path / "nope.json")}[where]
    fragment = {"a folder": "is a folder", "a device": "not a regular file", "a name too long": "File name too long",
                "missing": "not found"}[where]
    path = write(tmp_path, with_key(tiny_scenario(tmp_path), "edge.profiles", {"vgg16": value}))
    assert_refused(tmp_path, path, "edge.profiles.vgg16", fragment)


def test_an_output_folder_name_too_long(tmp_path):
    path = write(tmp_path, with_key(tiny_scenario(tmp_path), "output_dir", str(tmp_path / ("o" * 5000))))
    assert_user_error(run_in_process("run", path, "--no-train", "--no-progress"), "File name too long")


# ---- profiles that are not profiles --------------------------------------------------------

def profile_cases() -> dict[str, tuple]:
    """name -> (change to the edge profile's dict, or replacement text; fragments of the error)."""
    def layer(key, value):
        return lambda p: p["layers"][0].update({key: value})

    return {
        "a key twice": ('{"model": "vgg16", "model": "vgg16"}', ["key 'model' is given twice"]),
        "5000 digits": ('{"batch_size": ' + "9" * 5000 + "}", ["not valid JSON", "4300 digits"]),
        "deep nesting": ("[" * 100_000 + "]" * 100_000, ["not valid JSON", "nested too deeply"]),
        "a list": ("[1, 2]", ["top level must be a mapping"]),
        "an integer beyond 64 bits": (layer("out_bytes", 10**30), ["layers[0].out_bytes", "64-bit"]),
        "a time of 1e300 ms": (layer("fwd_ms", 1e300), ["layers[0].fwd_ms", "limit of 1e+09 ms"]),
        "a negative time": (layer("bwd_ms", -1.0), ["layers[0].bwd_ms", "non-negative"]),
        "a string for a number": (layer("fwd_ms", "10"), ["layers[0].fwd_ms", "must be a number"]),
        "bytes that do not match the shape": (layer("out_bytes", 8), ["layers[0].out_bytes", "out_shape"]),
        "a shape of a million dimensions": (layer("out_shape", [32] + [2] * 1_000_000),
                                            ["layers[0].out_shape", "2^63 elements"]),
        "a zero dimension": (layer("out_shape", [32, 0]), ["layers[0].out_shape", "at least 1"]),
        "another batch": (layer("out_shape", [16, 2 * 64 * 16 * 16]), ["layers[0].out_shape", "batch size 32"]),
        "a block twice": (lambda p: p["layers"][1].update(name="stage1"), ["layers[1].name", "twice"]),
        "no exits": (lambda p: p.update(exits=[]), ["edge.profiles.vgg16", "early exits after []", "stage5"]),
        "an exit after the last block": (lambda p: p["exits"][0].update(after="head"), ["exits[0].after"]),
        "other blocks": (lambda p: (p["layers"][2].update(name="conv3"), p.update(exits=p["exits"][:2])),
                         ["edge.profiles.vgg16", "blocks", "stage3"]),
        "an unknown kind": (lambda p: p["device"].update(kind="tpu"), ["device.kind", "cpu, cuda"]),
        "schema 2": (lambda p: p.update(schema_version=2), ["schema_version 2", "valid: 1"]),
    }


@pytest.mark.parametrize("case", list(profile_cases()))
def test_profiles_that_are_not_profiles(tmp_path, case):
    change, fragments = profile_cases()[case]
    data = tiny_scenario(tmp_path)
    edge = tmp_path / "edge.json"
    if isinstance(change, str):
        edge.write_text(change)
    else:
        profile = json.loads(edge.read_text())
        change(profile)
        edge.write_text(json.dumps(profile))
    assert_refused(tmp_path, write(tmp_path, data), "edge.profiles.vgg16", *fragments)


# ---- any mutation of a valid scenario or profile ---------------------------------------------

NUMBERS = st.sampled_from([0, -1, 1, 3, 10_000, 65_536, 2**32, 2**63 - 1, 2**63, 10**12, 10**30,  # limits and beyond
                           0.0, -0.0, 1e-300, -1e-300, 1e308, -1e308, 1e-6, 1e-3, 0.5, 0.999, 3.0, 1e7, 1e9,
                           float("nan"), float("inf"), float("-inf")])
WORDS = st.sampled_from(["auto", "stage1", "head", "gpu", "cuda", "fp16", "int8", "every_epoch", "vgg16", "resnet18",
                         "cifar100", "tiny-imagenet", "hierarchical", "", "null", "\t", "&a", "*a", "{", "a: b"])
VALUES = st.one_of(st.none(), st.booleans(), NUMBERS, WORDS, st.integers(), st.floats(), st.text(max_size=12),
                   st.lists(st.one_of(NUMBERS, WORDS), max_size=3),
                   st.dictionaries(st.one_of(WORDS, st.integers()), st.one_of(NUMBERS, WORDS), max_size=2))


def mutate(data, draw) -> None:
    """One random change at a random place in parsed YAML/JSON: delete, replace or add a key or item."""
    node = data
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            break
        key = draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, (dict, list)) and child and draw(st.integers(0, 2)):
            node = child  # go deeper two times in three
            continue
        action = draw(st.sampled_from(["delete", "replace", "add", "same type", "same type"]))
        if action == "delete":
            del node[key]
        elif action == "replace":
            node[key] = draw(VALUES)
        elif action == "same type":  # an extreme value of the type the key expects: more mutants stay valid
            numbers = NUMBERS if isinstance(child, float) else NUMBERS.filter(lambda n: isinstance(n, int))
            node[key] = draw(numbers if isinstance(child, (int, float)) and not isinstance(child, bool)
                             else WORDS if isinstance(child, str) else VALUES)
        elif isinstance(node, dict):
            node[draw(st.one_of(WORDS, st.text(max_size=8)))] = draw(VALUES)
        else:
            node.append(draw(VALUES))
        return


def corrupt(text: bytes, draw) -> bytes:
    """Text damage: cut it short, or overwrite a few bytes (which may leave it not UTF-8)."""
    action = draw(st.sampled_from(["none", "none", "none", "cut", "bytes"]))
    if action == "cut":
        return text[:draw(st.integers(0, len(text)))]
    if action == "bytes":
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, max(0, len(text) - 1)))
            text = text[:at] + draw(st.binary(min_size=1, max_size=3)) + text[at + 1:]
    return text


def files_in(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*") if ".hypothesis" not in path.parts}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_scenarios_and_profiles_succeed_or_fail_in_one_line(data):
    """validate and run --no-train: success, or exit 2 with one line and not a file written."""
    with tempfile.TemporaryDirectory() as tmp, working_folder(Path(tmp)):  # a relative output_dir lands in tmp
        folder = Path(tmp)
        scenario = tiny_scenario(folder)
        if data.draw(st.sampled_from(["scenario", "scenario", "profile"]), label="target") == "scenario":
            mutate(scenario, data.draw)
            text = corrupt(yaml.safe_dump(scenario, allow_unicode=True, sort_keys=False).encode(), data.draw)
        else:
            profile = json.loads((folder / "edge.json").read_text())
            mutate(profile, data.draw)
            (folder / "edge.json").write_bytes(corrupt(json.dumps(profile).encode(), data.draw))
            text = yaml.safe_dump(scenario).encode()
        path = write(folder, text)
        before = files_in(folder)
        for command in (["validate", path], ["run", path, "--no-train", "--no-progress"]):
            proc = run_in_process(*command)
            event(f"{command[0]}: {'ok' if proc.returncode == 0 else 'refused'}")
            if proc.returncode != 0:
                assert_user_error(proc, str(path))
                assert files_in(folder) == before


@contextlib.contextmanager
def working_folder(folder: Path):
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


# ---- command-line flags, output folders and run folders ---------------------------------------
EMULATE = "scenarios/emulate_fashion_mnist.yaml"
FLAGS = {
    "profile threads": (["profile", "--model", "vgg16", "--dataset", "cifar10", "--threads", "100000000000"],
                        ["--threads", "limit of 4,096"]),
    "profile seed": (["profile", "--model", "vgg16", "--dataset", "cifar10", "--seed", "-1"], ["--seed", ">= 0"]),
    "profile repeats": (["profile", "--model", "vgg16", "--dataset", "cifar10", "--repeats", "100000000000"],
                        ["--repeats", "limit of 10,000"]),
    "profile width": (["profile", "--model", "vgg16", "--dataset", "cifar10", "--width", "1e300"], ["--width", "limit"]),
    "profile batch": (["profile", "--model", "vgg16", "--dataset", "cifar10", "--batch-size", "100000000"],
                      ["--batch-size", "limit of 65,536"]),
    "models width": (["models", "--width", "nan"], ["--width", "finite"]),
    "emulate batches": (["emulate", EMULATE, "--batches", "1000000000000"], ["--batches", "limit of 10,000"]),
    "emulate rate": (["emulate", EMULATE, "--uplink-mbps", "1e-300"], ["--uplink-mbps", "limit of 1e-06"]),
    "emulate nan rate": (["emulate", EMULATE, "--uplink-mbps", "nan"], ["--uplink-mbps", "finite"]),
    "emulate timeout": (["emulate", EMULATE, "--timeout-s", "inf"], ["--timeout-s", "finite"]),
    "worker timeout": (["emulate-worker", "--role", "cloud", "--listen", "127.0.0.1:1", EMULATE, "--timeout-s",
                        "1e300"], ["--timeout-s", "limit of 86,400"]),
}


@pytest.mark.parametrize("case", FLAGS, ids=list(FLAGS))
def test_absurd_flags_are_refused_with_their_limit(case, cli, tmp_path):
    args, fragments = FLAGS[case]
    out = tmp_path / "out.json"
    proc = cli(*args, *(["--out", str(out)] if args[0] == "profile" else []))
    assert_user_error(proc, *fragments)
    assert not out.exists()


def test_a_folder_where_an_output_file_goes_is_refused_before_anything_is_written(tmp_path):
    path = write(tmp_path, tiny_scenario(tmp_path))
    (tmp_path / "out" / "split_points.csv").mkdir(parents=True)
    proc = run_in_process("run", path, "--no-train", "--no-progress")
    assert_user_error(proc, "split_points.csv", "is a folder")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["split_points.csv"]


@pytest.mark.parametrize("damage", ["scenario.json is a folder", "results.csv is a folder", "deep JSON",
                                    "a rate that is not a number"])
def test_a_damaged_run_folder_is_one_line_for_simulate_report(damage, tmp_path):
    path = write(tmp_path, tiny_scenario(tmp_path))
    assert run_in_process("run", path, "--no-train", "--no-progress").returncode == 0
    folder = tmp_path / "out"
    if damage.endswith("is a folder"):
        name = damage.split()[0]
        (folder / name).unlink()
        (folder / name).mkdir()
    elif damage == "deep JSON":
        (folder / "scenario.json").write_text("[" * 100_000 + "]" * 100_000)
    else:
        lines = (folder / "results.csv").read_text().splitlines()
        column = lines[0].split(",").index("uplink_mbps")
        cells = lines[1].split(",")
        cells[column] = "abc"
        (folder / "results.csv").write_text("\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n")
    assert_user_error(run_in_process("report", folder), str(folder))
