"""A real worker on tansu makes one alert row per problem, serves it (REST, SSE, MQTT, CLI), survives replays and a crash."""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from click.testing import CliRunner
from paho.mqtt.enums import CallbackAPIVersion

from forewarn.cli import main
from forewarn.contracts import DeadLetter, FaultPrediction, decode, encode
from forewarn.dataset import read_labels
from stream.synthetic import prediction
from tests.stream.conftest import PERSONAL_TOKEN, TOKEN, RunningWorker

FAULT = "bearing_outer_race"


def episode(asset: str, start: float, n: int = 8, fault: str = FAULT, ttf: float | None = 30.0) -> list[FaultPrediction]:
    """Two healthy windows, then a fault the model is sure of."""
    return [
        prediction(asset, start + 10 * i, fault if i >= 2 else "normal", 0.93, ttf_hours=ttf if i >= 2 else None)
        for i in range(n)
    ]


def test_an_alert_reaches_the_database_the_feed_and_mqtt(either_worker: RunningWorker) -> None:
    worker = either_worker  # on both delivery paths
    received: queue.Queue[bytes] = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.on_message = lambda c, u, m: received.put(bytes(m.payload))
    client.connect("127.0.0.1", 1883)
    client.subscribe(f"{worker.mqtt_alert_prefix}/plant1/feed-1", qos=1)
    client.loop_start()
    try:
        start = time.time() - 200
        worker.produce([*episode("feed-1", start), (b"feed-1", b"{not json")])
        (alert,) = worker.wait_for(lambda: worker.alerts_of("feed-1"), 30, "the alert row")
        assert alert["fault"] == FAULT and alert["state"] == "open" and alert["severity"] == "high"
        assert alert["id"] == f"feed-1:{FAULT}:{round((start + 40) * 1000)}"  # decided by the third hit
        assert alert["evidence"]["channels"][0]["channel"] == "vibration_rms"
        message = json.loads(received.get(timeout=15))
        assert message["id"] == alert["id"]
        health = worker.health()
        assert health["dead_letters"] >= 1
    finally:
        client.loop_stop()
        client.disconnect()


def test_a_batch_mixing_bad_and_good_payloads_dead_letters_the_bad_and_folds_the_rest(worker: RunningWorker) -> None:
    start = time.time() - 300
    good = episode("mixed-1", start)
    bad = [
        (b"mixed-1", b"{not json, mixed-1"),
        (b"someone-else", encode(good[3])),  # a valid prediction under the wrong key: another worker's partition
        (b"mixed-1", b'{"asset_id": "mixed-1"}'),
    ]
    worker.produce([good[0], bad[0], *good[1:4], bad[1], *good[4:], bad[2]])  # one burst: a fetch, a batch
    (alert,) = worker.wait_for(lambda: worker.alerts_of("mixed-1"), 30, "the alert")
    assert alert["id"] == f"mixed-1:{FAULT}:{round((start + 40) * 1000)}"  # every good one folded, in order

    def mine(values: list[bytes]) -> list[DeadLetter]:
        letters = [decode(v, DeadLetter) for v in values]
        return [d for d in letters if "mixed-1" in d.payload]

    letters = mine(worker.read_topic(worker.deadletter, lambda values: len(mine(values)) >= 3))
    assert sorted(d.payload for d in letters) == sorted(v.decode() for _, v in bad)
    assert all(d.source and d.source.startswith(f"kafka:{worker.predictions}:") for d in letters)
    assert any("not the asset id" in d.reason for d in letters)


