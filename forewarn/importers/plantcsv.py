"""A plant's own CSV exports -> one dataset directory, described by a small TOML mapping file.

    [telemetry]   a historian's export, wide (one column per channel) or long (tag, value)
    [events]      alarms, events, operator notes         -> log records          (optional)
    [failures]    work orders, failure records          -> fault episodes       (optional)

The mapping says which column is what (docs/data.md has a complete example). Files are globs
relative to SRC (a folder), or SRC itself when it is a CSV file. Each section reads:

    files, delimiter (","), decimal ("."), encoding ("utf-8-sig")
    time_column, time_format ("iso" | "unix_s" | "unix_ms" | a strptime pattern), timezone ("UTC")
    asset_column, or asset (one asset for every row), else the file's name is the asset

Names are made contract-safe (``Volume Flow RateRMS`` -> ``volume_flow_rate_rms``) and the
originals kept in meta.json (ChannelInfo.original_name, extra.names). A row that cannot be read
(a time that does not parse, a value that is not a number, a missing asset) is refused and
reported with its file and line; an empty cell is a missing sample, kept as a gap.
"""

from __future__ import annotations

import csv
import glob
import math
import re
import tomllib
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from forewarn.contracts import (
    MAX_CHANNELS,
    MAX_LOG_TEXT,
    MAX_SAMPLES,
    MAX_TIMESTAMP,
    MIN_TIMESTAMP,
    ChannelInfo,
    ChannelRole,
    DatasetMeta,
    FaultEpisode,
    LogRecord,
    Telemetry,
)
from forewarn.errors import ContractError
from forewarn.importers.common import ImportRefused, Report, asset_id, channel_name, merged, write_dataset

_MISSING = {"", "nan", "NaN", "NAN", "null", "NULL", "None", "NA", "N/A", "#N/A", "-"}
_ROLES = set(get_args(ChannelRole))
_SAFE = re.compile(r"[a-z][a-z0-9_]{0,47}")
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
_COMMON_KEYS = {"files", "delimiter", "decimal", "encoding", "time_column", "time_format", "timezone", "asset_column", "asset"}
_KEYS = {
    "telemetry": _COMMON_KEYS
    | {"layout", "channels", "channel_column", "value_column", "unit_column", "asset_type", "batch_s", "rate_hz"},
    "events": _COMMON_KEYS | {"text_column", "level_column", "source_column", "code_column", "levels", "source"},
    "failures": _COMMON_KEYS
    | {"fault_column", "fault", "faults", "onset_column", "failure_column", "end_column", "onset_format"},
}
_TOP = {"site", "source", "licence", "telemetry", "events", "failures"}


