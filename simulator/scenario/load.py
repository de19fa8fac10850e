"""Loading a scenario file (README, "Scenario keys"): read the YAML, build and validate the
scenario with its profiles (`build`), then check its sweep and targets (`grid`). Errors are
one line naming the file and the key.
"""
from pathlib import Path

from ..core.typed import read_yaml
from .build import scenario_from_data
from .config import Scenario
from .grid import check_study


def load_scenario(path: str | Path) -> Scenario:
    """Read, type-check and validate a scenario, loading every profile it names; its sweep
    and targets are checked too."""
    scenario = scenario_from_data(read_yaml(path, "scenario"), str(path))
    check_study(scenario)
    return scenario
