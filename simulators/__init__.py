"""Sensor and log simulators: rotating machines with progressing faults, realistic log text, ground truth.

The public API (see docs/simulators.md), imported lazily so that `forewarn --help` stays fast:

    load_scenario(path_or_name) -> Scenario          simulators.scenario
    Plant(scenario, seed, start=None)                simulators.plant
        .messages(duration_s) -> Iterator[Telemetry | LogRecord]
        .episodes() -> list[FaultEpisode]
    write_dataset(scenario, seed, duration_s, out_dir, ...) -> DatasetSummary   simulators.dataset_out
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "load_scenario": "simulators.scenario",
    "scenario_from_dict": "simulators.scenario",
    "Scenario": "simulators.scenario",
    "Plant": "simulators.plant",
    "write_dataset": "simulators.dataset_out",
    "DatasetSummary": "simulators.dataset_out",
    "ScenarioError": "simulators.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'simulators' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
