"""What report.md and report.html say: the scenario summary, the network (traces, outages,
buffer policy), the results tables and the figures, as one list of blocks (`render.py` writes
it as Markdown and as HTML, so both always say the same thing).
"""
import math
from pathlib import Path

from ..core.errors import UserError
from ..core.names import PAPER_MODEL_NAMES
from ..core.text import bytes_text, duration_text, percent_text, reduction_text
from ..links.traces import load_trace
from .data import RunData
from .style import ReportFigure, label
from .traffic import traffic_blocks

# A block is ("h1" | "h2" | "h3" | "p" | "note", text), ("table", header, rows) or ("figure", ReportFigure).
# With replications, every value is the mean over them (RunData.results), written "mean ± h"
# where h is the half-width of its 95% confidence interval (summary.csv).


def scenario_blocks(run: RunData) -> list:
    s, w, n, a = run.scenario, run.scenario["workload"], run.scenario["network"], run.scenario["accuracy"]
    downlink = ("its trace (see Network)" if n.get("downlink_trace") else f"{n['downlink_mbps']:g} Mbit/s"
                if n.get("downlink_mbps") is not None else f"{n.get('downlink_ratio', 1):g} x uplink")
    models = ", ".join(f"{m['name']} {split_text(m['split'])}" for m in w["models"])
    upload = s.get("full_cloud", {}).get("raw_upload", "once").replace("_", " ")
    rows = [["edge device", f"{s['edge']['name']} (trains on its {s['edge'].get('compute', 'cpu').upper()})"],
            ["cloud device", s["cloud"]["name"]],
            ["uplink rates", ", ".join(f"{r:g}" for r in n["uplink_mbps"]) + " Mbit/s"],
            ["link", f"downlink {downlink}; latency {n['latency_ms']:g} ms one way; jitter {n['jitter_ms']:g} ms; "
                     f"loss {n['loss_rate']:g}; uplink buffer {n['uplink_buffer_batches']} batches; "
                     f"codec {n['codec']}"],
            ["workload", f"{w['dataset']}: {models}; batch {w['batch_size']}; {w['epochs']} epochs of "
                         f"{w['batches_per_epoch']} batches ({w['train_samples']:,} samples)"],
            ["methods", ", ".join(label(m) for m in s["methods"])
             + f" (full-cloud uploads the raw data {upload})"],
            ["accuracy run", accuracy_text(a, w)]]
    profiles = [[model, side, p["device"], p["source"], p["path"]]
                for side in ("edge", "cloud") for model, p in s[side]["profiles"].items()]
    return [("h2", "Scenario"), ("p", s.get("description") or ""), ("table", ["", "setting"], rows),
            ("h3", "Device profiles (measured on the device, or derived from a datasheet)"),
            ("table", ["model", "side", "device", "source", "file"], profiles)]


def split_text(split) -> str:
    """A model's `split` (a point, auto, or one per method) as words."""
    if isinstance(split, dict):
        return "; ".join(f"{label(method)} {split_text(point)}" for method, point in split.items())
    return "split at the point chosen per bit rate (split: auto)" if split == "auto" else f"split after {split}"


def accuracy_text(a: dict, w: dict) -> str:
    if not a.get("trained"):
        return "not trained (`--no-train` or `accuracy: {enabled: false}`): accuracy columns are empty"
    subset = lambda v: "all" if v is None else f"{v:,}"  # noqa: E731
    paper = [m["name"] for m in w.get("models", []) if m["name"] in PAPER_MODEL_NAMES]
    width = "" if w.get("models") and not paper else f"width {a['width']:g}, "  # the paper's models only
    return (f"real training of {a.get('dataset') or w['dataset']}, {width}{a['epochs']} epochs, "
            f"{subset(a['train_subset'])} training / {subset(a['test_subset'])} test samples, "
            f"{a['optimizer']} lr {a['lr']:g}, on {a['device']}; {a.get('proxy') or 'no proxy: the workload itself'}")


