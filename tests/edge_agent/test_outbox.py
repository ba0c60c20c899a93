"""Stored predictions survive a kill -9, leave only when acknowledged, and the bounds discard by policy, counted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edge_agent.errors import OutboxError
from edge_agent.metrics import EdgeMetrics
from edge_agent.outbox import ROW_OVERHEAD, Outbox, Record


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _rec(i: int, kind: str = "prediction", size: int = 100) -> Record:
    prefix = "gw:a" if kind == "prediction" else "dl"
    return Record(f"{prefix}:{i}", kind, "forewarn.predictions", b"a", b"x" * size)  # type: ignore[arg-type]


def _outbox(tmp_path: Path, max_bytes: int = 10_000_000, max_age_s: float = 3600.0, clock: Clock | None = None) -> Outbox:
    box = Outbox(tmp_path / "outbox.sqlite3", EdgeMetrics(), max_bytes, max_age_s, clock=clock or Clock())
    box.start()
    return box


def _discarded(box: Outbox, reason: str, kind: str) -> float:
    value = box.metrics.registry.get_sample_value("forewarn_edge_outbox_discarded_total", {"reason": reason, "kind": kind})
    return value or 0.0


def test_rows_leave_only_when_deleted_and_survive_reopening(tmp_path: Path) -> None:
    box = _outbox(tmp_path)
    assert box.put([_rec(i) for i in range(5)]) == 5
    assert box.put([_rec(0), _rec(5)]) == 1, "an id already stored is kept once"
    rows = box.take(3)
    assert [r.id for r in rows] == ["gw:a:0", "gw:a:1", "gw:a:2"]
    box.delete(r.seq for r in rows)
    assert box.depth == 3 and box.size_bytes == 3 * (101 + ROW_OVERHEAD)
    box.stop()
    again = _outbox(tmp_path)
    assert [r.id for r in again.take(10)] == ["gw:a:3", "gw:a:4", "gw:a:5"]
    assert again.depth == 3 and again.size_bytes == 3 * (101 + ROW_OVERHEAD)
    again.stop()


def test_take_splits_live_from_history_by_store_time(tmp_path: Path) -> None:
    clock = Clock()
    box = _outbox(tmp_path, clock=clock)
    box.put([_rec(1)])
    clock.now += 500
    box.put([_rec(2)])
    cutoff = clock.now - 120
    assert [r.id for r in box.take(10, since=cutoff)] == ["gw:a:2"]
    assert [r.id for r in box.take(10, before=cutoff)] == ["gw:a:1"]
    box.stop()


def test_over_the_byte_bound_dead_letters_go_first_then_oldest_predictions(tmp_path: Path) -> None:
    row = 1000 + 1 + ROW_OVERHEAD
    box = _outbox(tmp_path, max_bytes=10 * row)
    box.put([_rec(i, size=1000) for i in range(6)])
    box.put([_rec(100 + i, "deadletter", size=1000) for i in range(3)])
    assert box.depth == 9
    box.put([_rec(6, size=1000), _rec(7, size=1000)])  # 11 rows: over; shrink to 95 % = 9.5 rows -> 9 rows
    left = [r.id for r in box.take(100)]
    assert box.size_bytes <= 0.95 * box.max_bytes
    assert _discarded(box, "bytes", "deadletter") == 2
    assert "dl:102" in left and "dl:100" not in left, "dead letters go oldest first"
    box.put([_rec(8 + i, size=1000) for i in range(3)])
    left = [r.id for r in box.take(100)]
    assert not any(i.startswith("dl:") for i in left), "every dead letter went before any prediction"
    assert _discarded(box, "bytes", "prediction") >= 1
    assert left[-1] == "gw:a:10" and "gw:a:0" not in left, "the newest predictions are kept"
    box.stop()


def test_rows_past_the_age_bound_are_discarded_and_counted(tmp_path: Path) -> None:
    clock = Clock()
    box = _outbox(tmp_path, max_age_s=3600, clock=clock)
    box.put([_rec(1), _rec(2, "deadletter")])
    clock.now += 1800
    box.put([_rec(3)])
    assert box.expire() == 0
    clock.now += 1801
    assert box.expire() == 2
    assert [r.id for r in box.take(10)] == ["gw:a:3"]
    assert _discarded(box, "age", "prediction") == 1 and _discarded(box, "age", "deadletter") == 1
    assert box.oldest == clock.now - 1801
    box.stop()


def test_an_unusable_path_is_an_outbox_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    box = Outbox(tmp_path / "file" / "outbox.sqlite3", EdgeMetrics(), 1_000_000, 60)
    with pytest.raises(OutboxError, match="cannot open"):
        box.start()


_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from edge_agent.metrics import EdgeMetrics
    from edge_agent.outbox import Outbox, Record

    box = Outbox(Path(sys.argv[1]), EdgeMetrics(), 1 << 30, 86400.0)
    box.start()
    i = 0
    while True:
        box.put([Record(f"gw:a:{i + k}", "prediction", "t", b"a", b"v" * 200) for k in range(10)])
        i += 10
        print(i, flush=True)  # every id below i is committed
    """
)


def test_a_kill_9_loses_nothing_that_was_committed(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, cwd=Path(__file__).parents[2], text=True
    )
    try:
        assert child.stdout is not None
        committed = 0
        for line in child.stdout:
            committed = int(line)
            if committed >= 2000:
                break
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    box = _outbox(tmp_path)
    ids = {r.id for r in box.take(1_000_000)}
    assert {f"gw:a:{i}" for i in range(committed)} <= ids
    assert box.depth == len(ids)
    box.stop()
