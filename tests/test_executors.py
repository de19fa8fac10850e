"""Parallel and distributed runs (README, "Parallel and distributed sweeps"): the same files
byte for byte from one process, a local pool and a real local Ray cluster; Ctrl-C stops the
workers and leaves nothing; bad flags are one line."""
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, assert_user_error, needs_fashion_mnist, write_scenario
from executor_jobs import fail_on, sleepy

from simulator.core.executors import Executor, chunk_jobs

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None and not os.environ.get("CI"),
                               reason="ray absent (pip install -e '.[ray]'; CI installs it)")

# Random (jitter, loss) and replicated: every run goes to the workers (deterministic runs stay in process).
STOCHASTIC = {"workload.epochs": 2, "workload.train_samples": 3200, "network.uplink_mbps": [0.5, 2.0, 50.0],
              "network.jitter_ms": 20.0, "network.loss_rate": 0.01, "replications": 2, "accuracy.enabled": False}


def outputs(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def run_into(cli, folder: Path, *flags: str, changes: dict | None = None) -> dict[str, bytes]:
    """Run the STOCHASTIC scenario (with `changes`) in `folder` with `flags`; every output file's bytes.
    Runs compared share the folder: a file that names its folder reads the same."""
    proc = cli(write_scenario(folder, {**STOCHASTIC, **(changes or {})}), "--no-progress", "--engine", "simpy", *flags)
    assert proc.returncode == 0, proc.stderr
    return outputs(folder / "out")


def test_results_come_back_in_input_order_whatever_order_they_finish_in():
    # the first jobs sleep longest: the workers finish them last
    jobs = [(0.02 * (20 - i) if i < 6 else 0.0, i) for i in range(40)]
    with Executor("local", 2) as executor:
        assert list(executor.map(sleepy, jobs, len(jobs), chunk=1)) == list(range(40))
        # chunks of 3; the cheap ones (odd values) run here, the rest in the pool: one order still
        cheap = list(executor.map(sleepy, jobs, len(jobs), chunk=3, cheap=lambda job: job[1] % 2 == 1))
        assert cheap == list(range(40))
    assert chunk_jobs(12, 2) == 1 and chunk_jobs(1_000_000, 2) == 64


def test_a_failed_job_raises_here_and_stops_the_pool():
    executor = Executor("local", 2)
    with pytest.raises(ValueError, match="job 13 failed"), executor:
        list(executor.map(fail_on, range(100), 100, chunk=1))
    assert executor.pool is None


def test_two_workers_write_the_same_files_as_one(cli, tmp_path):
    serial = run_into(cli, tmp_path, "--workers", "1")
    pooled = run_into(cli, tmp_path, "--workers", "2")
    assert serial.keys() == pooled.keys() and "results.csv" in serial
    assert [name for name in serial if serial[name] != pooled[name]] == []
    table = pd.read_csv(tmp_path / "out" / "results.csv")
    assert (table.engine == "simpy").all() and len(table) == 2 * 3 * 3 * 2  # models x rates x methods x replications
    assert table.columns.get_loc("engine") == table.columns.get_loc("uplink_buffer_policy") + 1


@pytest.fixture
def local_ray():
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@needs_ray
def test_ray_writes_the_same_files_as_the_local_executor(cli, tmp_path, local_ray):
    local = run_into(cli, tmp_path, "--workers", "2")
    on_ray = run_into(cli, tmp_path, "--executor", "ray")
    assert local.keys() == on_ray.keys() and [name for name in local if local[name] != on_ray[name]] == []
    assert local_ray.is_initialized()  # a cluster it did not start is left running


def worker_pids(pid: int) -> list[int]:
    """The pool workers among `pid`'s children."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    found = []
    for child in children:
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(int(child))
        except OSError:
            continue
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads the process tree from /proc (Linux)")
def test_ctrl_c_stops_the_workers_and_writes_nothing(tmp_path):
    # 2 x 3 rates x 3 methods x 4 replications of 20 epochs of 1,000 batches, event by event: over a minute
    path = write_scenario(tmp_path, {**STOCHASTIC, "workload.epochs": 20, "workload.train_samples": 32000,
                                     "replications": 4})
    proc = subprocess.Popen([sys.executable, "-m", "simulator", "run", str(path), "--engine", "simpy", "--workers",
                             "2", "--no-progress"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while len(workers := worker_pids(proc.pid)) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(workers) == 2, proc.communicate()
        time.sleep(1.0)  # the workers are mid-run
        proc.send_signal(signal.SIGINT)
        stopped = time.monotonic()
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130 and stderr == "simulate: interrupted\n", (proc.returncode, stderr)
    assert time.monotonic() - stopped < 10  # not after the runs in flight (each takes seconds)
    assert not any(alive(pid) for pid in workers)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flags, fragments", [
    (["--workers", "0"], ["--workers must be between 1 and 4,096, got 0"]),
    (["--workers", "two"], ["--workers", "invalid int value: 'two'"]),
    (["--engine", "warp"], ["--engine", "invalid choice: 'warp'", "simpy"]),
    (["--executor", "slurm"], ["--executor", "invalid choice: 'slurm'", "ray"]),
    (["--ray-address", "10.0.0.1:6379"], ["--ray-address needs --executor ray"]),
    (["--executor", "ray", "--ray-address", "10.0.0.1"], ["--ray-address must be HOST:PORT", "'10.0.0.1'"]),
    (["--executor", "ray", "--ray-address", "head:99999"], ["--ray-address must be HOST:PORT"]),
])
def test_bad_execution_flags_fail_in_one_line(cli, tmp_path, flags, fragments):
    path = write_scenario(tmp_path, STOCHASTIC)
    for command in ("run", "split"):
        assert_user_error(cli(command, path, *flags), *fragments)
    assert not (tmp_path / "out").exists()


@needs_ray
def test_a_ray_address_where_nothing_listens_is_one_line_at_once(cli, tmp_path):
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    path = write_scenario(tmp_path, STOCHASTIC)
    started = time.monotonic()
    proc = cli(path, "--no-progress", "--executor", "ray", "--ray-address", f"127.0.0.1:{port}")
    assert_user_error(proc, f"--ray-address 127.0.0.1:{port}: nothing answers there", "ray start --head")
    assert time.monotonic() - started < 30 and not (tmp_path / "out").exists()


def test_ray_missing_is_one_line_naming_the_extra(cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as where it is not installed
    path = write_scenario(tmp_path, STOCHASTIC)
    assert_user_error(cli(path, "--no-progress", "--executor", "ray"), "pip install -e '.[ray]'")
    assert not (tmp_path / "out").exists()


@needs_fashion_mnist
def test_training_in_workers_gives_the_numbers_of_training_here(cli, tmp_path, monkeypatch):
    """Each training run in a pool worker, cached there by this process: the same metrics as
    in process (TRAINING_THREADS fixes torch's thread count), wall time aside."""
    tiny = {"replications": 1, "workload.epochs": 1, "workload.train_samples": 320,
            "workload.models": [{"name": "vgg16", "split": "stage3"}, {"name": "resnet18", "split": "layer3_1"}],
            "network.uplink_mbps": [1.0, 10.0],
            "accuracy": {"dataset": "fashion-mnist", "width": 0.0625, "epochs": 1, "train_subset": 640,
                         "test_subset": 200, "lr": 0.05}}
    tables = {}
    for workers in ("1", "2"):
        monkeypatch.setenv("SIMULATOR_CACHE", str(tmp_path / f"cache{workers}"))
        run_into(cli, tmp_path, "--workers", workers, changes=tiny)
        tables[workers] = pd.read_csv(tmp_path / "out" / "results.csv").drop(columns=["training_wall_s"])
        assert tables[workers].final_accuracy.notna().all()
    pd.testing.assert_frame_equal(tables["1"], tables["2"])
    entries = {w: sorted((tmp_path / f"cache{w}" / "training").glob("*.json")) for w in ("1", "2")}
    assert [p.name for p in entries["1"]] == [p.name for p in entries["2"]] and len(entries["1"]) == 4

    def metrics(path: Path) -> dict:
        data = json.loads(path.read_text())
        return {**data, "epochs": [{**e, "wall_time_s": 0} for e in data["epochs"]]}

    assert [metrics(p) for p in entries["1"]] == [metrics(p) for p in entries["2"]]
    assert not list((tmp_path / "cache2" / "training").glob(".*"))  # no temporary file left
