"""Fetching a missing dataset: Debian's package first, then the official download, else one line.

Nothing here touches the machine or the network: Debian's folder is a temporary one, `apt-get`
and `apt-cache` are small scripts on a PATH of their own (real processes that log how they were
called), and "the network" is a real HTTP server on loopback, or a closed port.
"""
import gzip
import hashlib
import http.server
import json
import os
import pickle
import socket
import sys
import tarfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    FASHION_MNIST,
    assert_user_error,
    needs_fashion_mnist,
    run_in_process,
    run_process,
    write_scenario,
)

from simulator.core.errors import UserError
from simulator.data import provision
from simulator.data.readers import load_dataset
from simulator.scenario.load import load_scenario

PACKAGE = "dataset-fashion-mnist"
FASHION_FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz"]
FAKE_APT = """#!{python}
# Stands in for apt-get and apt-cache: logs each call, then does what behaviour.json says.
import json, os, shutil, sys, time
from pathlib import Path
state = Path({state!r})
tool, args = Path(sys.argv[0]).name, sys.argv[1:]
with open(state / "calls.jsonl", "a") as log:
    log.write(json.dumps({{"call": " ".join([tool, *args]), "frontend": os.environ.get("DEBIAN_FRONTEND"),
                          "stdin": sys.stdin.read(), "pid": os.getpid()}}) + "\\n")
behaviour = json.loads((state / "behaviour.json").read_text())
known = behaviour["known"] or (state / "updated").exists()
if tool == "apt-cache":
    sys.exit(0 if known else 100)
if args[0] == "update":
    (state / "updated").touch()
    sys.exit(0)
if behaviour["install"] == "hang":
    time.sleep(120)
if not known or behaviour["install"] == "fail":
    print("Reading package lists...\\nE: Unable to locate package " + args[-1], file=sys.stderr)
    sys.exit(100)
shutil.copytree(behaviour["package"], behaviour["debian"])
"""


def fashion_files(folder: Path, n: int = 6) -> dict[str, bytes]:
    """The four gzipped IDX files of a tiny Fashion-MNIST, written to `folder`; name -> bytes."""
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for prefix in ("train", "t10k"):
        for kind, magic, array in (("images", 2051, rng.integers(0, 256, (n, 28, 28))),
                                   ("labels", 2049, rng.integers(0, 10, n))):
            header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
            name = f"{prefix}-{kind}-idx{array.ndim}-ubyte.gz"
            files[name] = gzip.compress(header + array.astype(np.uint8).tobytes())
            (folder / name).write_bytes(files[name])
    return files


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Machine:
    tmp: Path
    work: Path  # the working folder: ./data goes here
    bin: Path  # the only folder on PATH
    debian: Path  # Debian's fashion-mnist folder
    mirror: Path  # what the local HTTP server serves
    url: str  # the server's address
    requests: list[str]  # paths the server was asked for
    files: dict[str, bytes]  # the Fashion-MNIST files it serves

    def apt(self, known: bool = True, install: str = "ok") -> None:
        """Put apt-get and apt-cache on PATH; `install`: ok (copies the files into Debian's folder), fail, hang."""
        state = self.tmp / "apt"
        state.mkdir(exist_ok=True)
        (state / "behaviour.json").write_text(json.dumps({
            "known": known, "install": install, "package": str(self.tmp / "package"), "debian": str(self.debian)}))
        fashion_files(self.tmp / "package")
        for tool in ("apt-get", "apt-cache"):
            (self.bin / tool).write_text(FAKE_APT.format(python=sys.executable, state=str(state)))
            (self.bin / tool).chmod(0o755)

    def apt_calls(self) -> list[dict]:
        log = self.tmp / "apt" / "calls.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def written(self) -> list[str]:
        """Everything under the working folder and Debian's datasets folder."""
        return sorted(str(p) for p in [*self.work.rglob("*"), *self.debian.parent.rglob("*")])


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """A root user on a machine without Fashion-MNIST, whose "network" is a loopback HTTP server."""
    for folder in ("work", "bin", "mirror", "debian"):
        (tmp_path / folder).mkdir()
    monkeypatch.chdir(tmp_path / "work")
    for name in ("SIMULATOR_DATA", "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setattr(provision, "DEBIAN_FASHION_MNIST", tmp_path / "debian" / "fashion-mnist")
    monkeypatch.setattr(provision.os, "geteuid", lambda: 0)
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path / "mirror"), **kwargs)

        def log_message(self, *args):
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    files = fashion_files(tmp_path / "mirror")
    layout = provision.LAYOUTS["fashion-mnist"]
    monkeypatch.setitem(provision.LAYOUTS, "fashion-mnist", replace(
        layout, downloads=tuple((url + name, name, md5(files[name])) for name in FASHION_FILES)))
    yield Machine(tmp_path, tmp_path / "work", tmp_path / "bin", tmp_path / "debian" / "fashion-mnist",
                  tmp_path / "mirror", url, requests, files)
    server.shutdown()
    server.server_close()


