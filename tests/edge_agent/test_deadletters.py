"""A flood of bad payloads is counted in full, logged once per reason, and dead-lettered only at the configured rate."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from edge_agent.config import EdgeSettings
from edge_agent.daemon import EdgeDaemon
from edge_agent.errors import Rejected
from edge_agent.ingest import Delivery
from edge_agent.window import AssetPolicy, WindowStage
from forewarn.contracts import DeadLetter, Telemetry, decode
from models.windowing import WindowSpec

SPEC = WindowSpec(channels=("temp",), length_s=60.0, hop_s=20.0, steps=6, grace_s=10.0)


def test_a_flood_is_counted_logged_once_and_paced(tmp_path: Path, bundle: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = EdgeSettings(state_dir=tmp_path, edge={"model": bundle, "deadletter_rate": 3, "unknown_assets": "reject"})
    daemon = EdgeDaemon(settings)
    daemon.windows = WindowStage(SPEC, AssetPolicy(unknown="reject"), daemon.metrics)
    bad = [
        Delivery("forewarn/plant1/a1/telemetry", b"{" * 100, i, 1, 0.0, rejected=Rejected("invalid", "broken JSON"))
        for i in range(50)
    ]
    stranger = Telemetry(site="plant1", asset_id="x9", seq=0, timestamps=[1_767_225_600.0], channels={"temp": [1.0]})
    bad.append(Delivery("forewarn/plant1/x9/telemetry", b"{}", 99, 1, 0.0, message=stranger))
    with caplog.at_level(logging.WARNING, logger="edge_agent.daemon"):
        letters = [r for d in bad if (r := daemon._fold(d)) is not None]
    assert 3 <= len(letters) <= 4, "one second's worth at deadletter_rate=3"
    registry = daemon.metrics.registry
    assert registry.get_sample_value("forewarn_edge_bad_messages_total", {"reason": "invalid"}) == 50
    assert registry.get_sample_value("forewarn_edge_bad_messages_total", {"reason": "unknown_asset"}) == 1
    assert registry.get_sample_value("forewarn_edge_deadletters_suppressed_total") == 51 - len(letters)
    assert len([r for r in caplog.records if "refused a payload" in r.getMessage()]) == 2, "once per reason"
    letter = decode(letters[0].value, DeadLetter)
    assert letter.component == "edge-agent" and letter.source == "forewarn/plant1/a1/telemetry" and letter.payload_bytes == 100
    assert letters[0].kind == "deadletter" and letters[0].topic == settings.topics.kafka_deadletter
