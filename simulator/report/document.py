"""report.md and report.html: the scenario summary, the results tables and the figures.

Both are rendered from one list of blocks, so they always say the same thing: report.md
links the PNG files beside it, report.html embeds the same PNG bytes as data URIs and opens
from disk with no server.
"""
import base64
import html
import math

from ..core.text import bytes_text, duration_text, percent_text, reduction_text
from .data import RunData
from .style import ReportFigure, label

# A block is ("h1" | "h2" | "h3" | "p" | "note", text), ("table", header, rows) or ("figure", ReportFigure).


def scenario_blocks(run: RunData) -> list:
    s, w, n, a = run.scenario, run.scenario["workload"], run.scenario["network"], run.scenario["accuracy"]
    downlink = (f"{n['downlink_mbps']:g} Mbit/s" if n.get("downlink_mbps") is not None
                else f"{n.get('downlink_ratio', 1):g} x uplink")
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
    return (f"real training of {a.get('dataset') or w['dataset']}, width {a['width']:g}, {a['epochs']} epochs, "
            f"{subset(a['train_subset'])} training / {subset(a['test_subset'])} test samples, "
            f"{a['optimizer']} lr {a['lr']:g}, on {a['device']}; {a.get('proxy') or 'no proxy: the workload itself'}")


def results_blocks(run: RunData) -> list:
    r, methods = run.results, run.methods
    times = r.pivot_table(index=["model", "uplink_mbps"], columns="method", values="total_time_s", sort=False)
    hier = r[r.method == "hierarchical"].set_index(["model", "uplink_mbps"])
    baselines = [b for b in ("split_learning", "full_cloud") if b in methods and "hierarchical" in methods]
    header = ["model", "uplink (Mbit/s)"] + [label(m) for m in methods] + [f"hier. vs {label(b)}" for b in baselines]
    rows = [[model, f"{rate:g}"] + [duration_text(times.loc[(model, rate)].get(m, math.nan)) for m in methods]
            + [reduction_text(hier.loc[(model, rate), f"reduction_vs_{b}"]) for b in baselines]
            for model, rate in times.index]
    rate = run.rates_mbps[0]
    per_method = r[r.uplink_mbps == rate]
    method_rows = [[row.model, label(row.method), bytes_text(row.bytes_up), bytes_text(row.raw_bytes_sent),
                    bytes_text(row.bytes_down), percent_text(row.final_accuracy),
                    percent_text(row.early_exit_accuracy)] for row in per_method.itertuples()]
    return [("h2", "Results"),
            ("p", "Simulated training time per method (hierarchical's reduction: +29% = 29% less time than the "
                  "baseline). `results.csv` beside this report is the machine-readable truth, with every column."),
            ("table", header, rows),
            ("p", f"Data and accuracy per method at {rate:g} Mbit/s (accuracy from the real training run described "
                  "above)." if run.scenario["accuracy"].get("trained") else
                  f"Data per method at {rate:g} Mbit/s (no accuracy: this run did not train)."),
            ("table", ["model", "method", "sent", "of which raw data", "received", "final accuracy",
                       "early exit (edge alone)"], method_rows)]


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
                         "every uplink rate. The tables and the first seven figures show the first setting; the sweep "
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
    blocks += scenario_blocks(run) + sweep_blocks(run) + results_blocks(run) + split_blocks(run) + [("h2", "Figures")]
    for number, figure in enumerate(figures, start=1):
        blocks.append(("h3", f"{number}. {figure.title}"))
        blocks.append(("figure", figure) if figure.png is not None else ("note", figure.note))
    blocks.append(("p", "Drawn from results.csv, training.csv, split_points.csv, trace.csv, backlog.csv, epochs.csv "
                        "and scenario.json; "
                        f"`simulate report {run.folder}` redraws it without simulating again."))
    return blocks


def to_markdown(blocks: list) -> str:
    cell = lambda text: str(text).replace("|", "\\|")  # noqa: E731
    out = []
    for kind, *rest in blocks:
        if kind in ("h1", "h2", "h3"):
            out.append(f"{'#' * int(kind[1])} {rest[0]}")
        elif kind == "p" and rest[0]:
            out.append(rest[0])
        elif kind == "note":
            out.append(f"> {rest[0]}")
        elif kind == "table":
            header, rows = rest
            out.append("\n".join(["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
                                 + ["| " + " | ".join(map(cell, row)) + " |" for row in rows]))
        elif kind == "figure":
            figure = rest[0]
            out.append(f"![{figure.title}]({figure.file_name})\n\n*{figure.caption}*")
    return "\n\n".join(out) + "\n"


CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
       "table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}td,th{border:1px solid #ddd;"
       "padding:.25em .6em;text-align:left}th{background:#f4f4f4}img{max-width:100%}figcaption{color:#444;"
       "font-style:italic;margin:.3em 0 1.5em}.note{background:#fff8e0;padding:.5em 1em;border-left:4px solid #e6b800}"
       "code{background:#f4f4f4;padding:0 .2em}")


def inline(text: str) -> str:
    """HTML-escape, and render `code` spans as <code>."""
    parts = html.escape(str(text)).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def to_html(blocks: list) -> str:
    title = next(rest[0] for kind, *rest in blocks if kind == "h1")
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{html.escape(title)}</title>",
           f"<style>{CSS}</style></head><body>"]
    for kind, *rest in blocks:
        if kind in ("h1", "h2", "h3"):
            out.append(f"<{kind}>{inline(rest[0])}</{kind}>")
        elif kind == "p" and rest[0]:
            out.append(f"<p>{inline(rest[0])}</p>")
        elif kind == "note":
            out.append(f'<p class="note">{inline(rest[0])}</p>')
        elif kind == "table":
            header, rows = rest
            head = "".join(f"<th>{inline(h)}</th>" for h in header)
            body = "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in row) + "</tr>" for row in rows)
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif kind == "figure":
            figure = rest[0]
            data = base64.b64encode(figure.png).decode("ascii")
            out.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(figure.title)}" '
                       f'data-file="{html.escape(figure.file_name)}"><figcaption>{inline(figure.caption)}'
                       "</figcaption></figure>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"

