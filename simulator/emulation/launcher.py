"""`simulate emulate` and `simulate emulate-worker`: start the workers, watch them, clean up.

    simulate emulate SCENARIO.yaml --uplink-mbps X [Y ...] [--batches N] [--cloud HOST:PORT]

starts the edge worker as a separate OS process, and, without --cloud, the cloud worker too,
on loopback at a free port. Each worker is `simulate emulate-worker --role edge|cloud ...`.
The edge worker writes one JSON line per run; this process then simulates every run and
writes `validation.csv` and `fig_validation.png` into the scenario's output folder.

Clean-up on every path: the workers run in their own process groups (Ctrl-C reaches only
this process, which ends them), die with this process (Linux PR_SET_PDEATHSIG), and are
terminated, then killed, in a `finally`. No wait is unbounded: every wait in a worker has
a timeout, and this process gives the edge worker the predicted time of all runs plus
their timeouts.
"""
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..core.errors import UserError
from ..core.files import check_writable
from ..scenario.config import Scenario, load_scenario
from .processes import free_port, spawn, stop, worker_env


def check_request(scenario: Scenario, rates_mbps: list[float], batches: int, timeout_s: float) -> None:
    for rate in rates_mbps:
        if not rate > 0:
            raise UserError(f"--uplink-mbps must be > 0, got {rate:g}")
    if batches < 1:
        raise UserError(f"--batches must be >= 1, got {batches}")
    if not timeout_s > 0:
        raise UserError(f"--timeout-s must be > 0, got {timeout_s:g}")
    for model in scenario.workload.models:
        if model.split == "auto":
            raise UserError(f"{scenario.path}: workload.models: {model.name} has split: auto; emulation needs a "
                            f"separation point (run `simulate split` and write the point chosen)")
    for side, profiles in (("edge", scenario.edge_profiles), ("cloud", scenario.cloud_profiles)):
        for model, profile in profiles.items():
            if profile.width != scenario.edge_profiles[model].width:
                raise UserError(f"{scenario.path}: {side}.profiles.{model} is for width {profile.width:g}, the edge "
                                f"profile for {scenario.edge_profiles[model].width:g}; both workers build one model")
            if profile.device.kind != "cpu" and side == "edge":
                raise UserError(f"{scenario.path}: edge.profiles.{model}: emulation runs the edge on its CPU; "
                                f"give a cpu profile")


def run_workers(scenario_path: str, scenario: Scenario, rates_mbps: list[float], batches: int, cloud: str | None,
                timeout_s: float, progress: bool, deadline_s: float) -> list[dict]:
    """Run the edge worker (and a local cloud worker without `cloud`); its JSON lines."""
    from .session import profile_threads

    threads = {side: max(profile_threads(p) for p in profiles.values())
               for side, profiles in (("edge", scenario.edge_profiles), ("cloud", scenario.cloud_profiles))}
    processes: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="emulate-") as folder:
        result_path, cloud_log = Path(folder) / "records.jsonl", Path(folder) / "cloud.log"
        try:
            if cloud is None:
                cloud = f"127.0.0.1:{free_port()}"
                with open(cloud_log, "w") as log:
                    processes.append(spawn(["--role", "cloud", "--listen", cloud, scenario_path, "--timeout-s",
                                            str(timeout_s)], worker_env(threads["cloud"]), stdout=log,
                                           stderr=subprocess.STDOUT))
            args = ["--role", "edge", "--cloud", cloud, scenario_path, "--batches", str(batches), "--result",
                    str(result_path), "--timeout-s", str(timeout_s), "--uplink-mbps", *map(str, rates_mbps)]
            edge = spawn(args + ([] if progress else ["--no-progress"]), worker_env(threads["edge"]))
            processes.append(edge)
            try:
                edge.wait(deadline_s)
            except subprocess.TimeoutExpired:
                raise UserError(f"the edge worker did not finish within {deadline_s:.0f} s (the predicted time of "
                                f"every run plus its timeouts); stopped it") from None
            for process in processes[:-1]:  # the local cloud worker exits after "shutdown"
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(min(timeout_s, 10.0))
        finally:
            for process in processes:
                stop(process)
        lines = [json.loads(line) for line in result_path.read_text().splitlines()] if result_path.exists() else []
        errors = [line["error"] for line in lines if "error" in line]
        if errors:
            raise UserError(errors[0])
        if edge.returncode != 0:
            log = cloud_log.read_text().strip().splitlines()[-1:] if cloud_log.exists() else []
            raise UserError(f"the edge worker exited with status {edge.returncode}"
                            + (f"; cloud worker: {log[0]}" if log else ""))
        return [line["record"] for line in lines]


