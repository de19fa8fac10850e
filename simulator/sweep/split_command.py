"""`simulate split SCENARIO.yaml`: the per-point table, the choice at every bit rate and why.

Writes `<output_dir>/split_points.csv` (`split_table.SPLIT_COLUMNS`) and `fig_split.png`, each
whole or not at all, and prints, per model, a table of points x bit rates (the chosen point's
time marked with *) followed by one line per rate with the reason.
"""
from pathlib import Path

import pandas as pd

from ..core.errors import UserError
from ..core.executors import SERIAL, Executor
from ..core.files import atomic_write_text, check_writable
from ..core.text import duration_text, percent_text
from ..scenario.load import load_scenario
from ..training.runs import TrainingResults, proxy_note
from .runner import choices_text
from .split_table import SplitSearch, search_splits


def points_text(table: pd.DataFrame, model: str) -> str:
    """Rows: separation points; columns: memory, bytes/sample, accuracy, then time at each rate."""
    rows = table[table.model == model]
    first = rows.drop_duplicates("split").set_index("split")
    out = pd.DataFrame(index=first.index)
    out["edge MiB"] = first.edge_memory_mib.map(lambda v: "-" if pd.isna(v) else f"{v:.1f}")
    out["KB/sample up"] = (first.bytes_up_per_sample / 1e3).map(lambda v: f"{v:.2f}")
    out["exit acc"] = first.early_exit_accuracy.map(percent_text)
    out["final acc"] = first.final_accuracy.map(percent_text)
    out["drop"] = first.accuracy_drop.map(lambda v: "-" if pd.isna(v) else f"{100 * v:+.1f}")
    for rate, group in rows.groupby("uplink_mbps", sort=True):
        group = group.set_index("split")
        out[f"{rate:g} Mbit/s"] = [duration_text(t) + ("*" if c else "")
                                   for t, c in zip(group.hierarchical_time_s, group.chosen.astype(bool))]
    return out.to_string()


def run_split(path: str, progress: bool = True, train: bool = True, engine: str = "auto",
              executor: Executor = SERIAL) -> SplitSearch:
    """The per-point table of the scenario at `path`, its DES check through `engine`, and the
    training runs its accuracy check needs on `executor`; printed and written."""
    from ..report.split_figure import write_split_figure

    scenario = load_scenario(path)
    if scenario.sweep:
        raise UserError(f"{path}: simulate split compares the points of one setting, and this scenario sweeps "
                        f"{', '.join(scenario.sweep)}; run `simulate {path}` (split_points.csv holds every setting), "
                        "or remove the sweep section")
    folder = Path(scenario.output_dir)
    csv_path = folder / "split_points.csv"
    for path in (csv_path, folder / "fig_split.png"):
        check_writable(str(path))
    train = train and scenario.accuracy.enabled
    with executor:
        search = search_splits(scenario, TrainingResults(scenario, progress, executor=executor) if train else None,
                               engine=engine)
    budget = scenario.edge.memory_mib
    print(f"\n{scenario.name}: hierarchical training time (closed form) per separation point; * = chosen")
    accuracy = "unchecked"
    if train:
        accuracy = (f"max drop {100 * scenario.split_search.max_accuracy_drop:.1f} points vs full-cloud "
                    f"(split_search.max_accuracy_drop); {proxy_note(scenario) or 'trained on the workload itself'}")
    print(f"edge memory budget: {'none' if budget is None else f'{budget:g} MiB'} (edge.memory_mib); "
          f"accuracy: {accuracy}")
    for model in dict.fromkeys(search.table.model):
        print(f"\n{model}\n{points_text(search.table, model)}")
    print(f"\nchosen points:\n{choices_text(search, scenario.methods)}")
    chosen = search.table[search.table.chosen.astype(bool)]
    error = (chosen.des_time_s / chosen.hierarchical_time_s - 1).abs().max()
    print(f"\nDES check of the chosen points: largest |DES - closed form| / closed form = {error:.2e}")
    atomic_write_text(csv_path, search.table.to_csv(index=False, float_format="%.10g"))
    figure = write_split_figure(folder, search.table)
    print(f"wrote {csv_path} and {figure}")
    return search