def offline(monkeypatch, name: str = "fashion-mnist") -> str:
    """Point the dataset's downloads at a closed port; returns the first URL."""
    layout = provision.LAYOUTS[name]
    base = f"http://127.0.0.1:{closed_port()}/"
    downloads = tuple((base + filename, filename, digest) for _, filename, digest in layout.downloads)
    monkeypatch.setitem(provision.LAYOUTS, name, replace(layout, downloads=downloads))
    return downloads[0][0]


def data(*args: str):
    return run_in_process("data", *args)


# ---------- nothing works: one line, exit 2, nothing written ----------

@pytest.mark.parametrize("case, fragments", [
    ("no apt-get", ["`apt-get install dataset-fashion-mnist` (not run: no apt-get on PATH)", "Connection refused"]),
    ("not root", ["`apt-get install dataset-fashion-mnist` (not run: not root)", "Connection refused"]),
    ("download never", ["fetching it is off (download: never"]),
])
def test_a_dataset_that_cannot_be_fetched_is_one_line_and_nothing_is_written(machine, monkeypatch, case, fragments):
    if case != "no apt-get":
        machine.apt()  # would succeed if it were run
    if case == "not root":
        monkeypatch.setattr(provision.os, "geteuid", lambda: 1000)
    url = offline(monkeypatch) if case != "download never" else machine.url
    proc = data("fashion-mnist", *(["--download", "never"] if case == "download never" else []))
    assert_user_error(proc, "fashion-mnist train split not found", f"looked in {machine.work}/data/fashion-mnist, "
                      f"{machine.debian};", *fragments, "sudo apt-get install dataset-fashion-mnist",
                      f"in {machine.work}/data/fashion-mnist", "SIMULATOR_DATA")
    if case != "download never":
        assert f"then downloading {url} (" in proc.stderr
    assert proc.stdout == "" and machine.written() == [] and machine.apt_calls() == [] and machine.requests == []


def test_a_failed_apt_and_no_network_name_both_errors_and_leave_nothing(machine, monkeypatch):
    machine.apt(known=False, install="fail")
    url = offline(monkeypatch)
    proc = data("fashion-mnist")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    announce, error = proc.stderr.splitlines()  # apt changes the system, so it is announced; then the error
    assert announce.startswith(f"simulate: fashion-mnist not found; installing Debian's {PACKAGE} as root: "
                               f"apt-get update -q && apt-get install -y -q --no-install-recommends {PACKAGE}")
    assert (f"tried `apt-get install {PACKAGE}` (apt-get install failed: E: Unable to locate package {PACKAGE}); "
            f"then downloading {url} (URLError: [Errno 111] Connection refused)") in error
    assert machine.written() == []


def test_an_apt_get_past_its_time_limit_is_stopped(machine, monkeypatch):
    machine.apt(install="hang")
    monkeypatch.setattr(provision, "APT_TIMEOUT_S", 1.0)
    offline(monkeypatch)
    start_s = time.monotonic()
    proc = data("fashion-mnist")
    assert time.monotonic() - start_s < 30  # the fake would sleep 120 s
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 2  # the announcement, then the error
    assert "(apt-get install stopped after 1 s)" in proc.stderr.splitlines()[1]
    install = machine.apt_calls()[-1]
    assert install["call"].startswith("apt-get install")
    with pytest.raises(ProcessLookupError):  # terminated and reaped, not left behind
        os.kill(install["pid"], 0)


# ---------- the order: apt first, then the download ----------

@pytest.mark.parametrize("known", [False, True])
def test_apt_comes_first_and_updates_only_when_it_does_not_know_the_package(machine, known):
    machine.apt(known=known)
    proc = data("fashion-mnist")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"fashion-mnist: train and test splits in {machine.debian}\n"
    update = "apt-get update -q && " if not known else ""
    assert proc.stderr == (f"simulate: fashion-mnist not found; installing Debian's {PACKAGE} as root: {update}"
                           f"apt-get install -y -q --no-install-recommends {PACKAGE} (non-interactive, at most "
                           f"600 s per command)\n")
    calls = machine.apt_calls()
    assert [c["call"] for c in calls] == [f"apt-cache show {PACKAGE}"] + (["apt-get update -q"] if not known else []) \
        + [f"apt-get install -y -q --no-install-recommends {PACKAGE}"]
    assert all(c["frontend"] == "noninteractive" and c["stdin"] == "" for c in calls[1:])
    assert machine.requests == [] and list(machine.work.iterdir()) == []  # no download, no ./data


