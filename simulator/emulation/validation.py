"""The simulator's prediction for an emulated run, and how far it is from the measurement.

    predicted_s  the discrete-event simulation of the same scenario, model, method and rates,
                 for one epoch of `batches` batches (`runner.run_spec` with batches_per_epoch
                 = batches, epochs = 1), from the profiles the scenario names
    error_pct    100 * (predicted_s - measured_s) / measured_s  (signed: > 0 over-predicts)

With part steps measured (`part_steps`), compute per batch comes from them instead of the
sum of per-block profile times; the column compute_model says which.

`validation.csv` starts with the columns method, uplink_mbps, batches, measured_s,
predicted_s, error_pct; the rest help find a wrong term (per-batch compute measured against
the profile's, the link's real hand-over lag, what happened). `fig_validation.png` puts
predicted against measured time, a point per run, on log axes with the y = x line and a
+-5% band.
"""
import math
from pathlib import Path

import pandas as pd

from ..core.files import atomic_write_text
from ..report.style import colour, label, new_figure, render_png, write_bytes_atomic
from ..scenario.config import Scenario
from ..sim.engine import simulate
from .prediction import emulated_spec, predicted_compute_ms

VALIDATION_COLUMNS = ["method", "uplink_mbps", "batches", "measured_s", "predicted_s", "error_pct"]
EXTRA_COLUMNS = ["model", "split", "codec", "downlink_mbps", "latency_ms", "status", "edge_s", "cloud_s",
                 "edge_batches", "cloud_batches", "edge_compute_ms", "predicted_edge_compute_ms", "cloud_compute_ms",
                 "predicted_cloud_compute_ms", "link_late_ms", "bytes_up", "bytes_down", "edge_threads",
                 "cloud_threads", "pacing", "compute_model", "note"]
PACING = "application"  # serialisation slept per payload, latency held in a delay line (`pacing`)
TARGET_PCT = 5.0


def validation_table(scenario: Scenario, records: list[dict]) -> pd.DataFrame:
    """One row per emulated run, with the simulator's prediction beside the measurement."""
    rows = []
    for record in records:
        spec = emulated_spec(scenario, record["model"], record["method"], record["uplink_mbps"], record["batches"])
        result = simulate(spec)
        edge_ms, cloud_ms = predicted_compute_ms(spec.costs, record["method"])
        measured = record["measured_s"]
        error = 100 * (result.total_time_s - measured) / measured if measured else math.nan
        rows.append({**record, "measured_s": measured if measured is not None else math.nan,
                     "predicted_s": result.total_time_s, "error_pct": error, "codec": scenario.network.codec,
                     "downlink_mbps": scenario.downlink_mbps(record["uplink_mbps"]),
                     "latency_ms": scenario.network.latency_ms, "predicted_edge_compute_ms": edge_ms,
                     "predicted_cloud_compute_ms": cloud_ms, "pacing": PACING,
                     "compute_model": "part steps" if spec.costs.part_steps else "per-block sums"})
    return pd.DataFrame(rows).reindex(columns=VALIDATION_COLUMNS + EXTRA_COLUMNS)


def error_table(table: pd.DataFrame) -> str:
    """measured / predicted / error per method and rate, for the terminal."""
    out = table[["model", "method", "uplink_mbps", "batches", "measured_s", "predicted_s", "error_pct", "status"]]
    return out.to_string(index=False, float_format=lambda v: f"{v:.2f}")


def validation_figure(table: pd.DataFrame) -> bytes:
    """Predicted against measured training time, a point per run, y = x and a +-5% band."""
    done = table[table.status == "ok"]
    figure = new_figure(5.6, 4.6)
    axes = figure.add_subplot()
    if len(done):
        low, high = (min(done.measured_s.min(), done.predicted_s.min()) / 1.5,
                     max(done.measured_s.max(), done.predicted_s.max()) * 1.5)
        line = [low, high]
        axes.plot(line, line, color="black", linewidth=0.8, label="prediction = measurement")
        axes.fill_between(line, [v * (1 - TARGET_PCT / 100) for v in line], [v * (1 + TARGET_PCT / 100) for v in line],
                          color="0.85", label=f"within {TARGET_PCT:g}%")
        for method, group in done.groupby("method", sort=False):
            axes.scatter(group.measured_s, group.predicted_s, color=colour(method), label=label(method), zorder=3)
            for row in group.itertuples():
                axes.annotate(f"{row.uplink_mbps:g} Mbit/s", (row.measured_s, row.predicted_s), fontsize=7,
                              xytext=(4, -9), textcoords="offset points")
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlim(low, high)
        axes.set_ylim(low, high)
        axes.legend(fontsize=8, loc="upper left")
    else:
        axes.text(0.5, 0.5, "no run finished", ha="center", va="center", transform=axes.transAxes)
    axes.set_xlabel("measured training time, two real processes (s)")
    axes.set_ylabel("simulated training time (s)")
    axes.set_title("Simulator against real runs", fontsize=10)
    return render_png(figure)


def write_validation(output_dir: str, table: pd.DataFrame) -> list[Path]:
    """validation.csv and fig_validation.png in `output_dir`, each written whole."""
    folder = Path(output_dir)
    csv_path, figure_path = folder / "validation.csv", folder / "fig_validation.png"
    atomic_write_text(csv_path, table.to_csv(index=False, float_format="%.10g"))
    write_bytes_atomic(figure_path, validation_figure(table))
    return [csv_path, figure_path]
