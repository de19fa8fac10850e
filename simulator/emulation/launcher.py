"""`simulate emulate` and `simulate emulate-worker`: plan the runs, start the workers, watch
them, clean up, compare with the simulator.

    simulate emulate SCENARIO.yaml [--uplink-mbps X ...] [--batches N] [--cloud HOST:PORT]
                                   [--part-steps FILE | --measure-steps [--out FILE]]

plans the runs (`plan`: every model x rate x method, each at its point, `split: auto` per
rate), then starts the edge worker as a separate OS process and, without --cloud, the cloud
worker too, on loopback at a free port, each on cores of its own (`processes.cores_for`).
Each worker is `simulate emulate-worker --role edge|cloud ...`. The edge worker first has
both workers measure their part steps (`measuring`; not with --part-steps), then runs the
plan, writing one JSON line per measurement and per run. This process then simulates every
run with those part steps and writes `validation.csv`, `fig_validation.png` and the part
steps it measured (`part_steps.json`, reusable with --part-steps on the same machines) into
the scenario's output folder. `--measure-steps` stops after the measurement.

Clean-up on every path: the workers run in their own process groups (Ctrl-C reaches only
this process, which ends them), die with this process (Linux PR_SET_PDEATHSIG), and are
terminated, then killed, in a `finally`. No wait is unbounded: every wait in a worker has
a timeout, and this process gives the edge worker the predicted time of all runs and
measurements plus their timeouts.
"""
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..core.errors import UserError
from ..core.files import check_writable
from ..core.typed import build_dataclass
from ..scenario.config import Scenario
from ..scenario.limits import (
    MAX_EMULATED_BATCHES,
    MAX_RATE_MBPS,
    MAX_TIMEOUT_S,
    MIN_RATE_MBPS,
    check_flag_number,
)
from ..scenario.load import load_scenario
from .part_steps import Repeats
from .processes import cores_for, free_port, spawn, stop, worker_env

PART_STEPS_FILE = "part_steps.json"
DEFAULT_REPEATS = Repeats()


def trace_rates(scenario: Scenario, rates_mbps: list[float]) -> list[float]:
    """With an uplink trace, the rates are the trace's mean x network.trace_scale: `--uplink-mbps`
    may only pick among them (as printed, to 1e-6), and gets the scenario's exact values."""
    n = scenario.network
    if n.uplink_trace is None:
        return rates_mbps
    chosen = []
    for rate in rates_mbps:
        match = [own for own in n.uplink_mbps if math.isclose(rate, own, rel_tol=1e-6)]
        if not match:
            own = ", ".join(f"{r:.6g}" for r in n.uplink_mbps)
            raise UserError(f"--uplink-mbps {rate:g}: {scenario.path} follows the trace {Path(n.uplink_trace).name} "
                            f"(network.uplink_trace), whose rates are its mean x network.trace_scale: {own} Mbit/s; "
                            f"leave --uplink-mbps out or give one of them")
        chosen.append(match[0])
    return chosen


def check_request(scenario: Scenario, rates_mbps: list[float], batches: int, timeout_s: float) -> None:
    for rate in rates_mbps:
        check_flag_number("--uplink-mbps", rate, MAX_RATE_MBPS)
        MIN_RATE_MBPS.check("", "--uplink-mbps", rate)
    check_flag_number("--batches", batches, MAX_EMULATED_BATCHES, minimum=1, allow_minimum=True)
    check_flag_number("--timeout-s", timeout_s, MAX_TIMEOUT_S)
    for side, profiles in (("edge", scenario.edge_profiles), ("cloud", scenario.cloud_profiles)):
        for model, profile in profiles.items():
            if profile.width != scenario.edge_profiles[model].width:
                raise UserError(f"{scenario.path}: {side}.profiles.{model} is for width {profile.width:g}, the edge "
                                f"profile for {scenario.edge_profiles[model].width:g}; both workers build one model")
            if profile.device.kind != "cpu" and side == "edge":
                raise UserError(f"{scenario.path}: edge.profiles.{model}: emulation runs the edge on its CPU; "
                                f"give a cpu profile")


