import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

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


@pytest.fixture
def cli(monkeypatch):
    monkeypatch.chdir(ROOT)
    return run_in_process
