"""Replay a dataset directory to MQTT: the same publisher and pacing as the live simulator.

Source timestamps are kept as recorded (the edge windows by source time), unless
``retime`` shifts the whole dataset so that it starts now, which is what a live demo of
recorded data wants.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from forewarn.contracts import LogRecord, Telemetry
from forewarn.dataset import iter_messages, read_meta


def shifted(message: Telemetry | LogRecord, offset: float) -> Telemetry | LogRecord:
    """The same message ``offset`` seconds later (waveform burst included)."""
    if isinstance(message, LogRecord):
        return message.model_copy(update={"ts": round(message.ts + offset, 3)})
    update: dict[str, object] = {"timestamps": [round(t + offset, 3) for t in message.timestamps]}
    if message.waveform is not None:
        update["waveform"] = message.waveform.model_copy(update={"t0": round(message.waveform.t0 + offset, 3)})
    return message.model_copy(update=update)


def replay_messages(directory: Path, retime: bool = False, now: float | None = None) -> Iterator[Telemetry | LogRecord]:
    """The dataset's messages in file order (validated as they are read), optionally moved to start ``now``."""
    offset = 0.0
    if retime:
        meta = read_meta(directory)
        first = meta.start
        if first is None:
            first = next(iter(_times(directory)), None)
        if first is not None:
            offset = (time.time() if now is None else now) - first
    for message in iter_messages(directory):
        yield shifted(message, offset) if offset else message


def _times(directory: Path) -> Iterator[float]:
    for message in iter_messages(directory):
        yield message.timestamps[0] if isinstance(message, Telemetry) else message.ts
