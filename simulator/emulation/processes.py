"""Worker processes: how they are started, and how they are stopped on every path.

Each worker is `simulate emulate-worker --role edge|cloud ...` in its own process group (so
Ctrl-C reaches only the launcher, which ends them), killed with the launcher (Linux
PR_SET_PDEATHSIG), and terminated, then killed, by `stop`.

Two workers on one host get cores of their own (`cores_for`), as two devices would: left to
the scheduler, a worker woken by the other's frame starts on the other's core and shares it
until it is moved, which made the cloud's steps 20-40% slower here (README "Real runs").
"""
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child, before exec: be killed when the launcher dies (Linux; a no-op elsewhere)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def worker_env(threads: int) -> dict:
    """Loopback-friendly gloo, quiet C++ logs (errors come back as one line), the profile's threads."""
    env = dict(os.environ)
    env.setdefault("TORCH_CPP_LOG_LEVEL", "FATAL")
    env["OMP_NUM_THREADS"] = str(threads)
    return env


def cores_for(edge_threads: int, cloud_threads: int) -> tuple[set[int], set[int]] | None:
    """(edge cores, cloud cores): disjoint sets of the cores this process may use, the cloud's
    first; None when there are fewer than the two thread counts together (then nothing is pinned)."""
    try:
        available = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return None
    if len(available) < edge_threads + cloud_threads:
        return None
    return set(available[cloud_threads:cloud_threads + edge_threads]), set(available[:cloud_threads])


def spawn(args: list[str], env: dict, cores: set[int] | None = None, **kwargs) -> subprocess.Popen:
    """A worker process; on `cores` only, when given."""
    def before_exec() -> None:
        die_with_parent()
        if cores:
            os.sched_setaffinity(0, cores)

    return subprocess.Popen([sys.executable, "-m", "simulator", "emulate-worker", *args], env=env,
                            start_new_session=True, preexec_fn=before_exec, **kwargs)


def stop(process: subprocess.Popen, grace_s: float = 3.0) -> None:
    """Terminate a worker, then kill it if it has not gone within `grace_s`."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
