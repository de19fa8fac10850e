"""Worker processes: how they are started, and how they are stopped on every path.

Each worker is `simulate emulate-worker --role edge|cloud ...` in its own process group (so
Ctrl-C reaches only the launcher, which ends them), killed with the launcher (Linux
PR_SET_PDEATHSIG), and terminated, then killed, by `stop`.
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


def spawn(args: list[str], env: dict, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "simulator", "emulate-worker", *args], env=env,
                            start_new_session=True, preexec_fn=die_with_parent, **kwargs)


def stop(process: subprocess.Popen, grace_s: float = 3.0) -> None:
    """Terminate a worker, then kill it if it has not gone within `grace_s`."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
