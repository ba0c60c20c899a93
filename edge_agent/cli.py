"""`forewarn edge`: the gateway daemon and offline scoring.

Settings are built once here with ``load_settings`` (flags > FOREWARN_* environment >
TOML file > defaults) and passed down; nothing below reads the environment.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import click

from edge_agent.config import EdgeSettings
from forewarn.errors import ForewarnError
from forewarn.logs import setup_logging
from forewarn.progress import Progress
from forewarn.settings import load_settings

_CONFIG = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML settings file (see forewarn-edge.example.toml)",
)


@click.group()
def edge() -> None:
    """The gateway daemon: MQTT sensor streams and logs in, fault predictions out."""


@edge.command("run")
@_CONFIG
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="where the outbox lives (overrides FOREWARN_STATE_DIR and the file's state_dir)",
)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    help="overrides FOREWARN_LOGGING_LEVEL and the file's [logging] level",
)
def run(config_file: Path | None, state_dir: Path | None, log_level: str | None) -> None:
    """Run the gateway daemon until SIGTERM or SIGINT.

    Subscribes to the site's telemetry and log topics, scores every asset's windows with
    the model bundle, stores predictions in a disk outbox and forwards them to Kafka
    (and MQTT). Starts without an uplink; Kafka and MQTT are retried in the background.
    """
    settings = _settings(config_file, state_dir=state_dir, log_level=log_level)
    setup_logging(settings.logging)
    if settings.logging.level != "DEBUG":
        # aiokafka logs every failed reconnect at ERROR; the publisher reports an outage once instead.
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        asyncio.run(_serve(settings))
    except ForewarnError as exc:
        raise click.ClickException(str(exc)) from exc


async def _serve(settings: EdgeSettings) -> None:
    from edge_agent.daemon import EdgeDaemon

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await EdgeDaemon(settings).run(stop)


@edge.command("score")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--model",
    "model",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="model bundle (default: the shipped one)",
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSONL file of FaultPrediction, one per window",
)
@click.option("--batch-size", type=click.IntRange(1, 4096), help="windows per inference call (default: edge.batch_size)")
@click.option("--threads", type=click.IntRange(1, 64), help="ONNX Runtime threads (default: edge.ort_threads)")
@click.option("--json", "as_json", is_flag=True, help="print the run's summary as one JSON object on stdout")
@click.option("--strict", is_flag=True, help="abort at the first bad line of messages.jsonl (default: skip and count it)")
@_CONFIG
def score(
    directory: Path,
    model: Path | None,
    out: Path,
    batch_size: int | None,
    threads: int | None,
    as_json: bool,
    strict: bool,
    config_file: Path | None,
) -> None:
    """Score a dataset directory offline through the daemon's own windowing and inference.

    Writes one FaultPrediction per window, deterministically: the same directory, bundle
    and batch size give the same bytes (produced_at is the window's end and latency_ms
    is 0; the measured model time is in the summary). Shows its progress on stderr; a bad
    line of messages.jsonl is skipped and reported with its line number (--strict aborts).
    """
    from edge_agent.infer import Scorer
    from edge_agent.score import score_directory

    settings = _settings(config_file)
    edge_settings = settings.edge
    scorer = Scorer(
        model or settings.model_path(),
        edge_settings.gateway_id,
        threads or edge_settings.ort_threads,
        batch_size or edge_settings.batch_size,
    )
    progress = _Progress()
    try:
        scorer.load()
        summary = score_directory(directory, out, scorer, strict=strict, progress=progress)
    except ForewarnError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        progress.close()
    if as_json:
        click.echo(json.dumps(summary.as_dict()))
    else:
        click.echo(summary.describe(out))


class _Progress(Progress):
    """edge score's progress: the share of messages.jsonl read, with the windows scored so far."""

    def __init__(self) -> None:
        super().__init__("edge score", unit="B")

    def line(self, done: int, total: int, note: str) -> str:
        share = 100.0 * done / total if total else 100.0
        return f"edge score: {share:.0f}% of messages.jsonl read, {note} scored"


def _settings(config_file: Path | None, state_dir: Path | None = None, log_level: str | None = None) -> EdgeSettings:
    """Flags > FOREWARN_* environment > TOML file > defaults."""
    overrides: dict[str, Any] = {}
    if state_dir is not None:
        overrides["state_dir"] = state_dir
    try:
        settings = load_settings(EdgeSettings, config_file, **overrides)
    except ForewarnError as exc:
        raise click.ClickException(str(exc)) from exc
    if log_level is not None:
        settings.logging = settings.logging.model_copy(update={"level": log_level.upper()})
    return settings


if __name__ == "__main__":
    sys.exit(edge())
