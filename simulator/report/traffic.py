"""Traffic against the raw data: does cutting the network send less than the raw samples, and
at which uplink rates does hierarchical training beat full-cloud on time (README, "Reports").

Per model and codec (and any other swept key the answer depends on):

    traffic_table(run)  from split_points.csv: raw_bytes_per_sample (the uint8 sample + label
                        full-cloud uploads), the points whose bytes_up_per_sample (the encoded
                        cut tensor + label a split method uploads) is below it, and the point
                        with the least traffic
    faster_table(run)   from results.csv: the swept rates at which hierarchical's total_time_s
                        is below full-cloud's (replication means), hierarchical's point there,
                        and its best reduction

In a sweep both read every setting (`RunData.sweep_split_points`, `RunData.sweep`); the codec is
the `network.codec` column where it is swept, else the scenario's. A swept key other than the
codec gets a column only where the table's answer changes with it (`fold_keys`).
"""
import math

import pandas as pd

from ..core.text import bytes_text, rate_text, reduction_text
from .data import RunData
from .style import label

TITLE = "Traffic against the raw data"
CODEC_KEY = "network.codec"
MAX_ROWS = 60  # per table; a larger sweep is in the CSVs
MAX_NAMED_POINTS = 4  # more points below raw than this are counted, the first named
POINT_COLUMNS = ("bytes_up_per_sample", "raw_bytes_per_sample", "fits_memory")  # what a point's row says


def codec_column(table: pd.DataFrame, run: RunData) -> pd.Series:
    """Each row's codec: the swept column, else the scenario's."""
    if CODEC_KEY in table.columns:
        return table[CODEC_KEY].astype(str)
    return pd.Series(run.scenario["network"]["codec"], index=table.index, dtype=str)


def other_keys(run: RunData) -> list[str]:
    return [key for key in run.sweep_keys if key != CODEC_KEY]


def missing_column(table: pd.DataFrame, run: RunData, file_name: str, columns: list[str]) -> str:
    """A one-line reason when `table` lacks a column the section reads ('' when it has them all)."""
    missing = [c for c in [*columns, *run.sweep_keys] if c not in table.columns]
    return (f"Not shown: {file_name} has no column {missing[0]!r} (written by an older version; run the scenario "
            "again)." if missing else "")


def traffic_points(run: RunData, shown: tuple[str, ...] = POINT_COLUMNS) -> tuple[pd.DataFrame | None, list[str], str]:
    """Every point's bytes per sample, once per model, codec and the swept keys that change a
    `shown` column (rows alike but for another key are one): [setting], model, codec, those
    keys, split, bytes_up_per_sample, raw_bytes_per_sample, fits_memory, in network order; the
    keys kept; or None and why. Bytes do not depend on the rate: one rate's rows stand for all."""
    points = run.sweep_split_points if run.sweep_split_points is not None else run.split_points
    if points is None or points.empty:
        return None, [], "Not shown: this run folder has no split_points.csv."
    reason = missing_column(points, run, "split_points.csv", ["bytes_up_per_sample", "raw_bytes_per_sample"])
    if reason:
        return None, [], reason
    setting = ["setting"] if "setting" in points.columns else []
    points = points.assign(codec=codec_column(points, run)).drop_duplicates([*setting, "model", "split"])
    points, kept = fold_keys(points, other_keys(run), list(shown), within=("split",))
    columns = ["model", "codec", *kept, "split", *POINT_COLUMNS]
    return points[setting + columns], kept, ""


def groups(table: pd.DataFrame, keys: list[str]) -> list[tuple[dict, pd.DataFrame]]:
    """(model, codec and `keys` values, rows) per model and setting: models in the table's
    order, each model's settings in grid order."""
    rank = {model: i for i, model in enumerate(dict.fromkeys(table.model))}
    table = table.sort_values("model", key=lambda models: models.map(rank), kind="stable")
    by = ["model", "setting"] if "setting" in table.columns else ["model"]
    return [({"model": rows.model.iloc[0], **rows.iloc[0][["codec", *keys]].to_dict()}, rows)
            for _, rows in table.groupby(by, sort=False)]