def emulate(scenario_path: str, rates_mbps: list[float] | None, batches: int, cloud: str | None, timeout_s: float,
            progress: bool = True):
    """Run every model x rate x method of the scenario for real, simulate each, write the table."""
    from .channel import parse_address
    from .prediction import predict
    from .validation import error_table, validation_table, write_validation

    scenario = load_scenario(scenario_path)
    rates_mbps = rates_mbps or list(scenario.network.uplink_mbps)
    check_request(scenario, rates_mbps, batches, timeout_s)
    if cloud is not None:
        parse_address(cloud, "--cloud")
    check_writable(Path(scenario.output_dir) / "validation.csv")
    predicted_s = sum(predict(scenario, m.name, method, rate, batches).total_time_s
                      for m in scenario.workload.models for rate in rates_mbps for method in scenario.methods)
    runs = len(scenario.workload.models) * len(rates_mbps) * len(scenario.methods)
    deadline_s = 60 + 3 * predicted_s + 3 * runs * timeout_s
    started_s = time.perf_counter()
    records = run_workers(scenario_path, scenario, rates_mbps, batches, cloud, timeout_s, progress, deadline_s)
    table = validation_table(scenario, records)
    written = write_validation(scenario.output_dir, table)
    where = f"cloud worker at {cloud}" if cloud else "both workers on loopback"
    print(f"\n{scenario.name}: real runs ({where}, application-level pacing) against the simulator\n")
    print(error_table(table))
    for row in table[table.note.fillna("") != ""].itertuples():
        print(f"note: {row.method} at {row.uplink_mbps:g} Mbit/s: {row.note}")
    print(f"\nwrote {', '.join(map(str, written))} in {time.perf_counter() - started_s:.0f} s")
    return table


def worker_main(role: str, scenario_path: str, address: str, rates_mbps: list[float], batches: int,
                result_path: str | None, timeout_s: float, progress: bool) -> None:
    """A worker process. The edge reports errors as a JSON line to the launcher; every worker
    ends with os._exit, so no gloo teardown with a dead peer can hang it."""
    from .channel import LinkLost, connect, parse_address

    flag = "--listen" if role == "cloud" else "--cloud"
    host, port = parse_address(address, flag)
    if host in ("localhost", "::1") or host.startswith("127."):
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # gloo's own choice is the host name's interface
    scenario = load_scenario(scenario_path)
    sys.setswitchinterval(5e-4)  # pacing threads get the interpreter soon after they wake
    code = 0
    try:
        if role == "cloud":
            from .cloud import serve

            print(f"cloud worker: waiting for the edge on {host}:{port}", flush=True)
            connect("cloud", host, port, timeout_s)
            print("cloud worker: edge connected", flush=True)
            serve(scenario, timeout_s)
        else:
            from .edge import TrainingSet, run_edge

            if result_path is None:
                raise UserError("emulate-worker --role edge: --result FILE is required")
            data = TrainingSet(scenario, batches * scenario.workload.batch_size)
            connect("edge", host, port, timeout_s)
            run_edge(scenario, data, rates_mbps, batches, result_path, timeout_s, progress)
    except LinkLost as exc:
        print(f"{role} worker: peer lost ({exc})", file=sys.stderr, flush=True)
        code = 1
    except UserError as exc:
        if role == "edge" and result_path is not None:
            with open(result_path, "a") as out:
                out.write(json.dumps({"error": str(exc)}) + "\n")
        else:
            print(f"simulate: error: {exc}", file=sys.stderr, flush=True)
        code = 2
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
