"""Windows in progress that survive a crash: a checkpoint of the window stage plus a journal of what came since.

A window is built from many messages, and each message is acknowledged to the broker once
it is folded, long before its window completes. Without this module a kill -9 loses every
window in progress, and each asset's learned history with them: the restarted gateway would
take a developing fault for the new normal.

How it holds:

- every pipeline step appends the payloads it folded to ``windows.journal`` *before* their
  MQTT acknowledgement, one frame each (topic, payload, CRC-32), written through to the OS;
- every ``checkpoint_s`` (sooner when the journal passes ``max_bytes``) and at a clean stop,
  the window stage is pickled to ``windows.ckpt`` (temporary file, fsync, rename) and the
  journal starts empty;
- at start the checkpoint is loaded, if it was cut for the same window spec, and the journal
  replayed through the same admission and fold as live messages. A frame the crash cut short
  ends the replay (counted: it was never acknowledged, so the broker delivers it again).

A window completed again by the replay may have been scored before the crash: its prediction
id is the same, so the outbox keeps it once and the stream treats it as the redelivery it
is. A message both journalled and redelivered (the crash fell between the two) is dropped as
a seq duplicate. The journal is written through to the OS at every step and fsynced at every
checkpoint: a crash of the process loses nothing, a power cut up to the OS's write-back
delay of windows in progress.

The checkpoint is a pickle of the gateway's own objects, written and read only by the
gateway in its state directory; one that cannot be read (another Forewarn version, a
damaged file) is set aside, logged, and the windows start again.
"""

from __future__ import annotations

import io
import os
import struct
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from edge_agent.errors import JournalError, Rejected
from edge_agent.window import WindowStage
from forewarn.contracts import LogRecord, Telemetry

_HEADER = struct.Struct(">III")  # topic length, payload length, CRC-32 of topic + payload

Admit = Callable[[str, bytes], Telemetry | LogRecord]
"""Topic and payload -> a typed message, or ``Rejected``: the live path's admission."""


@dataclass(frozen=True)
class Restored:
    """What a start found: the assets the checkpoint held, the journal messages replayed, why anything was set aside."""

    assets: int = 0
    replayed: int = 0
    refused: int = 0
    torn: bool = False
    discarded: str | None = None


def encode_frame(topic: str, payload: bytes) -> bytes:
    name = topic.encode()
    return _HEADER.pack(len(name), len(payload), zlib.crc32(payload, zlib.crc32(name))) + name + payload


def read_frames(data: bytes) -> tuple[list[tuple[str, bytes]], bool]:
    """The frames of a journal; True when it ends in a frame the writer never finished (or a damaged one)."""
    frames: list[tuple[str, bytes]] = []
    at = 0
    while at < len(data):
        if at + _HEADER.size > len(data):
            return frames, True
        n_topic, n_payload, crc = _HEADER.unpack_from(data, at)
        body = data[at + _HEADER.size : at + _HEADER.size + n_topic + n_payload]
        if len(body) < n_topic + n_payload or zlib.crc32(body[n_topic:], zlib.crc32(body[:n_topic])) != crc:
            return frames, True
        frames.append((body[:n_topic].decode(errors="replace"), bytes(body[n_topic:])))
        at += _HEADER.size + n_topic + n_payload
    return frames, False


class WindowJournal:
    """The checkpoint and journal files of one gateway (``<state_dir>/edge/windows.*``)."""

    def __init__(self, directory: Path, interval_s: float, max_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.checkpoint_path = directory / "windows.ckpt"
        self.journal_path = directory / "windows.journal"
        self.interval_s = interval_s
        self.max_bytes = max_bytes
        self.clock = clock
        self.checkpoints = 0
        self.last_checkpoint_s = 0.0
        self._file: io.FileIO | None = None
        self._bytes = 0
        self._next = clock() + interval_s

    def restore(self, stage: WindowStage, admit: Admit) -> Restored:
        """Load the checkpoint into ``stage`` and replay the journal through ``admit``.

        The replay may complete windows (``stage.ready()``): score them, then ``checkpoint``,
        which empties the journal.
        """
        self.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        assets, discarded = self._load(stage)
        replayed = refused = 0
        torn = False
        if self.journal_path.exists():
            frames, torn = read_frames(self.journal_path.read_bytes())
            if discarded is None:
                replayed, refused = _replay(stage, admit, frames)
        return Restored(assets, replayed, refused, torn, discarded)

    def record(self, frames: Iterable[tuple[str, bytes]]) -> None:
        """Append the folded payloads, written through to the OS (a crash of the process keeps them)."""
        data = b"".join(encode_frame(topic, payload) for topic, payload in frames)
        if not data:
            return
        try:
            self._open().write(data)  # unbuffered: in the OS's hands when this returns
        except OSError as exc:
            raise JournalError(f"cannot append to {self.journal_path}: {exc}") from exc
        self._bytes += len(data)

    def due(self) -> bool:
        return self._bytes >= self.max_bytes or self.clock() >= self._next

    def checkpoint(self, stage: WindowStage) -> None:
        """Write the stage atomically, then empty the journal (whose messages the checkpoint now holds)."""
        started = time.perf_counter()
        tmp = self.checkpoint_path.with_suffix(".tmp")
        try:
            with tmp.open("wb") as out:
                stage.save(out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.checkpoint_path)
            self.close()
            with self.journal_path.open("wb") as journal:  # truncate only once the checkpoint is in place
                os.fsync(journal.fileno())
        except OSError as exc:
            raise JournalError(f"cannot write the checkpoint {self.checkpoint_path}: {exc}") from exc
        self._bytes = 0
        self._next = self.clock() + self.interval_s
        self.checkpoints += 1
        self.last_checkpoint_s = time.perf_counter() - started

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def levels(self) -> Iterator[tuple[str, str, float]]:
        yield "journal_bytes", "bytes journalled since the last checkpoint of the windows in progress", float(self._bytes)
        yield "checkpoints_total", "checkpoints of the windows in progress written", float(self.checkpoints)
        yield "checkpoint_seconds", "time the last checkpoint took (the pipeline waits for it)", self.last_checkpoint_s

    def _open(self) -> io.FileIO:
        if self._file is None:
            self._file = io.FileIO(self.journal_path, "ab")
        return self._file

    def _load(self, stage: WindowStage) -> tuple[int, str | None]:
        if not self.checkpoint_path.exists():
            return 0, None
        try:
            with self.checkpoint_path.open("rb") as src:
                return stage.load(src), None
        except Exception as exc:  # any unreadable checkpoint: set it aside, never refuse to start
            aside = self.checkpoint_path.with_suffix(".unreadable")
            os.replace(self.checkpoint_path, aside)
            return 0, f"{type(exc).__name__}: {exc} (moved to {aside.name})"


def _replay(stage: WindowStage, admit: Admit, frames: list[tuple[str, bytes]]) -> tuple[int, int]:
    replayed = refused = 0
    for topic, payload in frames:
        try:
            stage.add(admit(topic, payload), time.perf_counter())
        except Rejected:
            refused += 1  # refused live too, so it was never journalled unless the policy changed
            continue
        replayed += 1
    return replayed, refused
