"""Write a simulated run as a dataset directory (DESIGN.md): messages.jsonl, labels.jsonl, meta.json.

Generation runs as fast as the machine allows (no pacing), through the same ``Plant`` that
publishes live, so a model trained on a written dataset sees exactly what the edge sees.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from forewarn.dataset import DatasetWriter
from simulators.plant import Plant
from simulators.scenario import Scenario


@dataclass(frozen=True)
class DatasetSummary:
    """What a write produced, for the CLI and the benchmarks."""

    directory: Path
    assets: int
    messages: int
    episodes: int
    duration_s: float
    seconds: float

    @property
    def asset_days(self) -> float:
        return self.assets * self.duration_s / 86400.0


def write_dataset(
    scenario: Scenario,
    seed: int,
    duration_s: float,
    out_dir: Path,
    *,
    start: float | None = None,
    split: str = "",
    overwrite: bool = False,
    progress: Callable[[float], None] | None = None,
) -> DatasetSummary:
    """Simulate ``duration_s`` seconds of ``scenario`` with ``seed`` and write it to ``out_dir``.

    ``start`` defaults to the scenario's start, else the wall clock. Ground truth covers the
    run: an episode that has not failed by its end has ``failure`` None. ``progress`` is called
    with the fraction done (0..1) about every simulated hour.
    """
    began = time.perf_counter()
    plant = Plant(scenario, seed=seed, start=start)
    end = plant.start + duration_s
    next_report = plant.start + 3600.0
    with DatasetWriter(Path(out_dir), plant.meta(split=split, end=end), overwrite=overwrite) as writer:
        write = writer.write
        for message in plant.messages(duration_s):
            write(message)
            if progress is not None and plant.now >= next_report:
                next_report += 3600.0
                progress((plant.now - plant.start) / duration_s)
        episodes = plant.episodes(until=plant.now)
        for episode in episodes:
            writer.label(episode)
        writer.meta = plant.meta(split=split, end=plant.now)
        count = writer.count
    return DatasetSummary(
        directory=Path(out_dir),
        assets=len(plant),
        messages=count,
        episodes=len(episodes),
        duration_s=plant.now - plant.start,
        seconds=time.perf_counter() - began,
    )
