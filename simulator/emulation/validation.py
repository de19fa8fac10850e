"""The simulator's prediction for each emulated run, and how far it is from the measurement.

    predicted_s           the simulation of the run from the part steps measured on this machine
                          (`prediction.predict`: busy step times, plus the wake-up cost where a
                          worker waits)
    error_pct             100 * (predicted_s - measured_s) / measured_s  (signed: > 0 over-predicts)
    structural_error_pct  the same, with the simulation re-run on the run's own per-batch compute,
                          measured in the workers during the run (`prediction.structural_spec`):
                          the error of the pipeline, link and queue model alone, without the
                          estimate of the device's speed

`validation.csv` starts with the columns method, uplink_mbps, batches, measured_s,
predicted_s, error_pct, structural_error_pct; the rest help find a wrong term (per-batch
compute measured against what was charged, the wake-up cost charged, the link's real
hand-over lag, what happened) or say what the link was: the traces' file names, their scale
and the offset into them (empty and nan at a constant rate), the buffer policy, and, where
the uplink may discard payloads (hierarchical under drop_*), the batches it dropped for real
beside the simulation's (`predicted_batches_dropped`, `predicted_cloud_batches`; the
simulation is the DES of the same point, replication 0, as `predicted_s`). `fig_validation.png` puts predicted against measured time, a
point per run, on log axes with the y = x line and a +-5% band: end to end on the left, the
structural prediction on the right.
"""
import math
from pathlib import Path

import pandas as pd

from ..core.files import atomic_write_bytes, atomic_write_text
from ..report.style import colour, label, new_figure, render_png
from ..scenario.config import Scenario
from ..sim.engine import simulate
from ..sim.run import RunResult, RunSpec
from .prediction import predict, predicted_compute_ms, structural_spec
from .session import RunRequest, run_request
from .steps_file import MeasuredSteps, request_key

VALIDATION_COLUMNS = ["method", "uplink_mbps", "batches", "measured_s", "predicted_s", "error_pct",
                      "structural_error_pct"]
EXTRA_COLUMNS = ["model", "split", "codec", "downlink_mbps", "latency_ms", "uplink_trace", "downlink_trace",
                 "trace_scale", "trace_offset_s", "outages", "uplink_buffer_policy", "status", "edge_s", "cloud_s",
                 "edge_batches", "cloud_batches", "predicted_cloud_batches", "batches_dropped",
                 "predicted_batches_dropped", "edge_compute_ms", "predicted_edge_compute_ms", "cloud_compute_ms",
                 "predicted_cloud_compute_ms", "edge_wake_ms", "cloud_wake_ms", "edge_backward_ms", "link_late_ms",
                 "bytes_up", "bytes_down", "edge_threads", "cloud_threads", "cores", "pacing", "compute_model",
                 "note"]
PACING = "application"  # serialisation slept per payload, latency held in a delay line (`pacing`)
TARGET_PCT = 5.0  # on structural_error_pct (README "Real runs")


def percent_error(predicted: float, measured: float | None) -> float:
    return 100 * (predicted - measured) / measured if measured else math.nan


def record_request(scenario: Scenario, record: dict) -> RunRequest:
    return run_request(scenario, record["model"], record["split"], record["method"], record["uplink_mbps"],
                       record["batches"])


def validation_table(scenario: Scenario, records: list[dict], measured: dict[tuple, MeasuredSteps],
                     notes: list[str], compute_model: str, cores: str) -> pd.DataFrame:
    """One row per emulated run (`records`, with the plan's `notes` in the same order), with the
    simulator's prediction from the `measured` part steps (by steps_file.request_key) beside it."""
    rows = []
    for record, plan_note in zip(records, notes, strict=True):
        request = record_request(scenario, record)
        prediction = predict(scenario, request, measured[request_key(request)])
        edge_ms, cloud_ms = predicted_compute_ms(prediction.spec.costs, record["method"])
        measured_s, structural_pct = record["measured_s"], math.nan
        if record["status"] == "ok":
            spec = structural_spec(prediction.spec, record["edge_compute_ms"], record["edge_backward_ms"],
                                   record["cloud_compute_ms"])
            structural_pct = percent_error(simulate(spec).total_time_s, measured_s)
        rows.append({**record, **link_columns(prediction.spec, prediction.result, record["batches_dropped"]),
                     "measured_s": measured_s if measured_s is not None else math.nan,
                     "predicted_s": prediction.result.total_time_s,
                     "error_pct": percent_error(prediction.result.total_time_s, measured_s),
                     "structural_error_pct": structural_pct, "codec": scenario.network.codec,
                     "downlink_mbps": scenario.downlink_mbps(record["uplink_mbps"]),
                     "latency_ms": scenario.network.latency_ms, "predicted_edge_compute_ms": edge_ms,
                     "predicted_cloud_compute_ms": cloud_ms, "edge_wake_ms": prediction.edge_wake_ms,
                     "cloud_wake_ms": prediction.cloud_wake_ms, "cores": cores, "pacing": PACING,
                     "compute_model": compute_model, "note": "; ".join(filter(None, [plan_note, record["note"]]))})
    return pd.DataFrame(rows).reindex(columns=VALIDATION_COLUMNS + EXTRA_COLUMNS)


