"""`forewarn data import {cwru,cmapss,hdfs,csv} SRC --out DIR`: sources -> dataset directories.

Each importer module does the work; this only parses options and prints the report.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from forewarn.errors import ForewarnError
from forewarn.importers.common import Report

_SRC = click.Path(exists=True, path_type=Path)
_OUT = click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="dataset directory to write")
_FORCE = click.option("--force", is_flag=True, help="replace a dataset already at --out")
_JSON = click.option("--json", "as_json", is_flag=True, help="print the report as one JSON object")


@click.group()
def data() -> None:
    """Bring data in: public datasets and a plant's own exports -> dataset directories."""


@data.group("import")
def import_() -> None:
    """Write a dataset directory (messages.jsonl, labels.jsonl, meta.json) from a source.

    The result feeds `forewarn model train`, `model evaluate`, `edge score` and `replay`
    unchanged. Rows that cannot be used are counted and listed, never dropped silently.
    """


def _finish(report: Report, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.as_dict()))
    else:
        click.echo("\n".join(report.lines()))


def _run(fn: object, *args: object, **kwargs: object) -> Report:
    try:
        report = fn(*args, **kwargs)  # type: ignore[operator]
    except ForewarnError as exc:
        raise click.ClickException(str(exc)) from exc
    assert isinstance(report, Report)
    return report


@import_.command("cmapss")
@click.argument("src", type=_SRC)
@_OUT
@click.option(
    "--subset", type=click.Choice(["FD001", "FD002", "FD003", "FD004"], case_sensitive=False), default="FD001", show_default=True
)
@click.option("--cycle-s", type=float, default=3600.0, show_default=True, help="seconds one engine cycle stands for")
@click.option(
    "--onset-cycles",
    type=int,
    default=125,
    show_default=True,
    help="the degradation episode starts this many cycles before failure",
)
@click.option(
    "--split",
    type=click.Choice(["file", "normal-first"]),
    default="file",
    show_default=True,
    help="file: the files' own train/test; normal-first: train on the first --normal-cycles of 4 units in 5, "
    "unlabelled, test on every fifth unit's whole life (learning without labels)",
)
@click.option("--normal-cycles", type=int, default=50, show_default=True, help="normal-first: healthy cycles per unit")
@_FORCE
@_JSON
def cmapss(
    src: Path,
    out: Path,
    subset: str,
    cycle_s: float,
    onset_cycles: int,
    split: str,
    normal_cycles: int,
    force: bool,
    as_json: bool,
) -> None:
    """NASA C-MAPSS turbofan data in SRC -> OUT/train and OUT/test (true RUL in meta.json)."""
    from forewarn.importers.cmapss import import_cmapss

    report = _run(
        import_cmapss, src, out, subset=subset, cycle_s=cycle_s, onset_cycles=onset_cycles, overwrite=force,
        split=split, normal_cycles=normal_cycles,
    )  # fmt: skip
    _finish(report, as_json)


@data.command("rename")
@click.argument("src", type=_SRC)
@click.option(
    "--map", "map_file", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON object, plant channel -> bundle channel (`forewarn model map ... --out` writes one)",
)  # fmt: skip
@_OUT
@_FORCE
@_JSON
def rename(src: Path, map_file: Path, out: Path, force: bool, as_json: bool) -> None:
    """The dataset directory SRC with its channels renamed as the map says, into OUT."""
    from forewarn.importers.rename import read_mapping, rename_dataset

    _finish(_run(lambda: rename_dataset(src, out, read_mapping(map_file), overwrite=force)), as_json)


def _rate(value: str) -> tuple[str, float]:
    name, sep, hz = value.rpartition("=")
    try:
        if not sep or not name:
            raise ValueError(value)
        return name, float(hz)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not FILE=HZ (e.g. normal_0_97.mat=48000)") from exc


@import_.command("cwru")
@click.argument("src", type=_SRC)
@_OUT
@click.option(
    "--sensor",
    "sensors",
    multiple=True,
    type=click.Choice(["DE", "FE", "BA"], case_sensitive=False),
    default=("DE",),
    show_default=True,
    help="accelerometers to import: drive end, fan end, base plate (repeatable)",
)
@click.option(
    "--label-by",
    type=click.Choice(["location", "location_size"]),
    default="location",
    show_default=True,
    help="fault classes: the location (inner race, outer race, ball), or location and size",
)
@click.option(
    "--split",
    type=click.Choice(["none", "size", "time", "normal-first"]),
    default="none",
    show_default=True,
    help="none: one directory; size: OUT/train and OUT/test with no recording in both; "
    "time: OUT/train and OUT/test, each recording's last part in test; "
    "normal-first: OUT/train only the healthy recording's first part (for --unlabelled training), the rest in test",
)
@click.option(
    "--test-sizes",
    default="014",
    show_default=True,
    help="with --split size: fault sizes (mils, comma separated) held out for test",
)
@click.option(
    "--test-fraction",
    "--normal-test-fraction",
    "test_fraction",
    type=float,
    default=0.5,
    show_default=True,
    help="the last part of a recording that becomes a test asset (--split time: every recording; size: the healthy one)",
)
@click.option(
    "--rate", "rates", multiple=True, metavar="FILE=HZ", help="a recording's sampling rate, instead of checking it (repeatable)"
)
@click.option("--batch-s", type=float, default=0.5, show_default=True, help="seconds of samples per telemetry message")
@_FORCE
@_JSON
def cwru(
    src: Path,
    out: Path,
    sensors: tuple[str, ...],
    label_by: str,
    split: str,
    test_sizes: str,
    test_fraction: float,
    rates: tuple[str, ...],
    batch_s: float,
    force: bool,
    as_json: bool,
) -> None:
    """CWRU bearing recordings (.mat) in SRC -> OUT (or OUT/train, OUT/test), each recording's rate checked."""
    from forewarn.importers.cwru import import_cwru

    report = _run(
        import_cwru,
        src,
        out,
        sensors=sensors,
        label_by=label_by,
        split=split,
        test_sizes=tuple(s.strip() for s in test_sizes.split(",") if s.strip()),
        test_fraction=test_fraction,
        rates=dict(_rate(r) for r in rates),
        batch_s=batch_s,
        overwrite=force,
    )
    _finish(report, as_json)


@import_.command("hdfs")
@click.argument("src", type=_SRC)
@_OUT
@click.option("--line-s", type=float, default=1.0, show_default=True, help="seconds between a block's consecutive log lines")
@_FORCE
@_JSON
def hdfs(src: Path, out: Path, line_s: float, force: bool, as_json: bool) -> None:
    """HDFS block sessions (JSON lines of log templates) in SRC -> OUT/train and OUT/test, one asset per block."""
    from forewarn.importers.hdfs import import_hdfs

    _finish(_run(import_hdfs, src, out, line_s=line_s, overwrite=force), as_json)


@import_.command("csv")
@click.argument("src", type=_SRC)
@_OUT
@click.option(
    "--mapping",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML file saying which column is what (docs/data.md)",
)
@_FORCE
@_JSON
def csv_(src: Path, out: Path, mapping: Path, force: bool, as_json: bool) -> None:
    """A plant's CSV exports in SRC (a folder, or one file) -> OUT, as the --mapping TOML describes them.

    Telemetry (wide or long), optional events/alarms/notes as log lines, optional work
    orders/failures as fault episodes. Bad rows are refused and listed with file and line.
    """
    from forewarn.importers.plantcsv import import_csv

    _finish(_run(import_csv, src, out, mapping, overwrite=force), as_json)
