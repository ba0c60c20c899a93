"""The gateway's retained status reports its vitals while online, and its last-will and goodbye say offline."""

from __future__ import annotations

import asyncio
import urllib.request

from edge_agent.health import Health, Vitals
from edge_agent.metrics import EdgeMetrics
from forewarn.contracts import GatewayStatus, decode
from tests.edge_agent.fakes import FakeMqtt


def _vitals() -> Vitals:
    return Vitals(model_version="slm-abc", assets=3, windows_scored=42, outbox_depth=7, uplink=False)


def test_online_status_carries_the_vitals_and_the_will_says_offline() -> None:
    clock = iter([1_800_000_000.0, 1_800_000_060.0, 1_800_000_061.0]).__next__
    health = Health("gw1", "p1", "forewarn/gateways/gw1/status", 30, _vitals, clock=clock)
    online = decode(health.birth(), GatewayStatus)
    assert (online.state, online.assets, online.windows_scored, online.outbox_depth, online.uplink) == (
        "online",
        3,
        42,
        7,
        "down",
    )
    assert online.uptime_s == 60.0 and online.model_version == "slm-abc"
    topic, payload = health.will()
    assert topic == "forewarn/gateways/gw1/status" and decode(payload, GatewayStatus).state == "offline"


def test_the_status_is_refreshed_retained_every_interval() -> None:
    mqtt = FakeMqtt()
    health = Health("gw1", "p1", "forewarn/gateways/gw1/status", 0.05, _vitals)

    async def scenario() -> None:
        health.start(mqtt)
        await asyncio.sleep(0.28)
        await health.stop()

    asyncio.run(scenario())
    assert 2 <= len(mqtt.published) <= 6  # every 50 ms for 280 ms, give or take a loaded machine
    assert all(topic == "forewarn/gateways/gw1/status" and qos == 1 and retain for topic, _, qos, retain in mqtt.published)


def test_metrics_are_served_over_http_with_the_stages_levels() -> None:
    metrics = EdgeMetrics()
    metrics.watch(lambda: [("outbox_depth", "rows waiting", 5.0), ("late_samples_total", "late", 2.0)])
    metrics.messages.labels("telemetry").inc(3)
    metrics.window_latency_seconds.observe(0.004)
    port = metrics.serve("127.0.0.1", 0)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    finally:
        metrics.close()
    for line in (
        'forewarn_edge_messages_total{kind="telemetry"} 3.0',
        "forewarn_edge_outbox_depth 5.0",
        "forewarn_edge_late_samples_total 2.0",
        'forewarn_edge_window_latency_seconds_bucket{le="0.005"} 1.0',
    ):
        assert line in text


def test_a_gateway_that_places_nothing_says_why_once_and_says_when_it_recovers() -> None:
    from edge_agent.health import InputWatch

    now = [0.0]
    watch = InputWatch(60, ["forewarn/plant1/+/telemetry", "forewarn/plant1/+/log"], clock=lambda: now[0])
    now[0] = 59.0
    assert watch.check() is None and watch.warning is None
    now[0] = 61.0
    line = watch.check()
    assert line is not None and line.startswith("nothing received on forewarn/plant1/+/telemetry and forewarn/plant1/+/log")
    assert "site" in line and watch.warning == line
    now[0] = 70.0
    assert watch.check() is None, "said once, not at every check"
    for _ in range(3):
        watch.refused("asset_mismatch")
    watch.saw(received=3, placed=0)
    line = watch.check()
    assert line is not None and "3 messages received" in line and "none placed" in line and "asset_mismatch 3" in line
    watch.saw(received=1, placed=1)
    assert watch.check() == "messages are placed in windows again: scoring resumed" and watch.warning is None
    status = Health("gw1", "p1", "t", 30, lambda: Vitals("slm-abc", 0, 0, 0, True, warning="nothing received"))
    assert decode(status.birth(), GatewayStatus).warning == "nothing received"