def fold_keys(table: pd.DataFrame, keys: list[str], shown: list[str],
              within: tuple[str, ...] = ()) -> tuple[pd.DataFrame, list[str]]:
    """`table` without the rows of the swept `keys` its `shown` columns do not depend on: a key
    goes when the rows that differ only in it (at the same model, codec, other keys and `within`
    columns) say the same thing; the first of them stays. Returns the rows and the keys kept."""
    kept = list(keys)
    for key in keys:
        others = ["model", "codec", *(k for k in kept if k != key), *within]
        distinct = table.drop_duplicates([*others, *shown])
        if not distinct.duplicated(others).any():
            kept.remove(key)
            table = distinct
    return table.reset_index(drop=True), kept


def below_text(rows: pd.DataFrame) -> str:
    """The points whose traffic is below the raw sample's: 'none of 5', 'all 5', '2 of 5: stage4, stage5',
    or '9 of 17, the first block_8'."""
    below = list(rows.split[rows.bytes_up_per_sample < rows.raw_bytes_per_sample])
    total = len(rows)
    if not below:
        return f"none of {total}"
    if len(below) == total:
        return f"all {total}"
    if len(below) <= MAX_NAMED_POINTS:
        return f"{len(below)} of {total}: {', '.join(below)}"
    return f"{len(below)} of {total}, the first {below[0]}"


def least_text(rows: pd.DataFrame) -> str:
    """The point with the least traffic (the first on ties): 'stage5: 517 B (0.66x raw)'."""
    best = rows.loc[rows.bytes_up_per_sample.idxmin()]
    ratio = best.bytes_up_per_sample / best.raw_bytes_per_sample
    over = "; over the edge memory budget" if best.fits_memory in (False, "False") else ""
    return f"{best.split}: {bytes_text(best.bytes_up_per_sample)} ({ratio:.3g}x raw{over})"


def traffic_table(run: RunData) -> tuple[pd.DataFrame | None, list[str], str]:
    """Q1, one row per model x codec (x swept keys that change it): raw, below, least; the keys
    kept; or None and why."""
    points, kept, reason = traffic_points(run)
    if points is None:
        return None, [], reason
    rows = [{**values, "raw": bytes_text(part.raw_bytes_per_sample.iloc[0]), "below": below_text(part),
             "least": least_text(part)} for values, part in groups(points, kept)]
    return pd.DataFrame(rows), kept, ""


def runs_text(selected: list[float], rates: list[float]) -> str:
    """`selected` as runs of consecutive swept `rates`: '0.5-2, 10 Mbit/s'."""
    runs, index = [], {rate: i for i, rate in enumerate(sorted(rates))}
    for rate in sorted(selected):
        if runs and index[rate] == index[runs[-1][-1]] + 1:
            runs[-1].append(rate)
        else:
            runs.append([rate])
    return ", ".join(f"{r[0]:g}" if len(r) == 1 else f"{r[0]:g}-{r[-1]:g}" for r in runs) + " Mbit/s"


def ranges_text(selected: list[float], rates: list[float]) -> str:
    """'none', 'all', or the runs of consecutive rates ('0.5-2, 10 Mbit/s')."""
    if not selected:
        return "none"
    return "all" if len(selected) == len(rates) else runs_text(selected, rates)


def points_text(faster: pd.DataFrame, rates: list[float]) -> str:
    """Hierarchical's point at the rates where it is faster: 'stage3', or 'stage3 (0.5-1 Mbit/s),
    stage4 (2 Mbit/s)'; '-' at none."""
    if faster.empty:
        return "-"
    splits = faster.split.fillna("").astype(str)
    names = list(dict.fromkeys(splits))
    if len(names) == 1:
        return names[0]
    return ", ".join(f"{name} ({runs_text(list(faster.uplink_mbps[splits == name]), rates)})" for name in names)