def deadline_s(scenario: Scenario, requests: list, timeout_s: float, repeats: Repeats | None) -> float:
    """How long the edge worker may take: three times the runs predicted from the profiles'
    per-block sums, every timeout three times, and each measurement's bound."""
    from ..sim.engine import simulate
    from .measuring import step_estimate_s
    from .part_steps import measurement_bound_s
    from .plan import points
    from .prediction import emulated_spec

    runs_s = sum(simulate(emulated_spec(scenario, r, None)).total_time_s for r in requests)
    measure_s = sum(measurement_bound_s(step_estimate_s(scenario, r, side), *repeats) + timeout_s
                    for r in points(requests) for side in ("edge", "cloud")) if repeats is not None else 0.0
    return 60 + 3 * runs_s + 3 * len(requests) * timeout_s + measure_s


def run_workers(scenario_path: str, requests: list, given: str | None, repeats: Repeats, measure_only: bool,
                cloud: str | None, timeout_s: float, progress: bool, deadline: float,
                cores: tuple[set[int], set[int]] | None) -> list:
    """Run the edge worker (and a local cloud worker without `cloud`); its JSON lines."""
    edge_threads = max(r.edge_threads for r in requests)
    cloud_threads = max(r.cloud_threads for r in requests)
    processes: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="emulate-") as folder:
        result_path, cloud_log = Path(folder) / "records.jsonl", Path(folder) / "cloud.log"
        plan_path = Path(folder) / "plan.json"
        plan_path.write_text(json.dumps({"runs": [r.to_dict() for r in requests], "part_steps": given,
                                         "repeats": list(repeats), "measure_only": measure_only}))
        try:
            if cloud is None:
                cloud = f"127.0.0.1:{free_port()}"
                with open(cloud_log, "w") as log:
                    processes.append(spawn(["--role", "cloud", "--listen", cloud, scenario_path, "--timeout-s",
                                            str(timeout_s)], worker_env(cloud_threads), cores and cores[1],
                                           stdout=log, stderr=subprocess.STDOUT))
            args = ["--role", "edge", "--cloud", cloud, scenario_path, "--plan", str(plan_path), "--result",
                    str(result_path), "--timeout-s", str(timeout_s)]
            edge = spawn(args + ([] if progress else ["--no-progress"]), worker_env(edge_threads), cores and cores[0])
            processes.append(edge)
            try:
                edge.wait(deadline)
            except subprocess.TimeoutExpired:
                raise UserError(f"the edge worker did not finish within {deadline:.0f} s (the predicted time of "
                                f"every run and measurement plus its timeouts); stopped it") from None
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
        return lines


def placement(cloud: str | None, cores: tuple[set[int], set[int]] | None) -> str:
    """The `cores` column: where the workers ran."""
    if cloud is not None:
        return f"cloud worker at {cloud}"
    if cores is None:
        return f"not pinned (the {os.cpu_count()} cores are too few for both thread counts)"
    return f"edge on core {','.join(map(str, sorted(cores[0])))}, cloud on core {','.join(map(str, sorted(cores[1])))}"