def link_columns(spec: RunSpec, result: RunResult, record_dropped: int) -> dict:
    """What the run's links followed (trace names, scale, offset, outage windows, buffer policy)
    and the simulated drops; `batches_dropped` is left out (nan) where the method cannot drop."""
    uplink, downlink = spec.uplink.shape, spec.downlink.shape
    traced = uplink if uplink.trace is not None else downlink  # both links share the scale and offset
    outages = [f"{start_s:g} s for {duration_s:g} s" for start_s, duration_s in uplink.outages]
    if uplink.outage_model is not None:
        outages.append("on/off, mean up {:g} s, down {:g} s".format(*uplink.outage_model))
    drops = spec.drop_policy is not None
    return {"uplink_trace": Path(uplink.trace).name if uplink.trace else "",
            "downlink_trace": Path(downlink.trace).name if downlink.trace else "",
            "trace_scale": traced.scale if traced.trace is not None else math.nan,
            "trace_offset_s": traced.offset_s if traced.trace is not None else math.nan,
            "outages": "; ".join(outages), "uplink_buffer_policy": spec.uplink_buffer_policy,
            "predicted_cloud_batches": result.cloud_batches_trained,
            "batches_dropped": record_dropped if drops else math.nan,
            "predicted_batches_dropped": result.batches_dropped if drops else math.nan}


def error_table(table: pd.DataFrame) -> str:
    """measured / predicted / error and structural error per method and rate, for the terminal."""
    columns = ["model", "split", "method", "uplink_mbps", "batches", "measured_s", "predicted_s", "error_pct",
               "structural_error_pct", "status"]
    if table.batches_dropped.notna().any():  # a drop policy applied: the drops, real and simulated
        columns[-1:-1] = ["batches_dropped", "predicted_batches_dropped"]
    out = table[columns]
    return out.to_string(index=False, float_format=lambda v: f"{v:.2f}")


def validation_figure(table: pd.DataFrame) -> bytes:
    """Predicted against measured training time, a point per run, y = x and a +-5% band: the
    prediction from the part steps (left) and the structural one from each run's own compute (right)."""
    done = table[table.status == "ok"].assign(
        structural_s=lambda t: t.measured_s * (1 + t.structural_error_pct / 100))
    figure = new_figure(10.4, 4.6)
    panels = (("predicted_s", "error_pct", "End to end: part steps measured here"),
              ("structural_s", "structural_error_pct", "Structural: each run's own compute"))
    for index, (column, error, title) in enumerate(panels):
        axes = figure.add_subplot(1, 2, index + 1)
        if len(done):
            low = min(done.measured_s.min(), done[column].min()) / 1.5
            high = max(done.measured_s.max(), done[column].max()) * 1.5
            line = [low, high]
            axes.plot(line, line, color="black", linewidth=0.8, label="prediction = measurement")
            axes.fill_between(line, [v * (1 - TARGET_PCT / 100) for v in line],
                              [v * (1 + TARGET_PCT / 100) for v in line], color="0.85", label=f"within {TARGET_PCT:g}%")
            for method, group in done.groupby("method", sort=False):
                axes.scatter(group.measured_s, group[column], color=colour(method), label=label(method), zorder=3)
                for row in group.itertuples():
                    axes.annotate(f"{row.uplink_mbps:g} Mbit/s, {getattr(row, error):+.1f}%",
                                  (row.measured_s, getattr(row, column)), fontsize=7, xytext=(4, -9),
                                  textcoords="offset points")
            axes.set_xscale("log")
            axes.set_yscale("log")
            axes.set_xlim(low, high)
            axes.set_ylim(low, high)
            axes.legend(fontsize=8, loc="upper left")
        else:
            axes.text(0.5, 0.5, "no run finished", ha="center", va="center", transform=axes.transAxes)
        axes.set_xlabel("measured training time, two real processes (s)")
        axes.set_ylabel("simulated training time (s)")
        axes.set_title(title, fontsize=10)
    return render_png(figure)


def write_validation(output_dir: str, table: pd.DataFrame) -> list[Path]:
    """validation.csv and fig_validation.png in `output_dir`, each written whole."""
    folder = Path(output_dir)
    csv_path, figure_path = folder / "validation.csv", folder / "fig_validation.png"
    atomic_write_text(csv_path, table.to_csv(index=False, float_format="%.10g"))
    atomic_write_bytes(figure_path, validation_figure(table))
    return [csv_path, figure_path]