class _Section:
    """One section of the mapping, with the reading options every CSV section shares."""

    def __init__(self, name: str, table: dict[str, Any], src: Path) -> None:
        unknown = set(table) - _KEYS[name]
        if unknown:
            raise ImportRefused(f"mapping [{name}]: unknown key(s) {', '.join(sorted(unknown))}")
        self.name, self.table = name, table
        patterns = table.get("files") or ([src.name] if name == "telemetry" and not src.is_dir() else [])
        if not patterns:
            raise ImportRefused(f"mapping [{name}]: files is required (globs relative to {src})")
        base = src if src.is_dir() else src.parent
        self.files: list[Path] = []
        for pattern in [patterns] if isinstance(patterns, str) else patterns:
            found = sorted(Path(p) for p in glob.glob(str(base / pattern)))
            if not found:
                raise ImportRefused(f"mapping [{name}]: no file matches {pattern!r} in {base}")
            self.files += found
        self.delimiter = str(table.get("delimiter", ","))
        self.decimal = str(table.get("decimal", "."))
        self.encoding = str(table.get("encoding", "utf-8-sig"))
        self.time_column = self.required("time_column") if name != "failures" else ""
        self.time_format = str(table.get("time_format", "iso"))
        self.tz = _timezone(str(table.get("timezone", "UTC")), name)

    def required(self, key: str) -> str:
        value = self.table.get(key)
        if not isinstance(value, str) or not value:
            raise ImportRefused(f"mapping [{self.name}]: {key} is required")
        return value

    def rows(self, report: Report) -> Iterator[tuple[Path, int, dict[str, str]]]:
        """(file, line, row) of every data row; a row with the wrong number of cells is reported."""
        for path in self.files:
            with path.open(newline="", encoding=self.encoding, errors="replace") as fh:
                reader = csv.reader(fh, delimiter=self.delimiter)
                header = next(reader, None)
                if header is None:
                    report.notes.append(f"{path.name} is empty")
                    continue
                header = [h.strip() for h in header]
                needed = [v for k, v in self.table.items() if k.endswith("_column") and isinstance(v, str)]
                if self.table.get("layout", "wide") == "wide" and self.name == "telemetry":
                    needed += list(self.table.get("channels") or {})
                absent = [c for c in needed if c not in header]
                if absent:
                    raise ImportRefused(
                        f"{path.name}: no column {', '.join(map(repr, absent))} (columns: {', '.join(header[:20])})"
                    )
                for cells in reader:
                    line = reader.line_num
                    if not any(c.strip() for c in cells):
                        continue
                    if len(cells) != len(header):
                        report.bad(path.name, line, f"{len(cells)} cells, the header has {len(header)}")
                        continue
                    yield path, line, dict(zip(header, cells, strict=True))

    def asset(self, path: Path, row: dict[str, str]) -> str:
        column = self.table.get("asset_column")
        if isinstance(column, str):
            value = row[column].strip()
            if not value:
                raise ValueError(f"no asset in column {column!r}")
            return value
        return str(self.table.get("asset") or path.stem)

    def time(self, text: str) -> float:
        try:
            t = parse_time(text, self.time_format, self.tz)
        except ValueError as exc:
            raise ValueError(f"time {text.strip()[:40]!r} does not read as {self.time_format!r}") from exc
        if not MIN_TIMESTAMP <= t <= MAX_TIMESTAMP:
            raise ValueError(f"time {text.strip()[:40]!r} is not between 2000 and 2100 (unix_ms read as unix_s?)")
        return t

    def number(self, text: str, column: str) -> float | None:
        text = text.strip()
        if text in _MISSING:
            return None
        if self.decimal != ".":
            text = text.replace(".", "").replace(self.decimal, ".")
        try:
            value = float(text)
        except ValueError as exc:
            raise ValueError(f"{column!r}: {text[:40]!r} is not a number") from exc
        return value if math.isfinite(value) else None


