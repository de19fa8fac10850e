import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from simulator.cli import main

ROOT = Path(__file__).resolve().parent.parent
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

# Real-data tests skip on a developer machine without Debian's dataset-fashion-mnist, but
# never in CI, which installs it: there a missing dataset must fail, not pass silently.
needs_fashion_mnist = pytest.mark.skipif(
    not FASHION_MNIST.is_dir() and not os.environ.get("CI"),
    reason=f"{FASHION_MNIST} absent (apt-get install dataset-fashion-mnist; CI installs it)")

# Tests share two cores with nothing else; one intra-op thread keeps them predictable.
torch.set_num_threads(1)


def run_process(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `simulate ARGS` as a real process, as a user would."""
    return subprocess.run([sys.executable, "-m", "simulator", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=600)


def run_in_process(*args: str) -> subprocess.CompletedProcess:
    """`simulate ARGS` through the same entry point, in this process (no torch start-up per call)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return subprocess.CompletedProcess(["simulate", *args], code, out.getvalue(), err.getvalue())


def assert_user_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit status 2, one line on stderr naming every fragment, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


DELETE = object()  # a `changes` value that removes the key


def scenario_data(folder: Path, changes: dict | None = None, base: str = "low_bitrate") -> dict:
    """The shipped scenarios/<base>.yaml as a dict, with `changes` applied.

    `changes` maps dotted keys to values (`{"workload.epochs": 2}`; DELETE removes a key). Profiles
    of models the workload no longer lists are dropped, shipped profile paths are made absolute,
    and output_dir is folder/out unless `changes` sets it.
    """
    data = yaml.safe_load((ROOT / "scenarios" / f"{base}.yaml").read_text())
    data["output_dir"] = str(folder / "out")
    for key, value in (changes or {}).items():
        *parents, leaf = key.split(".")
        section = data
        for part in parents:
            section = section.setdefault(part, {})
        if value is DELETE:
            section.pop(leaf, None)
        else:
            section[leaf] = value
    models = {m["name"] for m in data["workload"]["models"]}
    for side in ("edge", "cloud"):
        profiles = (data.get(side) or {}).get("profiles", {})
        if not isinstance(profiles, dict) or not profiles:  # a device name, or no such section (a fleet's edges)
            continue
        data[side]["profiles"] = {m: str(ROOT / p) if (ROOT / p).is_file() else p  # shipped profiles, made absolute
                                  for m, p in profiles.items() if m in models}
    return data


def write_scenario(folder: Path, changes: dict | None = None, base: str = "low_bitrate", name: str = "scenario") -> Path:
    """`scenario_data(folder, changes, base)` written to folder/<name>.yaml."""
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(scenario_data(folder, changes, base)))
    return path


@pytest.fixture
def cli(monkeypatch):
    monkeypatch.chdir(ROOT)
    return run_in_process
