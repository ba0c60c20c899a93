"""Operators' verdicts become a dataset directory's labels: confirmed faults as episodes, false alarms as normal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from forewarn.contracts import AlertCommand, FaultEpisode, encode
from forewarn.dataset import LABELS, label_at, read_labels, read_meta
from stream.labels import VERDICTS, export_labels
from stream.rules import apply_command, apply_late_verdict
from stream.state import EntityState, FaultTrack
from tests.stream.test_store import alert

T0 = 1_800_000_000.0


def row(alert_id: str, asset: str, fault: str, verdict: str | None, found: str | None = None) -> dict[str, Any]:
    return {
        "id": alert_id,
        "site": "plant1",
        "asset_id": asset,
        "fault": fault,
        "first_seen": T0,
        "last_seen": T0 + 600,
        "resolved_at": T0 + 3600,
        "verdict": verdict,
        "verdict_fault": found,
        "verdict_by": "ana",
        "verdict_at": T0 + 3600,
        "verdict_note": None,
    }


def test_export_writes_confirmed_faults_and_false_alarms_and_keeps_existing_labels(tmp_path: Path) -> None:
    earlier = FaultEpisode(asset_id="P-9", fault="imbalance", onset=T0 - 86_400, failure=T0 - 80_000)
    (tmp_path / LABELS).write_bytes(encode(earlier) + b"\n")
    rows = [
        row("P-1:bearing_outer_race:1", "P-1", "bearing_outer_race", "confirmed", "bearing_inner_race"),
        row("P-2:cavitation:1", "P-2", "cavitation", "false_alarm"),
        row("P-3:seal_leak:1", "P-3", "seal_leak", None),  # no verdict: no label
    ]
    assert export_labels(rows, tmp_path) == (2, 2)
    assert export_labels(rows, tmp_path) == (0, 2)  # idempotent
    episodes = read_labels(tmp_path)
    assert len(episodes) == 3 and earlier in episodes
    assert label_at(episodes, "P-1", T0 + 100) == ("bearing_inner_race", None)  # the fault found, no false failure time
    assert label_at(episodes, "P-1", T0 + 4000)[0] == "normal"  # it ended at the resolution
    assert label_at(episodes, "P-2", T0 + 100)[0] == "normal"
    assert read_meta(tmp_path).source == "forewarn alerts export-labels"
    assert len((tmp_path / VERDICTS).read_text().splitlines()) == 2


def test_a_verdict_rides_on_acknowledge_and_resolve_and_after_the_resolution() -> None:
    opened = alert(1)
    state = EntityState(kind="asset", id=opened.asset_id, site=opened.site)
    state.tracks[opened.fault] = FaultTrack(alert=opened)
    ack = AlertCommand(id="c1", alert_id=opened.id, action="acknowledge", by="ana", ts=T0, verdict="confirmed", note="noisy")
    (acked,) = apply_command(state, ack, T0 + 10)
    assert acked.state.value == "acknowledged" and acked.verdict == "confirmed" and acked.verdict_by == "ana"
    assert acked.operator_note == "noisy"  # the reason given is kept with the alert
    resolve = AlertCommand(id="c2", alert_id=opened.id, action="resolve", by="bo", ts=T0, verdict="maintenance", note="seal")
    (resolved,) = apply_command(state, resolve, T0 + 20)
    assert resolved.resolved_by == "bo" and resolved.verdict == "maintenance" and resolved.verdict_note == "seal"
    later = AlertCommand(id="c3", alert_id=opened.id, action="resolve", by="cy", ts=T0, verdict="false_alarm")
    changed = apply_late_verdict(resolved, later, T0 + 30)
    assert changed is not None and changed.revision == resolved.revision + 1 and changed.verdict == "false_alarm"
    assert apply_late_verdict(acked, later, T0 + 30) is None  # an active alert takes verdicts through its owner's state