@pytest.mark.parametrize("case", ["apt fails", "not root", "no apt-get", "download network", "root given"])
def test_the_official_download_follows_when_apt_fails_or_is_not_for_this_run(machine, monkeypatch, case):
    if case in ("apt fails", "not root", "download network", "root given"):
        machine.apt(install="fail" if case == "apt fails" else "ok")
    if case == "not root":
        monkeypatch.setattr(provision.os, "geteuid", lambda: 1000)
    args = {"download network": ["--download", "network"], "root given": ["--root", "mine"]}.get(case, [])
    proc = data("fashion-mnist", *args)
    assert proc.returncode == 0, proc.stderr
    base = machine.work / ("mine" if case == "root given" else "data")
    assert proc.stdout == f"fashion-mnist: train and test splits in {base / 'fashion-mnist'}\n"
    assert [c["call"].split()[1] for c in machine.apt_calls()] == (["show", "install"] if case == "apt fails" else [])
    assert "simulate: fashion-mnist not found; downloading it from 127.0.0.1:" in proc.stderr
    assert "\r" not in proc.stderr
    assert sorted(machine.requests) == sorted(f"/{name}" for name in FASHION_FILES)
    assert {p.name: p.read_bytes() for p in (base / "fashion-mnist").iterdir()} == machine.files  # nothing else
    assert sorted(p.name for p in base.iterdir()) == ["fashion-mnist"]  # the staging folder is gone
    train = load_dataset("fashion-mnist", "train", "mine" if case == "root given" else None)
    assert train.images.shape == (6, 1, 28, 28) and train.source == base / "fashion-mnist"
    again = data("fashion-mnist", *args)  # now a no-op
    assert again.stdout.endswith("(already there; nothing to do)\n") and again.stderr == ""


def test_a_file_with_the_wrong_md5_is_refused_and_nothing_is_kept(machine, monkeypatch):
    layout = provision.LAYOUTS["fashion-mnist"]
    (url, name, _), *rest = layout.downloads
    monkeypatch.setitem(provision.LAYOUTS, "fashion-mnist", replace(layout, downloads=((url, name, "0" * 32), *rest)))
    proc = data("fashion-mnist", "--download", "network")
    assert proc.returncode == 2
    assert f"downloading {url} (its MD5 is {md5(machine.files[name])}, expected {'0' * 32}" in proc.stderr
    assert machine.written() == []


def test_a_server_that_never_answers_fails_within_the_network_timeout(machine, monkeypatch):
    monkeypatch.setattr(provision, "NETWORK_TIMEOUT_S", 0.5)
    with socket.socket() as silent:  # accepts connections in its backlog, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        layout = provision.LAYOUTS["fashion-mnist"]
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        monkeypatch.setitem(provision.LAYOUTS, "fashion-mnist", replace(
            layout, downloads=tuple((url + f, f, d) for _, f, d in layout.downloads)))
        start_s = time.monotonic()
        proc = data("fashion-mnist", "--download", "network")
    assert time.monotonic() - start_s < 10
    assert_user_error(proc, f"downloading {url}train-images-idx3-ubyte.gz (no answer within 0.5 s)")
    assert machine.written() == []


def test_an_archive_is_extracted_into_the_data_folder(machine, monkeypatch):
    source = machine.tmp / "cifar" / "cifar-10-batches-py"
    source.mkdir(parents=True)
    rng = np.random.default_rng(2)
    for i, file in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        batch = {b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8), b"labels": [i % 10, (i + 1) % 10]}
        (source / file).write_bytes(pickle.dumps(batch))
    with tarfile.open(machine.mirror / "cifar-10-python.tar.gz", "w:gz") as archive:
        archive.add(source, arcname="cifar-10-batches-py")
    digest = md5((machine.mirror / "cifar-10-python.tar.gz").read_bytes())
    monkeypatch.setitem(provision.LAYOUTS, "cifar10", replace(provision.LAYOUTS["cifar10"], downloads=(
        (machine.url + "cifar-10-python.tar.gz", "cifar-10-python.tar.gz", digest),)))
    proc = data("cifar10")  # auto: no Debian package for CIFAR, straight to the download
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"cifar10: train and test splits in {machine.work / 'data' / 'cifar-10-batches-py'}\n"
    assert sorted(p.name for p in (machine.work / "data").iterdir()) == ["cifar-10-batches-py"]
    assert load_dataset("cifar10", "test").labels.tolist() == [5, 6]


# ---------- the real thing, and the scenario key ----------

@needs_fashion_mnist
def test_simulate_data_says_where_the_installed_dataset_is_and_changes_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("SIMULATOR_DATA", raising=False)
    proc = run_process("data", "fashion-mnist", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"fashion-mnist: train and test splits in {FASHION_MNIST} (already there; nothing to do)\n"
    assert proc.stderr == "" and list(tmp_path.iterdir()) == []


def test_accuracy_download_defaults_to_auto_and_takes_three_words(tmp_path):
    assert load_scenario(write_scenario(tmp_path)).accuracy.download == "auto"
    for value in ("network", "never"):
        assert load_scenario(write_scenario(tmp_path, {"accuracy.download": value})).accuracy.download == value
    with pytest.raises(UserError, match=r"accuracy\.download True is not valid; valid: auto, network, never"):
        load_scenario(write_scenario(tmp_path, {"accuracy.download": True}))  # the old boolean