def emulate(scenario_path: str, rates_mbps: list[float] | None, batches: int, cloud: str | None, timeout_s: float,
            progress: bool = True, part_steps: str | None = None, measure_only: bool = False, out: str | None = None,
            pin: bool = True, repeats: Repeats = DEFAULT_REPEATS):
    """Run every model x rate x method of the scenario for real, simulate each, write the table
    (the DataFrame); with `measure_only`, only measure the part steps and write them to `out`.
    `pin`: each local worker on cores of its own; `repeats`: timed runs per part-step measurement."""
    from .channel import parse_address
    from .hosts import host_identity
    from .plan import plan_runs
    from .steps_file import MeasuredSteps, check_steps, load_steps, write_steps
    from .validation import error_table, validation_table, write_validation

    scenario = load_scenario(scenario_path)
    rates_mbps = trace_rates(scenario, rates_mbps or list(scenario.network.uplink_mbps))
    check_request(scenario, rates_mbps, batches, timeout_s)
    if part_steps is not None and measure_only:
        raise UserError("--part-steps and --measure-steps exclude each other: one reads part steps, the other "
                        "measures them")
    if out is not None and not measure_only:
        raise UserError("--out is where --measure-steps writes the part steps; give --measure-steps too")
    if cloud is not None:
        parse_address(cloud, "--cloud")
    runs = plan_runs(scenario, rates_mbps, batches)
    requests = [run.request for run in runs]
    given = None
    if part_steps is not None:  # this host is the edge's; on loopback also the cloud's
        given = check_steps(part_steps, load_steps(part_steps), requests, host_identity(),
                            host_identity() if cloud is None else None)
    folder = Path(scenario.output_dir)
    steps_path = Path(out) if out is not None else folder / PART_STEPS_FILE
    outputs = [folder / "validation.csv", folder / "fig_validation.png"] + ([steps_path] if given is None else [])
    for path in [steps_path] if measure_only else outputs:
        check_writable(path)
    cores = cores_for(max(r.edge_threads for r in requests), max(r.cloud_threads for r in requests)) \
        if pin and cloud is None else None
    started_s = time.perf_counter()
    lines = run_workers(scenario_path, requests, part_steps, repeats, measure_only, cloud, timeout_s, progress,
                        deadline_s(scenario, requests, timeout_s, repeats if given is None else None), cores)
    measured = given or {entry.key(): entry for entry in
                         (build_dataclass(MeasuredSteps, line["part_steps"], "the edge worker's record")
                          for line in lines if "part_steps" in line)}
    if measure_only:
        written = write_steps(steps_path, list(measured.values()))
        print(f"wrote {written}: part steps of {', '.join(e.describe() for e in measured.values())}, measured "
              f"in {time.perf_counter() - started_s:.0f} s")
        return written
    records = [line["record"] for line in lines if "record" in line]
    notes = [run.note for run in runs]
    compute_model = f"part steps from {part_steps}" if given else "part steps measured in this session"
    table = validation_table(scenario, records, measured, notes, compute_model, placement(cloud, cores))
    written = write_validation(scenario.output_dir, table)
    if given is None:
        written.append(write_steps(steps_path, list(measured.values())))
    where = f"cloud worker at {cloud}" if cloud else "both workers on loopback"
    print(f"\n{scenario.name}: real runs ({where}, application-level pacing) against the simulator\n")
    print(error_table(table))
    for row in table[table.note.fillna("") != ""].itertuples():
        print(f"note: {row.method} at {row.uplink_mbps:g} Mbit/s: {row.note}")
    print(f"\nwrote {', '.join(map(str, written))} in {time.perf_counter() - started_s:.0f} s")
    return table


def worker_main(role: str, scenario_path: str, address: str, plan_path: str | None, result_path: str | None,
                timeout_s: float, progress: bool) -> None:
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
            from .session import RunRequest

            if result_path is None or plan_path is None:
                raise UserError("emulate-worker --role edge: --plan FILE and --result FILE are required (it is "
                                "started by `simulate emulate`)")
            plan = json.loads(Path(plan_path).read_text())
            requests = [RunRequest.from_dict(r) for r in plan["runs"]]
            data = TrainingSet(scenario, max(r.batches for r in requests) * scenario.workload.batch_size)
            connect("edge", host, port, timeout_s)
            run_edge(scenario, data, requests, plan["part_steps"], Repeats(*plan["repeats"]), str(result_path),
                     timeout_s, progress, plan["measure_only"])
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