def test_rest_lists_filters_pages_and_guards_writes(worker: RunningWorker) -> None:
    start = time.time() - 300
    worker.produce([p for a in ("rest-1", "rest-2", "rest-3") for p in episode(a, start)])
    worker.wait_for(lambda: all(worker.alerts_of(a) for a in ("rest-1", "rest-2", "rest-3")), 30, "three alerts")
    status, page = worker.request("GET", f"/api/alerts?state=open&fault={FAULT}&limit=2")
    assert status == 200 and len(page["alerts"]) == 2 and page["total"] >= 3
    status, page2 = worker.request("GET", f"/api/alerts?state=open&fault={FAULT}&limit=2&offset=2")
    assert not {a["id"] for a in page["alerts"]} & {a["id"] for a in page2["alerts"]}
    assert worker.request("GET", "/api/alerts?state=bogus")[0] == 400
    alert_id = worker.alerts_of("rest-1")[0]["id"]
    status, one = worker.request("GET", f"/api/alerts/{alert_id}")
    assert status == 200 and one["history"][0]["change"] == "opened"
    assert worker.request("GET", "/api/alerts/nope:x:1")[0] == 404
    assert worker.request("POST", f"/api/alerts/{alert_id}/acknowledge", {})[0] == 401
    assert worker.request("POST", f"/api/alerts/{alert_id}/acknowledge", {}, token="wrong")[0] == 401
    status, answer = worker.request("POST", f"/api/alerts/{alert_id}/resolve", {"by": "ana"}, token=TOKEN)
    assert status == 200 and answer["status"] == "resolved" and answer["alert"]["resolution"] == "operator"
    resolved = worker.wait_for(lambda: [a for a in worker.alerts_of("rest-1") if a["state"] == "resolved"], 20, "resolution")
    assert resolved[0]["resolution"] == "operator"
    status, answer = worker.request("POST", f"/api/alerts/{alert_id}/resolve", {"by": "ana"}, token=TOKEN)
    assert status == 409 and "already resolved" in answer["error"]  # nothing to do is said, not "accepted"
    late = {"by": "ana", "verdict": "false_alarm", "note": "pump was on test"}
    status, answer = worker.request("POST", f"/api/alerts/{alert_id}/resolve", late, token=TOKEN)
    assert status == 200 and answer["alert"]["verdict"] == "false_alarm"  # a verdict after the resolution is recorded
    assert worker.get(f"/api/alerts/{alert_id}")["history"][-1]["change"] == "verdict"
    assert worker.request("POST", "/api/alerts/rest-1:imbalance:1/acknowledge", {}, token=TOKEN)[0] == 404


def test_sse_sends_a_snapshot_then_each_change(worker: RunningWorker) -> None:
    events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()

    def listen() -> None:
        with urllib.request.urlopen(worker.url + "/api/events", timeout=30) as stream:
            name = None
            for raw in stream:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: ") and name:
                    events.put((name, json.loads(line[6:])))
                    if name == "alert" and json.loads(line[6:])["asset_id"] == "sse-1":
                        return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    name, snapshot = events.get(timeout=10)
    assert name == "snapshot" and isinstance(snapshot["alerts"], list)
    worker.produce(episode("sse-1", time.time() - 100))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        name, data = events.get(timeout=30)
        if name == "alert" and data["asset_id"] == "sse-1":
            assert data["state"] == "open" and data["revision"] >= 1
            break
    thread.join(5)


def test_cli_lists_and_acknowledges_through_the_feed(worker: RunningWorker) -> None:
    worker.produce(episode("cli-1", time.time() - 100))
    (alert,) = worker.wait_for(lambda: worker.alerts_of("cli-1"), 30, "the alert")
    runner = CliRunner()
    env = {k: v for k, v in worker.env.items() if k.startswith("FOREWARN_")}
    listed = runner.invoke(main, ["alerts", "list", "--json", "--state", "all", "--state-dir", str(worker.state_dir)], env=env)
    assert listed.exit_code == 0, listed.output
    assert alert["id"] in {a["id"] for a in json.loads(listed.output)}
    table = runner.invoke(main, ["alerts", "list", "--state-dir", str(worker.state_dir)], env=env)
    assert alert["id"] in table.output
    acked = runner.invoke(main, ["alerts", "ack", alert["id"], "--by", "cli-user", "--state-dir", str(worker.state_dir)], env=env)
    assert acked.exit_code == 0, acked.output
    assert f"{alert['id']}: acknowledged by cli-user" in acked.output  # what happened, once it happened
    (now,) = [a for a in worker.alerts_of("cli-1") if a["state"] == "acknowledged"]
    assert now["acknowledged_by"] == "cli-user"
    again = runner.invoke(main, ["alerts", "ack", alert["id"], "--state-dir", str(worker.state_dir)], env=env)
    assert again.exit_code == 1 and "nothing done" in again.output and "already acknowledged by cli-user" in again.output
    unknown = runner.invoke(main, ["alerts", "resolve", "cli-1:nope:1", "--state-dir", str(worker.state_dir)], env=env)
    assert unknown.exit_code == 1 and "no alert" in unknown.output
    shown = runner.invoke(main, ["alerts", "show", alert["id"], "--state-dir", str(worker.state_dir)], env=env)
    assert shown.exit_code == 0, shown.output
    assert "opened" in shown.output and "acknowledged" in shown.output and "by cli-user" in shown.output
    filtered = runner.invoke(
        main,
        ["alerts", "list", "--json", "--site", "plant1", "--severity", alert["severity"], "--state-dir", str(worker.state_dir)],
        env=env,
    )
    assert alert["id"] in {a["id"] for a in json.loads(filtered.output)}
    other = runner.invoke(
        main, ["alerts", "list", "--json", "--site", "elsewhere", "--state-dir", str(worker.state_dir)], env=env
    )
    assert json.loads(other.output) == []
    resolve = ["alerts", "resolve", alert["id"], "--by", "bo", "--verdict", "confirmed", "--found-fault", "looseness"]
    resolved = runner.invoke(main, [*resolve, "--state-dir", str(worker.state_dir)], env=env)
    assert resolved.exit_code == 0 and "resolved, verdict confirmed (looseness) by bo" in resolved.output, resolved.output
    out = worker.state_dir / "labels-out"
    exported = runner.invoke(main, ["alerts", "export-labels", "--out", str(out), "--state-dir", str(worker.state_dir)], env=env)
    assert exported.exit_code == 0, exported.output
    assert {(e.asset_id, e.fault) for e in read_labels(out)} >= {("cli-1", "looseness")}
    missing = runner.invoke(main, ["alerts", "ack", "x:y:1", "--url", "http://127.0.0.1:9"], env=env)
    assert missing.exit_code != 0 and "cannot reach" in missing.output


