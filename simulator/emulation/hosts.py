"""Which machine, and which torch build, a measurement was taken on.

A part-steps file is a measurement of one host's speed; a prediction must never use one
taken elsewhere without saying so. Its identity is what tells machines apart:

    hostname     socket.gethostname()
    machine_id   /etc/machine-id (systemd; unique per installation), "" where absent
    cpu_model    the first "model name" of /proc/cpuinfo (platform.processor() elsewhere)
    cores        os.cpu_count()
    torch        torch.__version__ (a different build runs different kernels)
"""
import os
import platform
import socket
from pathlib import Path

import torch

IDENTITY_KEYS = ("hostname", "machine_id", "cpu_model", "cores", "torch")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_id() -> str:
    try:
        return Path("/etc/machine-id").read_text().strip()
    except OSError:
        return ""


def host_identity() -> dict:
    """This process's machine and torch build (IDENTITY_KEYS)."""
    return {"hostname": socket.gethostname(), "machine_id": machine_id(), "cpu_model": cpu_model(),
            "cores": os.cpu_count() or 1, "torch": torch.__version__}


def identity_difference(recorded: dict, here: dict) -> str:
    """'' when `recorded` and `here` are the same host and torch build, else what differs, e.g.
    "host 'a' (machine-id 3d12...), here 'b' (machine-id 77ab...)" or "torch 2.4.0, here 2.5.1"."""
    if recorded.get("torch") != here["torch"]:
        return f"torch {recorded.get('torch')}, here {here['torch']}"
    if recorded.get("hostname") != here["hostname"] or recorded.get("machine_id") != here["machine_id"]:
        def name(identity: dict) -> str:
            mid = identity.get("machine_id") or ""
            return f"{identity.get('hostname')!r}" + (f" (machine-id {mid[:8]}...)" if mid else "")
        return f"host {name(recorded)}, here {name(here)}"
    for key, what in (("cpu_model", "CPU"), ("cores", "cores")):
        if recorded.get(key) != here[key]:
            return f"{what} {recorded.get(key)!r}, here {here[key]!r}"
    return ""
