"""`forewarn simulate` and `forewarn replay`: simulated plants to MQTT or to a dataset directory."""

from __future__ import annotations

import json
import logging
import math
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from forewarn.logs import setup_logging
from forewarn.settings import load_settings
from simulators.config import SimulatorSettings
from simulators.scenario import Scenario, load_scenario, parse_duration

log = logging.getLogger("simulators")


class DurationType(click.ParamType):
    """Seconds, or a number with a unit: 90s, 20m, 6h, 2d."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if seconds <= 0:
            self.fail("must be positive", param, ctx)
        return seconds


def _count(count: int, word: str) -> str:
    """'1 asset', '2,000 assets'."""
    return f"{count:,} {word if count == 1 else word + 's'}"


def _start_time(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is neither epoch seconds nor ISO 8601", param_hint="--start") from exc


def build_scenario(
    settings: SimulatorSettings,
    scenario: str | None,
    assets: int | None,
    duration: float | None,
    noise: float | None,
    phrasing: str | None = None,
) -> Scenario:
    """The scenario as the command line shapes it: more or fewer assets, a horizon, a noise level, a batch size."""
    plant = load_scenario(scenario or settings.simulator.scenario)
    if duration is not None and math.isfinite(duration):
        plant = plant.with_horizon(duration)
    if assets is not None:
        plant = plant.with_assets(assets)
    if noise is not None:
        plant = plant.with_noise(noise)
    if phrasing is not None:
        plant = plant.with_phrasing(phrasing)
    if settings.simulator.batch_s is not None:
        plant = plant.with_batch(settings.simulator.batch_s)
    return plant


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT/SIGTERM, so a live run ends cleanly (flushing its client); handlers restored after."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@click.command()
@click.option("--scenario", help="scenario TOML file or shipped name: demo, test, plant200 (default: settings)")
@click.option("--assets", type=click.IntRange(1, 5000), help="exactly N assets: explicit ones, then generated with random faults")
@click.option(
    "--duration",
    type=DurationType(),
    help="source time to simulate: seconds or 90s/20m/6h/2d (live: forever; --out: simulator.out_duration_s)",
)
@click.option(
    "--speed", type=click.FloatRange(min=0), help="live: source seconds per wall second (60 = an hour a minute; 0 = max)"
)
@click.option("--seed", type=int, help="random seed (default: settings, 0)")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="write a dataset directory instead")
@click.option(
    "--start", "start", help="source time of the first sample: ISO 8601 or epoch seconds (default: scenario's, else now)"
)
@click.option("--noise", type=click.FloatRange(0, 20), help="multiplier on sensor noise")
@click.option(
    "--phrasing",
    type=click.Choice(["all", "train", "holdout", "heldout"]),
    help="log wordings: all, one of two disjoint halves (train/holdout), or the separately written heldout set",
)
@click.option("--split", default="", help="--out: split name recorded in meta.json (train, val, test...)")
@click.option("--overwrite", is_flag=True, help="--out: replace an existing dataset")
@click.option("--json", "as_json", is_flag=True, help="print one JSON summary object on stdout")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), help="TOML settings file")
def simulate(
    scenario: str | None,
    assets: int | None,
    duration: float | None,
    speed: float | None,
    seed: int | None,
    out_dir: Path | None,
    start: str | None,
    noise: float | None,
    phrasing: str | None,
    split: str,
    overwrite: bool,
    as_json: bool,
    config_file: Path | None,
) -> None:
    """Simulate a plant: publish its telemetry and logs live to MQTT, or write a dataset directory with --out.

    Machines of five types (centrifugal pumps, induction motors, fans, compressors,
    gearboxes) run through shifts, starts, stops and setpoint changes; faults progress from
    onset to failure; controllers, condition monitors and operators write log lines. The
    same scenario, seed and start always give the same data.
    """
    overrides: dict[str, Any] = {}
    settings = load_settings(SimulatorSettings, config_file, **overrides)
    setup_logging(settings.logging)
    seed = settings.simulator.seed if seed is None else seed
    begin = _start_time(start)
    if out_dir is not None:
        from forewarn.dataset import MESSAGES
        from simulators.dataset_out import write_dataset

        if not overwrite and (out_dir / MESSAGES).exists():
            raise click.ClickException(f"{out_dir} already holds a dataset: add --overwrite to replace it")

        length = duration or settings.simulator.out_duration_s
        plant_scenario = build_scenario(settings, scenario, assets, length, noise, phrasing)
        summary = write_dataset(
            plant_scenario,
            seed,
            length,
            out_dir,
            start=begin,
            split=split,
            overwrite=overwrite,
            progress=lambda f: log.info("%.0f%% done", 100 * f),
        )
        result = {
            "out": str(summary.directory),
            "assets": summary.assets,
            "messages": summary.messages,
            "episodes": summary.episodes,
            "asset_days": round(summary.asset_days, 3),
            "seconds": round(summary.seconds, 2),
        }
        click.echo(
            json.dumps(result)
            if as_json
            else f"wrote {_count(summary.messages, 'message')} and {_count(summary.episodes, 'fault episode')} for "
            f"{_count(summary.assets, 'asset')} ({summary.asset_days:.2f} asset-days) to {summary.directory} in "
            f"{summary.seconds:.1f} s"
        )
        return
    from simulators.plant import Plant
    from simulators.publish import Publisher, publish_stream

    plant_scenario = build_scenario(settings, scenario, assets, duration, noise, phrasing)
    plant = Plant(plant_scenario, seed=seed, start=begin)
    pace = settings.simulator.speed if speed is None else speed
    log.info(
        "simulating %d assets of scenario %s (seed %d) at speed %s to %s",
        len(plant),
        plant_scenario.name,
        seed,
        pace or "max",
        settings.mqtt.url,
    )
    began = time.monotonic()
    with _stop_on_signals() as stop, Publisher(settings) as publisher:
        stats = publish_stream(plant.messages(duration or math.inf), publisher, pace, stop, settings.simulator.stats_every_s)
    result = {
        "assets": len(plant),
        "published": stats.published,
        "dropped": stats.dropped,
        "samples": stats.samples,
        "source_s": round(stats.source_s, 1),
        "seconds": round(time.monotonic() - began, 2),
        "episodes": [e.model_dump(mode="json") for e in plant.episodes()],
    }
    click.echo(
        json.dumps(result)
        if as_json
        else f"published {_count(stats.published, 'message')} ({_count(stats.samples, 'sample')}, {stats.dropped} dropped) "
        f"covering {stats.source_s:.0f} s of source time for {_count(len(plant), 'asset')}"
    )


@click.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--speed", type=click.FloatRange(min=0), help="source seconds per wall second (default: settings; 0 = max)")
@click.option("--retime", is_flag=True, help="shift timestamps so the dataset starts now")
@click.option("--json", "as_json", is_flag=True, help="print one JSON summary object on stdout")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), help="TOML settings file")
def replay(directory: Path, speed: float | None, retime: bool, as_json: bool, config_file: Path | None) -> None:
    """Publish a dataset directory's messages to MQTT in source-time order, paced at --speed."""
    from simulators.publish import Publisher, publish_stream
    from simulators.replay import replay_messages

    settings = load_settings(SimulatorSettings, config_file)
    setup_logging(settings.logging)
    pace = settings.simulator.speed if speed is None else speed
    began = time.monotonic()
    with _stop_on_signals() as stop, Publisher(settings) as publisher:
        stats = publish_stream(replay_messages(directory, retime=retime), publisher, pace, stop, settings.simulator.stats_every_s)
    result = {
        "published": stats.published,
        "dropped": stats.dropped,
        "samples": stats.samples,
        "source_s": round(stats.source_s, 1),
        "seconds": round(time.monotonic() - began, 2),
    }
    click.echo(
        json.dumps(result)
        if as_json
        else f"replayed {_count(stats.published, 'message')} ({stats.dropped} dropped) covering {stats.source_s:.0f} s "
        "of source time"
    )
