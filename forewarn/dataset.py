"""Dataset directories: the one format that simulators and importers write and that training,
evaluation, offline scoring and replay read, so a plant's own data goes through the product's
whole path once it is written in this form.

    DIR/messages.jsonl   Telemetry and LogRecord messages in time order, one JSON object per line
    DIR/labels.jsonl     FaultEpisode ground truth, one per line
    DIR/meta.json        DatasetMeta: source, licence, channels, assets, rating plates, split, seed

A bad line is never skipped silently: reading raises DatasetError naming the file and line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO

from forewarn.contracts import (
    NORMAL,
    DatasetMeta,
    FaultEpisode,
    LogRecord,
    Telemetry,
    decode,
    decode_input,
    encode,
)
from forewarn.errors import ContractError, DatasetError

MESSAGES = "messages.jsonl"
LABELS = "labels.jsonl"
META = "meta.json"


def message_time(message: Telemetry | LogRecord) -> float:
    """The time a message is ordered by: its first sample for telemetry, its stamp for a log line."""
    return message.timestamps[0] if isinstance(message, Telemetry) else message.ts


class DatasetWriter:
    """Writes a dataset directory; messages must arrive in time order (checked, not assumed).

    Use as a context manager: the files are complete and flushed on exit.
    """

    def __init__(self, directory: Path, meta: DatasetMeta, *, overwrite: bool = False) -> None:
        self.directory = Path(directory)
        if (self.directory / MESSAGES).exists() and not overwrite:
            raise DatasetError(f"{self.directory} already holds a dataset (pass overwrite=True to replace it)")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.meta = meta
        self._messages: IO[bytes] = (self.directory / MESSAGES).open("wb")
        self._labels: list[FaultEpisode] = []
        self._last_time = float("-inf")
        self.count = 0

    def write(self, message: Telemetry | LogRecord) -> None:
        t = message_time(message)
        if t < self._last_time:
            raise DatasetError(
                f"message for {message.asset_id} at {t} is older than the previous one ({self._last_time}); "
                "messages.jsonl must be in time order"
            )
        self._last_time = t
        self._messages.write(encode(message))
        self._messages.write(b"\n")
        self.count += 1

    def write_many(self, messages: Iterable[Telemetry | LogRecord]) -> None:
        for message in messages:
            self.write(message)

    def label(self, episode: FaultEpisode) -> None:
        self._labels.append(episode)

    def close(self) -> None:
        if self._messages.closed:
            return
        self._messages.close()
        with (self.directory / LABELS).open("wb") as fh:
            for episode in sorted(self._labels, key=lambda e: (e.onset, e.asset_id, e.fault)):
                fh.write(encode(episode) + b"\n")
        (self.directory / META).write_text(self.meta.model_dump_json(indent=2) + "\n")

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _require(directory: Path, name: str) -> Path:
    path = Path(directory) / name
    if not path.is_file():
        raise DatasetError(f"{directory} is not a dataset directory: {name} is missing")
    return path


def read_meta(directory: Path) -> DatasetMeta:
    path = _require(directory, META)
    try:
        return decode(path.read_bytes(), DatasetMeta)
    except ContractError as exc:
        raise DatasetError(f"{path}: {exc}") from exc


def read_labels(directory: Path) -> list[FaultEpisode]:
    path = _require(directory, LABELS)
    episodes = []
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    episodes.append(decode(line, FaultEpisode))
                except ContractError as exc:
                    raise DatasetError(f"{path}:{number}: {exc}") from exc
    return episodes


def iter_messages(directory: Path, on_bad: Callable[[int, str], None] | None = None) -> Iterator[Telemetry | LogRecord]:
    """Stream the messages of a dataset in file order, validating each line as the edge would.

    A line that is not a valid message raises DatasetError, or, with ``on_bad``, is reported as
    ``on_bad(line number, reason)`` and skipped (offline commands count them as the gateway does).
    """
    path = _require(directory, MESSAGES)
    last = float("-inf")
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                message = decode_input(line)
            except ContractError as exc:
                if on_bad is None:
                    raise DatasetError(f"{path}:{number}: {exc}") from exc
                on_bad(number, str(exc))
                continue
            t = message_time(message)
            if t < last:
                raise DatasetError(f"{path}:{number}: message at {t} is older than the previous one ({last})")
            last = t
            yield message


def label_at(episodes: Iterable[FaultEpisode], asset_id: str, ts: float) -> tuple[str, float | None]:
    """Ground truth for one asset at one instant: the covering fault (else 'normal') and hours to failure.

    When episodes overlap, the one that fails first wins: it is the more urgent truth.
    """
    covering = _covering(episodes, asset_id, ts)
    if not covering:
        return NORMAL, None
    first = covering[0]
    ttf = None if first.failure is None else (first.failure - ts) / 3600.0
    return first.fault, ttf


def faults_at(episodes: Iterable[FaultEpisode], asset_id: str, ts: float) -> tuple[str, ...]:
    """Every fault present on the asset at ``ts``, the label_at one first (empty when healthy).

    Two overlapping faults are both true: evaluation counts naming either as right.
    """
    return tuple(dict.fromkeys(e.fault for e in _covering(episodes, asset_id, ts)))


def _covering(episodes: Iterable[FaultEpisode], asset_id: str, ts: float) -> list[FaultEpisode]:
    """Episodes covering ``ts``, the first to fail first."""
    covering = [e for e in episodes if e.asset_id == asset_id and e.covers(ts)]
    return sorted(covering, key=lambda e: (e.failure if e.failure is not None else float("inf"), e.onset))
