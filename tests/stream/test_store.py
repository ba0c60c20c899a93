"""The database keeps one row per alert and one history entry per revision (SQLite, PostgreSQL) through replays and outages."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from forewarn.contracts import Alert, AlertState, Severity
from stream.db import current_revision, head_revision, make_engine, upgrade
from stream.errors import DatabaseError
from stream.sink import AsyncSink
from stream.store import AlertQuery, AlertStore

T0 = 1_800_000_000.0


def alert(revision: int, **changes: object) -> Alert:
    base = {
        "id": "p1:imbalance:1800000000000",
        "site": "plant1",
        "asset_id": "p1",
        "asset_type": "pump",
        "gateway_id": "gw1",
        "fault": "imbalance",
        "severity": Severity.MEDIUM,
        "state": AlertState.OPEN,
        "first_seen": T0,
        "last_seen": T0 + revision,
        "occurrences": 3 + revision,
        "peak_probability": 0.85,
        "last_probability": 0.8,
        "revision": revision,
        "updated_at": T0 + revision,
    }
    return Alert.model_validate(base | changes)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, unique: str) -> Iterator[str]:
    """A migrated, empty database: a SQLite file, or a schema of its own in the real PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'alerts.db'}"
        upgrade(url)
        yield url
        return
    base = request.getfixturevalue("postgres_url")
    schema = f"fw_{unique}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{base}?options=-csearch_path%3D{schema}"
    try:
        upgrade(url)
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def test_migrations_reach_head_and_are_idempotent(db_url: str) -> None:
    assert upgrade(db_url) == head_revision()
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_revisions_apply_once_in_any_order(db_url: str) -> None:
    store = AlertStore(db_url)
    try:
        updates = [alert(1), alert(2), alert(3, state=AlertState.ACKNOWLEDGED, acknowledged_by="ana", acknowledged_at=T0 + 3)]
        assert store.write([updates[2], updates[0]]) == 2
        assert store.write(updates) == 0  # everything not newer than revision 3 is ignored
        assert store.write(updates + updates) == 0  # a replay
        assert store.write([alert(2)]) == 0  # an old revision arriving late
        rows, total = store.list_alerts(AlertQuery())
        assert total == 1 and rows[0]["revision"] == 3 and rows[0]["state"] == "acknowledged"
        history = store.get_alert(updates[0].id)
        assert history is not None
        assert [(h["revision"], h["change"]) for h in history["history"]] == [(1, "opened"), (3, "acknowledged")]
        resolved = alert(4, state=AlertState.RESOLVED, resolved_at=T0 + 4, resolution="operator", severity=Severity.HIGH)
        assert store.write([resolved]) == 1
        assert store.counts() == {"resolved": 1}
        assert store.event_count() == 3
    finally:
        store.close()


def test_lists_filter_and_page_worst_first(db_url: str) -> None:
    store = AlertStore(db_url)
    try:
        batch = [
            alert(1, id=f"a{i}:imbalance:1", asset_id=f"a{i}", severity=list(Severity)[i % 4], last_seen=T0 + i)
            for i in range(10)
        ]
        store.write(batch)
        rows, total = store.list_alerts(AlertQuery(states=("open",), limit=3))
        assert total == 10 and [r["severity"] for r in rows] == ["critical", "critical", "high"]
        page2, _ = store.list_alerts(AlertQuery(states=("open",), limit=3, offset=3))
        assert not {r["id"] for r in rows} & {r["id"] for r in page2}
        only, total = store.list_alerts(AlertQuery(asset_id="a7"))
        assert total == 1 and only[0]["id"] == "a7:imbalance:1"
        assert store.list_alerts(AlertQuery(states=("resolved",)))[1] == 0
    finally:
        store.close()


def test_a_database_outage_delays_writes_and_loses_nothing(db_url: str, tmp_path: Path) -> None:
    """The sink keeps retrying while the database is unreachable, without blocking the event loop."""
    good = AlertStore(db_url)
    # unreachable: nothing listens on port 9; a SQLite "file" that is a directory cannot be opened
    dead_url = "postgresql+psycopg://postgres@127.0.0.1:9/none" if "postgresql" in db_url else f"sqlite:///{tmp_path}"
    broken = AlertStore(dead_url)
    sink = AsyncSink(broken, retry_max_s=0.2)

    async def scenario() -> int:
        write = asyncio.create_task(sink.write([alert(1), alert(2)]))
        ticks = 0
        while sink.retries < 3:  # the loop stays responsive during the outage
            await asyncio.sleep(0.01)
            ticks += 1
        assert not write.done() and sink.outage_since is not None
        sink.store = good  # the database comes back
        applied = await asyncio.wait_for(write, 10)
        assert ticks > 3
        return applied

    try:
        assert asyncio.run(scenario()) == 2
        assert sink.outage_since is None
        rows, _ = good.list_alerts(AlertQuery())
        assert rows[0]["revision"] == 2
    finally:
        sink.close()
        broken.close()


def test_an_unknown_newer_schema_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(DatabaseError, match="newer version"):
        upgrade(url)


def test_a_verdict_is_stored_with_the_alert_and_named_in_its_history(db_url: str) -> None:
    store = AlertStore(db_url)
    try:
        resolved = {"state": AlertState.RESOLVED, "resolved_at": T0 + 5, "resolution": "operator", "resolved_by": "ana"}
        store.write([alert(1), alert(2, **resolved, operator_note="bearing replaced")])
        store.write([alert(3, state=AlertState.RESOLVED, resolved_at=T0 + 5, verdict="confirmed", verdict_fault="looseness")])
        stored = store.get_alert(alert(1).id)
        assert stored is not None and stored["verdict"] == "confirmed" and stored["verdict_fault"] == "looseness"
        assert [h["change"] for h in stored["history"]] == ["opened", "resolved", "verdict"]
        assert stored["history"][1]["by"] == "ana" and stored["history"][1]["note"] == "bearing replaced"
        rows, total = store.list_alerts(AlertQuery(verdict_only=True))
        assert total == 1 and rows[0]["id"] == alert(1).id
    finally:
        store.close()