def test_shelving_and_out_of_service_through_the_cli(worker: RunningWorker) -> None:
    worker.produce(episode("shelf-1", time.time() - 100))
    (alert,) = worker.wait_for(lambda: worker.alerts_of("shelf-1"), 30, "the alert")
    runner = CliRunner()
    env = {k: v for k, v in worker.env.items() if k.startswith("FOREWARN_")}
    where = ["--state-dir", str(worker.state_dir)]
    shelve = ["alerts", "--token", PERSONAL_TOKEN, "shelve", alert["id"], "--minutes", "30", "--reason", "pump swap"]
    shelved = runner.invoke(main, [*shelve, "--by", "someone", *where], env=env)
    assert shelved.exit_code == 0 and f"{alert['id']}: shelved until" in shelved.output, shelved.output
    stored = worker.get(f"/api/alerts/{alert['id']}")
    # the personal token's holder is recorded, whatever name was typed
    assert stored["suppression"] == "shelved" and stored["shelved_by"] == "olga" and stored["suppression_reason"] == "pump swap"
    assert 29 * 60 < stored["shelved_until"] - time.time() <= 30 * 60
    assert stored["history"][-1]["change"] == "shelved" and stored["history"][-1]["by"] == "olga"
    unshelved = runner.invoke(main, ["alerts", "unshelve", alert["id"], *where], env=env)
    assert unshelved.exit_code == 0, unshelved.output
    again = runner.invoke(main, ["alerts", "unshelve", alert["id"], *where], env=env)
    assert again.exit_code == 1 and "not shelved" in again.output
    out = runner.invoke(main, ["alerts", "out-of-service", "shelf-1", "--reason", "overhaul", *where], env=env)
    assert out.exit_code == 0, out.output
    worker.wait_for(lambda: worker.get(f"/api/alerts/{alert['id']}")["suppression"] == "out_of_service", 20, "out of service")
    back = runner.invoke(main, ["alerts", "in-service", "shelf-1", *where], env=env)
    assert back.exit_code == 0, back.output
    worker.wait_for(lambda: worker.get(f"/api/alerts/{alert['id']}")["suppression"] is None, 20, "back in service")
    kpis = worker.get("/api/kpis?hours=1")
    assert kpis["sites"]["plant1"]["annunciated"] >= 1 and kpis["standing"] >= 1
    assert any(c["asset_id"] == "shelf-1" for c in kpis["top_contributors"]) or len(kpis["top_contributors"]) == 10
    listed = runner.invoke(main, ["alerts", "kpis", "--json", "--hours", "1", *where], env=env)
    assert listed.exit_code == 0 and json.loads(listed.output)["sites"]["plant1"]["annunciated"] >= 1
    assert worker.request("GET", "/api/kpis?hours=nope")[0] == 400


def test_alerts_reach_mqtt_while_the_database_is_locked_and_health_says_so(worker: RunningWorker) -> None:
    received: queue.Queue[bytes] = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.on_message = lambda c, u, m: received.put(bytes(m.payload))
    client.connect("127.0.0.1", 1883)
    client.subscribe(f"{worker.mqtt_alert_prefix}/plant1/locked-1", qos=1)
    client.loop_start()
    lock = sqlite3.connect(worker.state_dir / "forewarn.db", timeout=1)
    try:
        lock.execute("BEGIN EXCLUSIVE")  # another process holds the database: every write waits
        worker.produce(episode("locked-1", time.time() - 100))
        message = json.loads(received.get(timeout=15))  # SCADA sees the alert without waiting for the database
        assert message["asset_id"] == "locked-1" and message["state"] == "open"

        def degraded() -> dict[str, Any] | None:
            status, answer = worker.request("GET", "/api/health")
            return answer if status == 503 else None

        health = worker.wait_for(degraded, 20, "health to answer 503")
        assert health["status"] == "degraded" and "database" in health["problems"][0]
    finally:
        lock.rollback()
        lock.close()
        client.loop_stop()
        client.disconnect()
    worker.wait_for(lambda: worker.alerts_of("locked-1"), 60, "the row once the database is free")
    assert worker.wait_for(lambda: worker.get("/api/health"), 30, "health back to 200")["status"] == "ok"
    assert (worker.state_dir / "stream-data").is_dir()  # Faust's local data under the state directory