def _timezone(name: str, section: str) -> tzinfo:
    m = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", name.strip())
    if m:
        sign = 1 if m.group(1) == "+" else -1
        return timezone(sign * timedelta(hours=int(m.group(2)), minutes=int(m.group(3))))
    if name.upper() in ("UTC", "Z"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ImportRefused(f"mapping [{section}]: unknown timezone {name!r} (an IANA name or +HH:MM)") from exc


def parse_time(text: str, fmt: str, tz: tzinfo) -> float:
    """Unix seconds of one cell; a time without an offset is in ``tz``. Raises ValueError."""
    text = text.strip()
    if fmt == "unix_s":
        return float(text)
    if fmt == "unix_ms":
        return float(text) / 1000.0
    moment = datetime.fromisoformat(text) if fmt == "iso" else datetime.strptime(text, fmt)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.timestamp()


def _channel_specs(sec: _Section, originals: list[str], report: Report) -> dict[str, tuple[str, ChannelInfo]]:
    """original name -> (safe name, info) for the channels to import."""
    table = sec.table.get("channels") or {}
    if not isinstance(table, dict):
        raise ImportRefused("mapping [telemetry]: channels is a table of column name -> {unit, role, description, name}")
    chosen = list(table) if table else originals
    taken: set[str] = set()
    out: dict[str, tuple[str, ChannelInfo]] = {}
    for original in chosen:
        spec = table.get(original) or {}
        if not isinstance(spec, dict) or set(spec) - {"name", "unit", "role", "description", "rate_hz"}:
            raise ImportRefused(f"mapping [telemetry.channels.{original!r}]: keys are name, unit, role, description, rate_hz")
        role = spec.get("role")
        if role is not None and role not in _ROLES:
            raise ImportRefused(f"mapping: channel {original!r} role {role!r} is not one of {', '.join(sorted(_ROLES))}")
        wanted = spec.get("name")
        if wanted is not None and (not _SAFE.fullmatch(str(wanted)) or wanted in taken):
            raise ImportRefused(f"mapping: channel name {wanted!r} must be unique lowercase snake case, at most 48 characters")
        name = wanted or channel_name(original, taken)
        taken.add(name)
        info = {"unit": str(spec.get("unit", ""))[:32], "description": str(spec.get("description", ""))[:256], "role": role}
        out[original] = (name, ChannelInfo(rate_hz=float(spec.get("rate_hz", 1.0)), original_name=original, **info))
    if table and sec.table.get("layout", "wide") == "wide":
        report.notes.extend(f"column {c!r} is not in the mapping, not imported" for c in originals if c not in table)
    return out


def _read_telemetry(
    sec: _Section, report: Report
) -> tuple[dict[str, dict[float, dict[str, float | None]]], dict[str, tuple[str, ChannelInfo]]]:
    """asset -> time -> original channel -> value, and the channel specs."""
    layout = sec.table.get("layout", "wide")
    if layout not in ("wide", "long"):
        raise ImportRefused("mapping [telemetry]: layout is wide or long")
    data: dict[str, dict[float, dict[str, float | None]]] = defaultdict(lambda: defaultdict(dict))
    specs: dict[str, tuple[str, ChannelInfo]] | None = None
    units: dict[str, str] = {}
    if layout == "long":
        tag, value_col = sec.required("channel_column"), sec.required("value_column")
        unit_col = sec.table.get("unit_column")
    for path, line, row in sec.rows(report):
        try:
            asset = sec.asset(path, row)
            t = sec.time(row[sec.time_column])
            if layout == "wide":
                if specs is None:
                    skip = {sec.time_column, sec.table.get("asset_column")}
                    specs = _channel_specs(sec, [c for c in row if c not in skip], report)
                values = {c: sec.number(row[c], c) for c in specs}
            else:
                channel = row[tag].strip()
                if sec.table.get("channels") and channel not in sec.table["channels"]:
                    raise ValueError(f"tag {channel!r} is not in the mapping's channels")
                values = {channel: sec.number(row[value_col], value_col)}
                if isinstance(unit_col, str):
                    units.setdefault(channel, row[unit_col].strip())
        except KeyError as exc:
            report.bad(path.name, line, f"no column {exc}")
            continue
        except ValueError as exc:
            report.bad(path.name, line, str(exc))
            continue
        data[asset][t].update(values)
    if layout == "long":
        tags = sorted({c for times in data.values() for row in times.values() for c in row})
        specs = _channel_specs(sec, tags, report)
        for original, unit in units.items():
            if original in specs and not specs[original][1].unit:
                name, info = specs[original]
                specs[original] = (name, info.model_copy(update={"unit": unit[:32]}))
    return data, specs or {}


def _telemetry_messages(
    site: str,
    asset: str,
    asset_type: str | None,
    times: dict[float, dict[str, float | None]],
    specs: dict[str, tuple[str, ChannelInfo]],
    batch_s: float,
) -> Iterator[Telemetry]:
    stamps = sorted(times)
    originals = list(specs)
    groups = [originals[i : i + MAX_CHANNELS] for i in range(0, len(originals), MAX_CHANNELS)]
    seq, i = 0, 0
    while i < len(stamps):
        j = i + 1
        while j < len(stamps) and j - i < MAX_SAMPLES and stamps[j] - stamps[i] < batch_s:
            j += 1
        for group in groups:
            columns = {specs[c][0]: [times[t].get(c) for t in stamps[i:j]] for c in group}
            yield Telemetry(site=site, asset_id=asset, asset_type=asset_type, seq=seq, timestamps=stamps[i:j], channels=columns)
            seq += 1
        i = j


def _read_events(sec: _Section, site: str, report: Report) -> list[tuple[str, LogRecord]]:
    text_col = sec.required("text_column")
    levels = {str(k).strip().upper(): v for k, v in (sec.table.get("levels") or {}).items()}
    out = []
    for path, line, row in sec.rows(report):
        try:
            original = sec.asset(path, row)
            text = row[text_col].strip()
            if not text:
                raise ValueError("empty text")
            level_col, source_col, code_col = (sec.table.get(k) for k in ("level_column", "source_column", "code_column"))
            raw_level = row[level_col].strip() if isinstance(level_col, str) else ""
            # validated now with a stand-in asset id; the safe id is set once every asset's name is known
            fields: dict[str, Any] = {"site": site, "asset_id": "unnamed", "ts": sec.time(row[sec.time_column])}
            fields["text"] = text[:MAX_LOG_TEXT]
            if raw_level:
                fields["level"] = levels.get(raw_level.upper(), raw_level)
            source = row[source_col].strip() if isinstance(source_col, str) else str(sec.table.get("source", ""))
            if source:
                fields["source"] = source[:64]
            if isinstance(code_col, str) and row[code_col].strip():
                fields["code"] = row[code_col].strip()[:32]
            record = LogRecord(**fields)
        except KeyError as exc:
            report.bad(path.name, line, f"no column {exc}")
            continue
        except (ValueError, ContractError) as exc:
            report.bad(path.name, line, str(exc).splitlines()[0][:300])
            continue
        out.append((original, record))
    return out


def _read_failures(
    sec: _Section, report: Report, fault_names: dict[str, str]
) -> list[tuple[str, str, float, float | None, float | None]]:
    """(original asset, safe fault, onset, failure, end) of each work order or failure record."""
    onset_col = sec.required("onset_column")
    mapped = {str(k): str(v) for k, v in (sec.table.get("faults") or {}).items()}
    for value in mapped.values():
        if not _SAFE.fullmatch(value):
            raise ImportRefused(f"mapping [failures] faults: {value!r} is not lowercase snake case of at most 48 characters")
    taken = set(fault_names.values()) | set(mapped.values())
    out = []
    for path, line, row in sec.rows(report):
        try:
            original = sec.asset(path, row)
            fault_col = sec.table.get("fault_column")
            fault = row[fault_col].strip() if isinstance(fault_col, str) else str(sec.table.get("fault", ""))
            if not fault:
                raise ValueError("no fault named")
            if fault not in fault_names:
                fault_names[fault] = mapped.get(fault) or channel_name(fault, taken, prefix="fault")
            cells = [
                row[c].strip() if isinstance(c, str) else ""
                for c in (onset_col, sec.table.get("failure_column"), sec.table.get("end_column"))
            ]
            if not cells[0]:
                raise ValueError(f"no onset in column {onset_col!r}")
            onset, failure, end = (sec.time(c) if c else None for c in cells)
            if failure is not None and end is not None:
                raise ValueError("both a failure and an end time: an episode ends at one of them")
            assert onset is not None
            if (failure or end or onset) < onset:
                raise ValueError("it ends before its onset")
        except KeyError as exc:
            report.bad(path.name, line, f"no column {exc}")
            continue
        except ValueError as exc:
            report.bad(path.name, line, str(exc))
            continue
        out.append((original, fault_names[fault], onset, failure, end))
    return out


def load_mapping(path: Path) -> dict[str, Any]:
    try:
        mapping = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ImportRefused(f"mapping {path}: {exc}") from exc
    unknown = set(mapping) - _TOP
    if unknown:
        raise ImportRefused(f"mapping {path}: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(_TOP))})")
    if not any(k in mapping for k in ("telemetry", "events")):
        raise ImportRefused(f"mapping {path}: needs a [telemetry] or an [events] section")
    return mapping


def import_csv(src: Path, out: Path, mapping_path: Path, *, overwrite: bool = False) -> Report:
    """Write one dataset directory at OUT from the CSV files in SRC as the mapping describes them."""
    mapping = load_mapping(mapping_path)
    src = Path(src)
    site = str(mapping.get("site", "plant"))
    asset_type = (mapping.get("telemetry") or {}).get("asset_type")
    for what, value in (("site", site), ("asset_type", asset_type)):
        if value is not None and not _ID.fullmatch(str(value)):
            raise ImportRefused(f"mapping: {what} {value!r} must be 1-64 letters, digits, '_', '.' or '-'")
    report = Report(source=f"CSV export {src} (mapping {Path(mapping_path).name})")
    assets: dict[str, str] = {}  # original -> safe
    taken: set[str] = set()

    def safe(original: str) -> str:
        if original not in assets:
            assets[original] = asset_id(original, taken)
        return assets[original]

    streams: list[Iterator[Telemetry | LogRecord]] = []
    channels: dict[str, ChannelInfo] = {}
    asset_types: dict[str, str | None] = {}
    if "telemetry" in mapping:
        sec = _Section("telemetry", mapping["telemetry"], src)
        data, specs = _read_telemetry(sec, report)
        batch_s = float(sec.table.get("batch_s", 10.0))
        steps: dict[str, list[float]] = defaultdict(list)
        for original in sorted(data):
            times = data[original]
            a = safe(original)
            asset_types[a] = asset_type
            stamps = np.array(sorted(times))
            for c in specs:
                seen = stamps[[times[t].get(c) is not None for t in stamps]] if len(stamps) else stamps
                gaps = np.diff(seen)
                steps[c] += gaps[gaps > 0].tolist()
            streams.append(_telemetry_messages(site, a, asset_type, times, specs, batch_s))
        for c, (name, info) in specs.items():
            given = (sec.table.get("channels") or {}).get(c, {}).get("rate_hz") or sec.table.get("rate_hz")
            dt = float(np.median(steps[c])) if steps[c] else 0.0
            rate = float(given) if given else (1.0 / dt if dt > 0 else 1.0)
            channels[name] = info.model_copy(update={"rate_hz": min(rate, 200_000.0)})
    if "events" in mapping:
        sec = _Section("events", mapping["events"], src)
        by_asset: dict[str, list[LogRecord]] = defaultdict(list)
        for original, record in _read_events(sec, site, report):
            a = safe(original)
            asset_types.setdefault(a, None)
            by_asset[a].append(record.model_copy(update={"asset_id": a}))
        for records in by_asset.values():
            ordered: list[Telemetry | LogRecord] = [*sorted(records, key=_log_time)]
            streams.append(iter(ordered))
    episodes = []
    fault_names: dict[str, str] = {}
    if "failures" in mapping:
        sec = _Section("failures", mapping["failures"], src)
        for original, fault, onset, failure, end in _read_failures(sec, report, fault_names):
            if original not in assets:
                report.notes.append(f"failure record for {original!r}, an asset with no telemetry or events")
            a = safe(original)
            asset_types.setdefault(a, None)
            episode = FaultEpisode(site=site, asset_id=a, fault=fault, onset=onset, failure=failure)
            if end is not None:
                episode = _ended(episode, end)
            episodes.append(episode)
    names = {
        "assets": {safe_: orig for orig, safe_ in assets.items() if safe_ != orig},
        "faults": {safe_: orig for orig, safe_ in fault_names.items() if safe_ != orig},
        "channels": {info.original_name: name for name, info in channels.items() if info.original_name != name},
    }
    meta = DatasetMeta(
        source=str(mapping.get("source", f"CSV export {src.name}"))[:256],
        licence=str(mapping.get("licence", ""))[:256],
        channels=channels,
        assets=asset_types,
        extra={"names": names, "mapping": mapping},
    )
    write_dataset(out, meta, merged(streams), episodes, report, overwrite=overwrite)
    return report


def _ended(episode: FaultEpisode, end: float) -> FaultEpisode:
    """The episode of a reversible condition that cleared at ``end`` without a failure."""
    return FaultEpisode(**{**episode.model_dump(exclude={"schema_version"}), "end": end})


def _log_time(record: LogRecord) -> float:
    return record.ts
