"""The disk outbox: store-and-forward between inference and Kafka, in one SQLite file (WAL).

A prediction is written here before anything else happens to it, and it leaves only when
Kafka has acknowledged it (``delete`` after the ack). Each ``put`` is one committed
transaction, so a kill -9 at any moment loses nothing that was stored; the id column is
unique, so storing the same prediction twice (a window re-scored after a restart) keeps one
row, and sending one twice is harmless because every consumer upserts by id.

Bounds and discard policy (a gateway's disk is small and an outage may last weeks):
- by age: rows older than ``max_age_s`` are deleted by ``expire`` (reason ``age``);
- by bytes: when a ``put`` takes the file over ``max_bytes``, the oldest rows go until it
  is at 95 % of the bound (reason ``bytes``): escalations first (the edge verdict stands
  without them, edge_agent.escalate), then dead letters, then predictions, oldest first,
  because the newest predictions are the ones an operator can still act on.
Every discarded row is counted by reason and kind (``forewarn_edge_outbox_discarded_total``).

One connection, used from the event loop's thread only. Depth and bytes are counted once at
start and then kept in memory (COUNT(*) scans the table, and an outage can leave millions of
rows), so neither a put nor a Prometheus scrape ever scans the file.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from edge_agent.errors import OutboxError
from edge_agent.metrics import EdgeMetrics

Kind = Literal["prediction", "deadletter", "escalation"]
ROW_OVERHEAD = 96
"""Bytes charged per row beyond key and value (id, index entries, page slack): keeps the bound honest."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    id      TEXT NOT NULL UNIQUE,
    kind    TEXT NOT NULL,
    topic   TEXT NOT NULL,
    key     BLOB,
    value   BLOB NOT NULL,
    created REAL NOT NULL,
    bytes   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_kind_seq ON outbox (kind, seq);