def test_silent_assets_and_gateways_raise_liveness_alerts(worker: RunningWorker) -> None:
    worker.produce([prediction("quiet-1", time.time() - 50, "normal", 0.99, gateway="gw-quiet")])
    silent = worker.wait_for(lambda: [a for a in worker.alerts_of("quiet-1") if a["fault"] == "asset_silent"], 30, "asset_silent")
    assert silent[0]["state"] == "open"
    gateway = worker.wait_for(lambda: worker.alerts_of("gw-quiet"), 30, "gateway_silent")
    assert gateway[0]["fault"] == "gateway_silent"
    worker.produce([prediction("quiet-1", time.time() - 10, "normal", 0.99, gateway="gw-quiet")])
    worker.wait_for(
        lambda: all(a["state"] == "resolved" for a in worker.alerts_of("quiet-1") + worker.alerts_of("gw-quiet")), 20, "recovery"
    )


def test_a_worker_with_fresh_kafka_state_continues_the_open_alert(worker: RunningWorker, tmp_path: Path) -> None:
    if worker.process is None or worker.process.poll() is not None:
        worker.start()  # an earlier test stopped the shared worker
    start = time.time() - 600
    worker.produce(episode("restart-1", start))
    settled = worker.wait_for(lambda: [a for a in worker.alerts_of("restart-1") if a["occurrences"] == 6], 30, "the alert")
    first = settled[0]  # all six hits folded: any later change comes from the new worker
    # a new worker: its own topics, app id and changelog (nothing in Kafka), the same database
    fresh = RunningWorker(worker.bootstrap, tmp_path, worker.env["FOREWARN_MQTT_URL"])
    fresh.env["FOREWARN_DATABASE_URL"] = f"sqlite:///{worker.state_dir / 'forewarn.db'}"
    fresh.start()
    try:
        fresh.produce(prediction("restart-1", start + 300 + 10 * i, FAULT, 0.96) for i in range(6))
        fresh.wait_for(lambda: fresh.get(f"/api/alerts/{first['id']}")["occurrences"] > first["occurrences"], 30, "the update")
        active = [a for a in fresh.alerts_of("restart-1") if a["state"] != "resolved" and a["fault"] == FAULT]
        assert [a["id"] for a in active] == [first["id"]]
        assert fresh.health()["alerts_adopted"] >= 1  # its silence alerts may be taken over too
        log = fresh.log.read_text(errors="replace")
        assert "\x1b" not in log  # no terminal escape codes
        assert "alembic" not in log  # no migration chatter at each start
    finally:
        fresh.stop()


def test_replays_and_a_crash_create_no_duplicate_alert(either_worker: RunningWorker) -> None:
    worker = either_worker  # on both delivery paths
    start = time.time() - 400
    batch = episode("replay-1", start, n=10)
    worker.produce(batch)
    (first,) = worker.wait_for(lambda: [a for a in worker.alerts_of("replay-1") if a["fault"] == FAULT], 30, "the alert")
    worker.produce(batch + batch)  # at-least-once redelivery, twice over
    time.sleep(3)
    alerts = [a for a in worker.alerts_of("replay-1") if a["fault"] == FAULT]
    assert [a["id"] for a in alerts] == [first["id"]]
    revision = worker.get(f"/api/alerts/{first['id']}")["revision"]

    worker.kill()  # a crash: recovery from the changelog plus a replay from the committed offset
    worker.start()
    worker.produce([*batch, prediction("replay-1", start + 200, FAULT, 0.95)])
    worker.wait_for(lambda: worker.get(f"/api/alerts/{first['id']}")["revision"] > revision, 30, "the new hit's update")
    alerts = [a for a in worker.alerts_of("replay-1") if a["fault"] == FAULT]
    assert [a["id"] for a in alerts] == [first["id"]]
    history = worker.get(f"/api/alerts/{first['id']}")["history"]
    revisions = [h["revision"] for h in history]
    assert revisions == sorted(set(revisions)) and revisions[-1] > revision

    took = worker.stop()
    assert took < 10 and worker.process is not None and worker.process.returncode == 0
