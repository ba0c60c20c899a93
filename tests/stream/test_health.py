"""A worker's health says what is wrong, from what it observes: a database outage or hang, a consumer that folds nothing."""

from __future__ import annotations

from stream.app import assess

NOW = 1_800_000_000.0


def health(**changes: object) -> tuple[str, list[str]]:
    observed: dict[str, object] = {
        "started_at": NOW - 600,
        "owned_partitions": 4,
        "last_batch_at": NOW - 1,
        "tick_s": 1.0,
        "db_outage_since": None,
        "db_writing_since": None,
    }
    return assess(NOW, **(observed | changes))  # type: ignore[arg-type]


def test_health_names_each_problem() -> None:
    assert health() == ("ok", [])
    status, problems = health(db_outage_since=NOW - 42)
    assert status == "degraded" and problems == ["database unavailable for 42 s (alert writes held and retried)"]
    status, problems = health(db_writing_since=NOW - 30)
    assert status == "degraded" and "pending for 30 s" in problems[0]
    assert health(db_writing_since=NOW - 1) == ("ok", [])  # an ordinary write
    status, problems = health(last_batch_at=NOW - 45)
    assert status == "degraded" and problems == ["consumer stuck: no batch folded for 45 s"]
    assert health(last_batch_at=None, started_at=NOW - 5, owned_partitions=0)[0] == "starting"
    assert health(last_batch_at=None, started_at=NOW - 300)[0] == "degraded"  # partitions, and never a batch
    assert health(owned_partitions=0) == ("idle", [])