def interval_text(mean: float, half: float, text) -> str:
    """'45.0 s ± 8.3 s': a mean and the half-width of its 95% interval, both written by `text`
    (the mean alone when the half-width is unknown or 0)."""
    if not math.isfinite(mean) or not math.isfinite(half) or half == 0:
        return text(mean)
    return f"{text(mean)} ± {text(half)}"


def reduction_interval_text(reduction: float, half: float) -> str:
    """'+66% ± 8 pp' (percentage points), or '6.3x longer ± 0.2x' where reduction_text writes a ratio."""
    if not math.isfinite(reduction) or not math.isfinite(half) or half == 0:
        return reduction_text(reduction)
    if 1.0 - reduction >= 2:  # reduction_text's "Nx longer": the ratio 1 - r has the same half-width
        return f"{reduction_text(reduction)} ± {half:.1f}x"
    points = "<0.1" if 100 * half < 0.05 else f"{100 * half:.1f}" if half < 0.1 else f"{100 * half:.0f}"
    return f"{reduction_text(reduction)} ± {points} pp"


def half_widths(run: RunData, measure: str) -> dict:
    """{(model, method, uplink_mbps): half-width of `measure`'s 95% interval}, empty with one replication."""
    if run.replications <= 1:
        return {}
    table = run.interval(measure)
    return {(t.model, t.method, t.uplink_mbps): (t.ci_high - t.ci_low) / 2 for t in table.itertuples()}


def results_blocks(run: RunData) -> list:
    r, methods, n = run.results, run.methods, run.replications
    times = r.pivot_table(index=["model", "uplink_mbps"], columns="method", values="total_time_s", sort=False)
    hier = r[r.method == "hierarchical"].set_index(["model", "uplink_mbps"])
    baselines = [b for b in ("split_learning", "full_cloud") if b in methods and "hierarchical" in methods]
    time_half = half_widths(run, "total_time_s")
    reduction_half = {b: half_widths(run, f"reduction_vs_{b}") for b in baselines}
    header = ["model", "uplink (Mbit/s)"] + [label(m) for m in methods] + [f"hier. vs {label(b)}" for b in baselines]
    rows = [[model, f"{rate:g}"]
            + [interval_text(times.loc[(model, rate)].get(m, math.nan), time_half.get((model, m, rate), math.nan),
                             duration_text) for m in methods]
            + [reduction_interval_text(hier.loc[(model, rate), f"reduction_vs_{b}"],
                                       reduction_half[b].get((model, "hierarchical", rate), math.nan))
               for b in baselines]
            for model, rate in times.index]
    rate = run.rates_mbps[0]
    per_method = r[r.uplink_mbps == rate]
    method_rows = [[row.model, label(row.method), bytes_text(row.bytes_up), bytes_text(row.raw_bytes_sent),
                    bytes_text(row.bytes_down), percent_text(row.final_accuracy),
                    percent_text(row.early_exit_accuracy)] for row in per_method.itertuples()]
    replicated = (f" Each value is the mean over {n} replications (results.csv has each) ± the half-width of its "
                  "95% confidence interval (Student t; summary.csv; pp: percentage points)." if n > 1 else "")
    means = f" (means over {n} replications)" if n > 1 else ""
    return [("h2", "Results"),
            ("p", ("Simulated training time per method (hierarchical's reduction: +29% = 29% less time than the "
                   "baseline). `results.csv` beside this report is the machine-readable truth, with every column."
                   + replicated)),
            ("table", header, rows),
            ("p", (f"Data and accuracy per method at {rate:g} Mbit/s{means} (accuracy from the real training run "
                   "described above)." if run.scenario["accuracy"].get("trained") else
                   f"Data per method at {rate:g} Mbit/s{means} (no accuracy: this run did not train).")),
            ("table", ["model", "method", "sent", "of which raw data", "received", "final accuracy",
                       "early exit (edge alone)"], method_rows)]


