"""The files a scenario run leaves in its output folder, besides results.csv.

    trace.csv     the first batches of every run, event by event
                  (model, method, uplink_mbps, resource, what, batch, start_s, end_s)
    backlog.csv   uplink backlog in batches at every change during the traced window
                  (model, method, uplink_mbps, time_s, backlog)
    epochs.csv    simulated time at which the cloud finished each epoch
                  (model, method, uplink_mbps, epoch, end_s)
    stalls.csv    per run on a trace or with outages (every setting of a sweep, with its columns): its longest uplink stall (kind "stall",
                  time_s to end_s), and the uplink backlog (kind "backlog", value = batches) and
                  the dropped batches (kind "drop", value = batch) from 20 s before it to 40 s
                  after (model, method, uplink_mbps, replication, kind, time_s, end_s, value)

With replications, trace, backlog and epochs hold replication 0 (of a sweep's first setting);
stalls every replication of every setting.
    scenario.json what was simulated: devices and their profiles' sources, network,
                  workload, accuracy-run configuration

Reports are drawn from these and results.csv / training.csv only, never from numbers
computed separately, so `simulate report` can redraw them without simulating again.
"""
import json
from dataclasses import asdict

import pandas as pd

from ..core.files import atomic_write_text
from ..scenario.config import Scenario
from ..training.runs import proxy_note

RUN_KEYS = ("model", "method", "uplink_mbps")
# Every file a scenario run writes into its output folder, besides the report's (report.REPORT_FILES).
RUN_FILES = ("results.csv", "summary.csv", "training.csv", "split_points.csv", "trace.csv", "backlog.csv",
             "epochs.csv", "stalls.csv", "scenario.json")
STALL_COLUMNS = [*RUN_KEYS, "replication", "kind", "time_s", "end_s", "value"]


def run_tables(results: dict) -> dict[str, pd.DataFrame]:
    """trace, backlog and epochs tables from {SweepPoint: RunResult} (replication 0)."""
    trace, backlog, epochs = [], [], []
    for point, result in results.items():
        key = {"model": point.model, "method": point.method, "uplink_mbps": point.uplink_mbps}
        if point.replication:
            continue
        trace += [{**key, **asdict(event)} for event in result.trace]
        backlog += [{**key, "time_s": time_s, "backlog": level} for time_s, level in result.backlog_trace]
        epochs += [{**key, "epoch": i, "end_s": end_s} for i, end_s in enumerate(result.epoch_end_s, start=1)]
    return {"trace": pd.DataFrame(trace, columns=[*RUN_KEYS, "resource", "what", "batch", "start_s", "end_s"]),
            "backlog": pd.DataFrame(backlog, columns=[*RUN_KEYS, "time_s", "backlog"]),
            "epochs": pd.DataFrame(epochs, columns=[*RUN_KEYS, "epoch", "end_s"])}


def stall_table(results: dict) -> pd.DataFrame:
    """stalls.csv's rows of one setting, from {SweepPoint: RunResult}: every replication."""
    stalls = []
    for point, result in results.items():
        if result.worst_stall_s is None:
            continue
        run = {"model": point.model, "method": point.method, "uplink_mbps": point.uplink_mbps,
               "replication": point.replication}
        stalls.append({**run, "kind": "stall", "time_s": result.worst_stall_s[0], "end_s": result.worst_stall_s[1]})
        stalls += [{**run, "kind": "backlog", "time_s": t, "value": level} for t, level in result.stall_backlog]
        stalls += [{**run, "kind": "drop", "time_s": t, "value": batch} for t, batch in result.stall_drops]
    return pd.DataFrame(stalls, columns=STALL_COLUMNS)


def scenario_summary(scenario: Scenario, trained: bool) -> dict:
    """A self-contained description of the scenario for reports."""
    def device(side: str, config, profiles: dict) -> dict:
        return {"name": config.name or next(iter(profiles.values())).device.name,
                **({"compute": config.compute, "memory_mib": config.memory_mib} if side == "edge" else {}),
                "profiles": {model: {"path": config.profiles[model], "source": p.source, "device": p.device.name,
                                     "kind": p.device.kind, "threads": p.device.threads}
                             for model, p in profiles.items()}}

    return {
        "name": scenario.name, "description": scenario.description, "path": scenario.path, "seed": scenario.seed,
        "replications": scenario.replications,
        "methods": list(scenario.methods),
        "workload": {**asdict(scenario.workload), "train_samples": scenario.train_samples,
                     "batches_per_epoch": scenario.batches_per_epoch},
        "edge": device("edge", scenario.edge, scenario.edge_profiles),
        "cloud": device("cloud", scenario.cloud, scenario.cloud_profiles),
        "network": asdict(scenario.network), "full_cloud": asdict(scenario.full_cloud),
        "split_search": asdict(scenario.split_search),
        "accuracy": {**asdict(scenario.accuracy), "trained": trained, "proxy": proxy_note(scenario) if trained else ""},
    }


def write_run_outputs(folder: str, results: dict, summary: dict) -> list[str]:
    """Write trace.csv, backlog.csv, epochs.csv and scenario.json; return their paths."""
    paths = []
    for name, table in run_tables(results).items():
        paths.append(f"{folder}/{name}.csv")
        atomic_write_text(paths[-1], table.to_csv(index=False, float_format="%.10g"))
    paths.append(f"{folder}/scenario.json")
    atomic_write_text(paths[-1], json.dumps(summary, indent=1) + "\n")
    return paths