CREATE INDEX IF NOT EXISTS outbox_created ON outbox (created);
"""


@dataclass(frozen=True, slots=True)
class Record:
    """What goes into the outbox: one Kafka record with an idempotency id."""

    id: str
    kind: Kind
    topic: str
    key: bytes | None
    value: bytes


@dataclass(frozen=True, slots=True)
class Row:
    """A stored record, with its position and the wall-clock time it was stored."""

    seq: int
    id: str
    kind: Kind
    topic: str
    key: bytes | None
    value: bytes
    created: float


class Outbox:
    """A bounded, durable queue of Kafka records (see the module docstring for the policy)."""

    def __init__(
        self,
        path: Path,
        metrics: EdgeMetrics,
        max_bytes: int,
        max_age_s: float,
        synchronous: Literal["NORMAL", "FULL"] = "FULL",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.metrics = metrics
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.synchronous = synchronous
        self.clock = clock
        self._db: sqlite3.Connection | None = None
        self._depth = 0
        self._bytes = 0
        self._oldest: float | None = None
        metrics.watch(self._levels)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Open (or create) the file; rows left by a previous run, even one killed, are all there."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self.synchronous}")
            db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise OutboxError(f"cannot open the outbox {self.path}: {exc}") from exc
        self._db = db
        self._refresh()

    def stop(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # ------------------------------------------------------------------ operations

    def put(self, records: Sequence[Record]) -> int:
        """Store records in one transaction; returns how many were new (an id already stored is kept once)."""
        if not records:
            return 0
        now = self.clock()
        rows = [(r.id, r.kind, r.topic, r.key, r.value, now, _size(r.key, r.value)) for r in records]
        with self._transaction() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO outbox (id, kind, topic, key, value, created, bytes) VALUES (?, ?, ?, ?, ?, ?, ?)", rows
            )
            added = db.total_changes - before
        if added == len(rows):
            self._depth += added
            self._bytes += sum(row[-1] for row in rows)
            self._oldest = now if self._oldest is None else self._oldest
        elif added:
            self._refresh()  # some ids were already stored: count from the file (rare)
        if self._bytes > self.max_bytes:
            self._shrink()
        return added

    def take(self, limit: int, *, since: float | None = None, before: float | None = None) -> list[Row]:
        """The oldest ``limit`` rows (stored at or after ``since`` / before ``before``), not removed."""
        where, args = [], []
        if since is not None:
            where.append("created >= ?")
            args.append(since)
        if before is not None:
            where.append("created < ?")
            args.append(before)
        sql = "SELECT seq, id, kind, topic, key, value, created FROM outbox"
        sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY seq LIMIT ?"
        try:
            found = self._conn().execute(sql, (*args, limit)).fetchall()
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot read the outbox {self.path}: {exc}") from exc
        return [Row(*row) for row in found]

    def delete(self, seqs: Iterable[int]) -> None:
        """Forget rows that Kafka acknowledged."""
        ids = list(seqs)
        if not ids:
            return
        sizes: list[int] = []
        with self._transaction() as db:
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                marks = ",".join("?" * len(chunk))
                sizes += [size for (size,) in db.execute(f"DELETE FROM outbox WHERE seq IN ({marks}) RETURNING bytes", chunk)]
        self._depth -= len(sizes)
        self._bytes -= sum(sizes)
        self._refresh_oldest()

    def expire(self) -> int:
        """Discard rows older than max_age_s; returns how many went."""
        cutoff = self.clock() - self.max_age_s
        if self._oldest is None or self._oldest >= cutoff:
            return 0
        with self._transaction() as db:
            deleted = db.execute("DELETE FROM outbox WHERE created < ? RETURNING kind, bytes", (cutoff,)).fetchall()
        gone: dict[str, int] = {}
        for kind, size in deleted:
            gone[kind] = gone.get(kind, 0) + 1
            self._depth -= 1
            self._bytes -= size
        for kind, count in gone.items():
            self.metrics.outbox_discarded.labels("age", kind).inc(count)
        self._refresh_oldest()
        return sum(gone.values())

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def size_bytes(self) -> int:
        return self._bytes

    @property
    def oldest(self) -> float | None:
        """Wall-clock time the oldest row was stored (None when empty)."""
        return self._oldest

    # ------------------------------------------------------------------ internals

    def _shrink(self) -> None:
        """Over the byte bound: drop escalations, dead letters, then predictions, oldest first, down to 95 %."""
        target = int(self.max_bytes * 0.95)
        excess = self._bytes - target
        dropped_rows = dropped_bytes = 0
        with self._transaction() as db:
            for kind in ("escalation", "deadletter", "prediction"):
                drop: list[tuple[int]] = []
                for seq, size in db.execute("SELECT seq, bytes FROM outbox WHERE kind = ? ORDER BY seq", (kind,)):
                    if excess <= 0:
                        break
                    drop.append((seq,))
                    excess -= size
                    dropped_rows += 1
                    dropped_bytes += size
                if drop:
                    db.executemany("DELETE FROM outbox WHERE seq = ?", drop)
                    self.metrics.outbox_discarded.labels("bytes", kind).inc(len(drop))
                if excess <= 0:
                    break
        self._depth -= dropped_rows
        self._bytes -= dropped_bytes
        self._refresh_oldest()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise OutboxError("the outbox is not open")
        return self._db

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn(), self.path)

    def _refresh(self) -> None:
        try:
            depth, size, oldest = (
                self._conn().execute("SELECT COUNT(*), COALESCE(SUM(bytes), 0), MIN(created) FROM outbox").fetchone()
            )
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot read the outbox {self.path}: {exc}") from exc
        self._depth, self._bytes, self._oldest = int(depth), int(size), oldest

    def _refresh_oldest(self) -> None:
        try:
            (self._oldest,) = self._conn().execute("SELECT MIN(created) FROM outbox").fetchone()
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot read the outbox {self.path}: {exc}") from exc

    def _levels(self) -> Iterable[tuple[str, str, float]]:
        oldest = self._oldest
        yield "outbox_depth", "predictions and dead letters waiting for Kafka", float(self._depth)
        yield "outbox_bytes", "bytes held by the outbox (rows, as charged against outbox_max_bytes)", float(self._bytes)
        age = 0.0 if oldest is None else max(0.0, self.clock() - oldest)
        yield "outbox_oldest_age_seconds", "age of the oldest row waiting for Kafka", age


def _size(key: bytes | None, value: bytes) -> int:
    return len(value) + (len(key) if key else 0) + ROW_OVERHEAD


class _Transaction:
    """BEGIN IMMEDIATE .. COMMIT (or ROLLBACK), with sqlite3 errors translated to OutboxError."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self.db = db
        self.path = path

    def __enter__(self) -> sqlite3.Connection:
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot write the outbox {self.path}: {exc}") from exc
        return self.db

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc_type is None:
            try:
                self.db.execute("COMMIT")
                return
            except sqlite3.Error as error:
                self.db.execute("ROLLBACK")
                raise OutboxError(f"cannot write the outbox {self.path}: {error}") from error
        self.db.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise OutboxError(f"cannot write the outbox {self.path}: {exc}") from exc