def trace_text(path: str, scales: list) -> str:
    """'TMobile-UMTS-driving.up: 0.94 Mbit/s on average' (the file read again for its mean)."""
    try:
        trace = load_trace(path)
    except UserError:
        return f"{Path(path).name} (the file is no longer at {path})"
    scaled = f", capacity x {', '.join(f'{v:g}' for v in scales)}" if list(scales) != [1.0] else ""
    return f"{trace.name}: {trace.mean_mbps:.2f} Mbit/s on average over its {trace.period_s:.0f} s{scaled}"


def count_text(batches: float) -> str:
    """A mean number of batches: '74.3', or '100' when whole."""
    return f"{batches:,.1f}" if batches % 1 else f"{batches:,.0f}"


def offset_text(run: RunData, offset) -> str:
    """Where in the traces the runs start: fixed, or each replication's offset at the lowest rate."""
    if offset != "random":
        return f"{offset:g} s into the trace"
    runs = run.runs if run.runs is not None else run.results
    first = runs[runs.uplink_mbps == run.rates_mbps[0]].drop_duplicates("replication")
    offsets = [f"{r.replication} at {r.trace_offset_s:.0f} s" for r in first.head(MAX_OFFSETS_LISTED).itertuples()]
    offsets[0] = f"replication {offsets[0]}"
    more = ", ..." if len(first) > MAX_OFFSETS_LISTED else ""
    return f"random, drawn per replication (at {run.rates_mbps[0]:g} Mbit/s: {', '.join(offsets)}{more})"


MAX_OFFSETS_LISTED = 10
POLICY_TEXT = {"block": "block: the edge waits while the uplink buffer is full",
               "drop_oldest": "drop_oldest: when the uplink buffer is full, hierarchical training's edge discards "
                              "the oldest waiting feature batch and goes on (the cloud never trains it)",
               "drop_newest": "drop_newest: when the uplink buffer is full, hierarchical training's edge discards "
                              "the feature batch it has just computed and goes on (the cloud never trains it)"}


def network_blocks(run: RunData) -> list:
    """The cellular link (README, "Cellular links"): traces, outages, buffer policy, and per method
    the batches the uplink dropped and the cloud trained (means over the replications)."""
    n = run.scenario["network"]
    policy = n.get("uplink_buffer_policy", "block")
    if not (run.shaped_links or n.get("outage_model") or policy != "block"):
        return []
    rows = [[f"{link} trace", trace_text(n[f"{link}_trace"], n.get("trace_scale", [1.0]))]
            for link in ("uplink", "downlink") if n.get(f"{link}_trace")]
    if n.get("uplink_trace") or n.get("downlink_trace"):
        rows.append(["trace start", offset_text(run, n.get("trace_offset_s", 0.0))])
    outages = "; ".join(f"{w['start_s']:g}-{w['start_s'] + w['duration_s']:g} s" for w in n.get("outages") or [])
    if outages:
        rows.append(["outages (both links)", outages])
    if n.get("outage_model"):
        model = n["outage_model"]
        rows.append(["random outages", (f"up {model['mean_up_s']:g} s, down {model['mean_down_s']:g} s on average "
                                        "(drawn per replication)")])
    rows.append(["uplink buffer", f"{n['uplink_buffer_batches']} batches; {POLICY_TEXT.get(policy, policy)}"])
    first = " These are the first setting's; the Sweep section lists what varies." if run.sweep is not None else ""
    intro = f"The links follow measured traces, outages or a buffer policy (README, \"Cellular links\").{first}"
    blocks = [("h2", "Network"), ("p", intro), ("table", ["", "setting"], rows)]
    r = run.results
    if {"batches_dropped", "cloud_batches_trained"} <= set(r.columns):
        dropped, trained = half_widths(run, "batches_dropped"), half_widths(run, "cloud_batches_trained")
        w = run.scenario["workload"]
        batches = w["epochs"] * w["batches_per_epoch"]
        table = [[t.model, f"{t.uplink_mbps:g}", label(t.method),
                  interval_text(t.batches_dropped, dropped.get((t.model, t.method, t.uplink_mbps), math.nan),
                                count_text),
                  interval_text(t.cloud_batches_trained, trained.get((t.model, t.method, t.uplink_mbps), math.nan),
                                count_text)] for t in r.itertuples()]
        n_text = (f"means over {run.replications} replications ± the half-width of their 95% confidence interval"
                  if run.replications > 1 else "one run each")
        blocks += [("p", (f"Batches per method ({n_text}) of the {batches:,} the edge trains: those the uplink "
                          "dropped, and those the cloud trained.")),
                   ("table", ["model", "uplink (Mbit/s)", "method", "batches dropped", "trained by the cloud"],
                    table)]
    return blocks