def faster_table(run: RunData) -> tuple[pd.DataFrame | None, list[str], str]:
    """Q2, one row per model x codec (x swept keys that change it): the rates at which hierarchical
    is faster than full-cloud, its point there, its best reduction; the keys kept; or None and why."""
    if not {"full_cloud", "hierarchical"} <= set(run.methods):
        return None, [], "Not shown: this run did not simulate both full-cloud and hierarchical training."
    results = run.sweep if run.sweep is not None else run.results
    reason = missing_column(results, run, "results.csv", ["split"])
    if reason:
        return None, [], reason
    results = results.assign(codec=codec_column(results, run))
    rows = []
    for values, part in groups(results, other_keys(run)):
        rates = sorted(set(part.uplink_mbps))
        hier = part[part.method == "hierarchical"].set_index("uplink_mbps")
        full = part[part.method == "full_cloud"].set_index("uplink_mbps").total_time_s
        reduction = (1 - hier.total_time_s / full.reindex(hier.index)).dropna()
        faster = hier.loc[reduction.index[reduction > 0]].reset_index()
        best = reduction.idxmax() if not reduction.empty else math.nan
        rows.append({**values, "faster_at": ranges_text(list(faster.uplink_mbps), rates),
                     "point": points_text(faster, rates),
                     "best": "-" if reduction.empty else f"{reduction_text(reduction[best])} at {rate_text(best)}"})
    shown = ["faster_at", "point", "best"]
    table, kept = fold_keys(pd.DataFrame(rows), other_keys(run), shown)
    return table[["model", "codec", *kept, *shown]], kept, ""


def capped(rows: list[list], what: str) -> tuple[list[list], str]:
    """At most MAX_ROWS rows, and a sentence saying where the rest are."""
    if len(rows) <= MAX_ROWS:
        return rows, ""
    return rows[:MAX_ROWS], f" The first {MAX_ROWS} of {len(rows):,} rows are shown; {what} has them all."


def traffic_blocks(run: RunData) -> list:
    """The section: the per-sample traffic table (Q1) and the faster-rates table (Q2), each
    replaced by a one-line note where the run lacks its data."""
    upload = run.scenario.get("full_cloud", {}).get("raw_upload", "once").replace("_", " ")
    blocks = [("h2", TITLE),
              ("p", ("Per sample, a split method (hierarchical training, split learning) uploads the cut tensor, "
                     "encoded with the link codec, and the label, at every epoch; full-cloud uploads the raw uint8 "
                     f"sample and its label ({upload} in this run). `raw_bytes_per_sample` and "
                     "`bytes_up_per_sample` in `split_points.csv` hold both."))]
    table, kept, reason = traffic_table(run)
    if table is None:
        blocks.append(("note", reason))
    else:
        rows, more = capped(table.values.tolist(), "split_points.csv")
        blocks += [("p", ("Where a split method sends less than the raw data, per model and codec: the points "
                          "(in network order) whose encoded tensor and label are smaller than the raw sample and "
                          f"label, and the point with the least traffic.{more}")),
                   ("table", ["model", "codec", *kept, "raw sample + label", "points sending less",
                              "least traffic"], rows)]
    table, kept, reason = faster_table(run)
    if table is None:
        blocks.append(("note", reason))
    else:
        rows, more = capped(table.values.tolist(), "results.csv")
        blocks += [("p", (f"Where {label('hierarchical')} training takes less time than {label('full_cloud')}, "
                          "per model and codec: the swept uplink rates at which its total time is below "
                          "full-cloud's, the point it trains at there, and its largest reduction over all rates, "
                          f"at the rate it is reached (+29% = 29% less time; 3.1x longer where it is slower).{more}")),
                   ("table", ["model", "codec", *kept, "hierarchical faster at", "its point there",
                              "best vs full-cloud"], rows)]
    return blocks