def split_blocks(run: RunData) -> list:
    """The separation point at each model and rate, its edge memory and why it was chosen."""
    if run.split_points is None:
        return []
    table, rows = run.split_points, []
    methods = [m for m in ("hierarchical", "split_learning") if m in run.methods]
    columns = {"hierarchical": ("chosen", "edge_memory_mib", "reason"),
               "split_learning": ("split_learning_chosen", "split_learning_edge_memory_mib", "split_learning_reason")}
    for method in methods:
        chosen, memory, reason = columns[method]
        if chosen not in table:  # a folder written before each method had its own point
            continue
        for row in table[table[chosen].fillna(False).astype(bool)].to_dict("records"):
            mib = row.get(memory, math.nan)
            rows.append([row["model"], f"{row['uplink_mbps']:g}", label(method), row["split"],
                         "-" if not isinstance(mib, float) or not math.isfinite(mib) else f"{mib:.1f} MiB",
                         row.get(reason, "")])
    return [("h2", "Separation points"),
            ("p", "The point each method used at each bit rate (each is chosen on its own). `split_points.csv` "
                  "has every point's time, memory, bytes and accuracy."),
            ("table", ["model", "uplink (Mbit/s)", "method", "split after", "edge memory", "why"], rows)]


def sweep_blocks(run: RunData) -> list:
    """The swept keys and, where the scenario has targets, the published figures against the simulator."""
    blocks = []
    if run.sweep is not None:
        sweep = run.scenario.get("sweep", {})
        rows = [[key, ", ".join(map(str, values))] for key, values in sweep.get("values", {}).items()]
        blocks += [("h2", "Sweep"),
                   ("p", f"{sweep.get('settings', '?')} settings: every combination of the values below, each at "
                         "every uplink rate. The tables and the other figures show the first setting; the sweep "
                         "figures show them all (results.csv holds every setting, one column per swept key)."),
                   ("table", ["swept key", "values"], rows)]
    if run.targets is not None and not run.targets.empty:
        rows = [[t.target if "target" in run.targets else t.model, t.metric, f"{t.target_value:g}",
                 f"{t.tolerance:g}", "-" if math.isnan(t.simulated_value) else f"{t.simulated_value:.3f}",
                 f"{t.settings_within}", t.verdict, t.reason, t.scenario_file if isinstance(t.scenario_file, str)
                 else ""] for t in run.targets.itertuples()]
        blocks += [("h2", "Targets"),
                   ("p", "Published figures checked against the simulator (targets.csv). Each best match is written "
                         "as a stand-alone scenario: `simulate FILE` reruns it."),
                   ("table", ["target", "metric", "published", "tolerance", "simulated (best)", "settings within",
                              "verdict", "why", "rerun"], rows)]
    return blocks


def report_blocks(run: RunData, figures: list[ReportFigure]) -> list:
    blocks = [("h1", f"{run.scenario['name']}: edge-cloud training comparison")]
    blocks += (scenario_blocks(run) + network_blocks(run) + sweep_blocks(run) + results_blocks(run)
               + split_blocks(run) + traffic_blocks(run) + [("h2", "Figures")])
    for number, figure in enumerate(figures, start=1):
        blocks.append(("h3", f"{number}. {figure.title}"))
        blocks.append(("figure", figure) if figure.png is not None else ("note", figure.note))
    blocks.append(("p", ("Drawn from results.csv, summary.csv, training.csv, split_points.csv, trace.csv, "
                         "backlog.csv, epochs.csv, stalls.csv and scenario.json (those the run wrote); "
                         f"`simulate report {run.folder}` redraws it without simulating again.")))
    return blocks
