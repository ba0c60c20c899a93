"""`forewarn edge run` scores every window once and delivers it through broker restarts, a kill -9 and a 10x burst."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import psutil
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from demo.brokers import TansuBroker, free_port
from forewarn.contracts import DeadLetter, FaultPrediction, GatewayStatus, Telemetry, decode
from models.bundle import write_manifest
from models.windowing import WindowSpec
from tests.conftest import PrivateMosquitto
from tests.edge_agent.streams import Agent, KafkaReader, Publisher, expected_ids, plant_stream, score_offline


class Listener:
    """An MQTT subscriber keeping the last payload per topic and every prediction id."""

    def __init__(self, url: str, *filters: str) -> None:
        host, port = url.removeprefix("mqtt://").split(":")
        self.last: dict[str, bytes] = {}
        self.prediction_ids: set[str] = set()
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.connect(host, int(port))
        for f in filters:
            self.client.subscribe(f, qos=1)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.last[message.topic] = bytes(message.payload)
            if message.topic.endswith("/prediction"):
                self.prediction_ids.add(decode(bytes(message.payload), FaultPrediction).id)

    def status(self, topic: str) -> GatewayStatus | None:
        with self._lock:
            payload = self.last.get(topic)
        return decode(payload, GatewayStatus) if payload else None

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def agents(mqtt_url: str) -> Iterator[list[Agent]]:
    """Agents a test starts: stopped afterwards, their sessions and retained status removed from the shared broker."""
    started: list[Agent] = []
    yield started
    host, port = mqtt_url.removeprefix("mqtt://").split(":")
    for agent in started:
        agent.close()
        if agent.env["FOREWARN_MQTT_URL"] == mqtt_url:
            c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"forewarn-edge-{agent.gateway}", clean_session=True)
            c.connect(host, int(port))
            c.loop_start()
            c.publish(f"forewarn/gateways/{agent.gateway}/status", b"", qos=1, retain=True).wait_for_publish(5)
            c.loop_stop()
            c.disconnect()


def test_ingest_to_prediction_to_kafka_and_mqtt(
    tmp_path: Path, mqtt_url: str, kafka_bootstrap: str, unique: str, spec: WindowSpec, agents: list[Agent]
) -> None:
    agent = Agent(tmp_path, mqtt_url, kafka_bootstrap, unique)
    agents.append(agent)
    status_topic = f"forewarn/gateways/{agent.gateway}/status"
    listener = Listener(mqtt_url, f"forewarn/{agent.site}/+/prediction", status_topic)
    reader = KafkaReader(kafka_bootstrap, agent.topic)
    dead = KafkaReader(kafka_bootstrap, f"deadletter-{unique}", predictions=False)
    publisher = Publisher(mqtt_url)
    try:
        agent.start()
        messages = plant_stream(spec, agent.site, ["a1", "a2", "a3"], minutes=16)
        expected = expected_ids(messages, spec, agent.gateway)
        assert len(expected) >= 15  # five or more windows per asset (the count follows the bundle's window)
        publisher.raw(f"forewarn/{agent.site}/a1/telemetry", b'{"kind": "telemetry", "hostile": true}')
        publisher.send(messages)
        publisher.send(messages[-6:])  # redelivered: scored once
        agent.wait(lambda: reader.ids == expected and listener.prediction_ids == expected, 30, "every prediction, once")
        assert reader.records == len(expected) and not reader.errors
        p = next(iter(reader.predictions.values()))
        assert p.model_version.startswith("slm-") and not p.historical and p.latency_ms > 0
        assert p.evidence.channels, "the channels that deviated most"
        assert agent.metric("forewarn_edge_bad_messages_total", 'reason="invalid"') == 1
        assert agent.metric("forewarn_edge_duplicates_total") == 6
        assert agent.metric("forewarn_edge_windows_scored_total") == len(expected)
        agent.wait(
            lambda: (agent.metric("forewarn_edge_window_latency_seconds_count") or 0) == len(expected), 5, "latency observed"
        )
        status = listener.status(status_topic)
        assert status is not None and status.state == "online" and status.model_version == p.model_version
        agent.wait(lambda: len(dead.values) == 1, 10, "the dead letter reaches Kafka")
        letter = decode(dead.values[0], DeadLetter)
        assert (
            "hostile" in letter.payload and letter.source == f"forewarn/{agent.site}/a1/telemetry" and "invalid" in letter.reason
        )
        started = time.monotonic()
        assert agent.stop() == 0, "SIGTERM is a clean stop"
        assert time.monotonic() - started < 5
        assert agent.process is not None
        with pytest.raises(ProcessLookupError):
            os.killpg(agent.process.pid, 0)  # nothing left in the agent's process group
        agent.wait(
            lambda: (s := listener.status(status_topic)) is not None and s.state == "offline", 5, "offline status", alive=False
        )
    finally:
        publisher.close()
        reader.close()
        dead.close()
        listener.close()


def test_no_prediction_is_lost_when_the_mqtt_broker_restarts_mid_stream(
    tmp_path: Path, private_mosquitto: Callable[..., PrivateMosquitto], kafka_bootstrap: str, unique: str, spec: WindowSpec
) -> None:
    broker = private_mosquitto()
    agent = Agent(tmp_path, broker.url, kafka_bootstrap, unique)
    reader = KafkaReader(kafka_bootstrap, agent.topic)
    messages = plant_stream(spec, agent.site, ["a1", "a2"], minutes=24)
    half = len(messages) // 2
    try:
        agent.start()
        publisher = Publisher(broker.url, rate=2000)
        publisher.send(messages[:half])
        publisher.close()
        broker.stop()  # mid-stream: some of those may still be queued for the agent or unacknowledged
        agent.wait(lambda: agent.metric("forewarn_edge_mqtt_connected") == 0, 10, "the agent notices")
        broker.start()
        agent.wait(lambda: agent.metric("forewarn_edge_mqtt_connected") == 1, 20, "the agent reconnects")
        publisher = Publisher(broker.url, rate=2000)
        publisher.send(messages[half:])
        publisher.close()
        expected = expected_ids(messages, spec, agent.gateway)
        agent.wait(lambda: reader.ids == expected, 30, "every prediction across the restart")
        assert not reader.errors
    finally:
        agent.close()
        reader.close()


def test_no_prediction_is_lost_when_kafka_restarts_empty_mid_stream(
    tmp_path: Path, mqtt_url: str, unique: str, spec: WindowSpec, agents: list[Agent]
) -> None:
    tansu = TansuBroker(port=free_port(), log_file=tmp_path / "tansu.log")
    tansu.start()
    agent = Agent(tmp_path / "agent", mqtt_url, tansu.bootstrap, unique)
    agents.append(agent)
    reader = KafkaReader(tansu.bootstrap, agent.topic)
    publisher = Publisher(mqtt_url)
    messages = plant_stream(spec, agent.site, ["a1", "a2"], minutes=30)
    first, second = messages[: len(messages) // 2], messages[: 3 * len(messages) // 4]
    try:
        agent.start()
        publisher.send(first)
        agent.wait(lambda: reader.ids == expected_ids(first, spec, agent.gateway), 30, "phase 1 delivered")
        tansu.stop()  # memory-only: every topic and record is gone
        publisher.send(second[len(first) :])
        waiting = len(expected_ids(second, spec, agent.gateway)) - len(expected_ids(first, spec, agent.gateway))
        agent.wait(lambda: agent.metric("forewarn_edge_outbox_depth") == waiting, 30, "kept in the outbox while Kafka is away")
        agent.wait(lambda: agent.metric("forewarn_edge_kafka_connected") == 0, 30, "the publisher gives up on the old connection")
        tansu.start()
        reader.restart()
        publisher.send(messages[len(second) :])
        expected = expected_ids(messages, spec, agent.gateway)
        agent.wait(lambda: reader.ids == expected, 60, "every prediction across both broker lifetimes")
        assert (agent.metric("forewarn_edge_kafka_send_errors_total") or 0) >= 1
    finally:
        publisher.close()
        reader.close()
        tansu.stop()


def test_a_kill_9_loses_nothing_from_the_outbox_and_the_backlog_replays_paced_and_historical(
    tmp_path: Path, mqtt_url: str, kafka_bootstrap: str, unique: str, spec: WindowSpec, agents: list[Agent]
) -> None:
    nowhere = f"127.0.0.1:{free_port()}"  # no uplink at all
    offline = Agent(tmp_path, mqtt_url, nowhere, unique)
    agents.append(offline)
    status_topic = f"forewarn/gateways/{offline.gateway}/status"
    listener = Listener(mqtt_url, status_topic)
    publisher = Publisher(mqtt_url)
    messages = plant_stream(spec, offline.site, ["a1", "a2", "a3"], minutes=31)
    expected = expected_ids(messages, spec, offline.gateway)
    assert len(expected) >= 60  # twenty or more windows per asset
    try:
        offline.start()
        publisher.send(messages)
        offline.wait(lambda: offline.outbox_ids() == expected, 30, "scored with no uplink, kept in the outbox")
        offline.kill9()
        offline.wait(
            lambda: (s := listener.status(status_topic)) is not None and s.state == "offline", 10, "the last will", alive=False
        )
        back = Agent(tmp_path, mqtt_url, kafka_bootstrap, unique, historical_after_s=1, replay_rate=20)
        agents.append(back)
        reader = KafkaReader(kafka_bootstrap, back.topic)
        try:
            time.sleep(1.0)  # the stored rows are now older than historical_after_s
            started = time.monotonic()
            back.start()
            back.wait(lambda: reader.ids == expected, 30, "every stored prediction delivered after the restart")
            elapsed = time.monotonic() - started
        finally:
            reader.close()
        assert all(p.historical for p in reader.predictions.values()), "a backlog is old news"
        assert elapsed >= (len(expected) - 20) / 20 * 0.8, f"paced at 20/s (took {elapsed:.1f} s)"
        assert back.outbox_ids() == set()
    finally:
        publisher.close()
        listener.close()


def test_a_kill_9_mid_stream_loses_no_window_in_progress_and_scores_as_edge_score_does(
    tmp_path: Path, mqtt_url: str, unique: str, spec: WindowSpec, bundle: Path, agents: list[Agent]
) -> None:
    """The windows in progress and each asset's history survive a kill -9 (checkpoint + journal, edge_agent/journal.py)."""
    nowhere = f"127.0.0.1:{free_port()}"  # predictions stay in the outbox, where the test reads them
    first = Agent(tmp_path, mqtt_url, nowhere, unique)
    agents.append(first)
    publisher = Publisher(mqtt_url)
    messages = plant_stream(spec, first.site, ["a1", "a2"], minutes=40)
    half = len(messages) // 2
    try:
        first.start()
        publisher.send(messages[:half])
        first.wait(lambda: _folded(first) == half, 30, "the first half folded")
        first.kill9()
        back = Agent(tmp_path, mqtt_url, nowhere, unique)
        agents.append(back)
        back.start()
        publisher.send(messages[half:])
        expected = expected_ids(messages, spec, first.gateway)
        back.wait(lambda: back.outbox_ids() == expected, 30, "every window, across the crash")
    finally:
        publisher.close()
    assert "windows in progress restored" in back.log.read_text()
    stored = back.outbox_predictions()
    offline = {p.id: p for p in score_offline(messages, bundle, first.gateway)}
    assert set(offline) == expected
    for pid, live in stored.items():  # the same features, history included, as scoring without a crash
        assert live.fault == offline[pid].fault, pid
        assert live.anomaly_score == pytest.approx(offline[pid].anomaly_score, abs=1e-6), pid


def test_a_backlog_behind_a_live_message_is_windowed_in_order_and_a_lost_message_holds_nothing_for_long(
    tmp_path: Path, mqtt_url: str, unique: str, spec: WindowSpec, agents: list[Agent]
) -> None:
    """After a broker restart a publisher's first live message overtakes its backlog: no window of the backlog is lost."""
    agent = Agent(tmp_path, mqtt_url, f"127.0.0.1:{free_port()}", unique, reorder_hold_s=1.0)
    agents.append(agent)
    publisher = Publisher(mqtt_url)
    messages = plant_stream(spec, agent.site, ["a1"], minutes=40)
    telemetry = [m for m in messages if isinstance(m, Telemetry)]
    live = telemetry[30]
    overtaken = [m for m in messages if m is not live]
    overtaken.insert(overtaken.index(telemetry[10]), live)  # 10..29 arrive after 30
    lost = telemetry[35]  # never arrives: the hold gives up after reorder_hold_s
    try:
        agent.start()
        publisher.send([m for m in overtaken if m is not lost])
        expected = expected_ids([m for m in messages if m is not lost], spec, agent.gateway)
        agent.wait(lambda: agent.outbox_ids() == expected, 30, "every window of the backlog, and those after the loss")
        assert agent.metric("forewarn_edge_late_samples_total") == 0
        assert agent.metric("forewarn_edge_reordered_total") == 20  # the backlog: counted missing at the gap, then seen
        assert agent.metric("forewarn_edge_missing_messages_total") == 20 + 1
        assert agent.metric("forewarn_edge_held_messages") == 0
    finally:
        publisher.close()


def _folded(agent: Agent) -> float:
    return sum(agent.metric("forewarn_edge_messages_total", f'kind="{k}"') or 0.0 for k in ("telemetry", "log"))


def test_memory_stays_bounded_under_a_10x_burst(
    tmp_path: Path, private_mosquitto: Callable[..., PrivateMosquitto], kafka_bootstrap: str, unique: str, spec: WindowSpec
) -> None:
    broker = private_mosquitto()
    agent = Agent(tmp_path, broker.url, kafka_bootstrap, unique, inbox_max_bytes=8 * 1024 * 1024)
    assets = [f"a{i}" for i in range(10)]
    normal = plant_stream(spec, agent.site, assets, minutes=15)
    burst = plant_stream(spec, agent.site, assets, minutes=165)[len(normal) :]
    try:
        agent.start()
        assert agent.process is not None
        process = psutil.Process(agent.process.pid)
        publisher = Publisher(broker.url, rate=100)  # the normal pace
        publisher.send(normal)
        agent.wait(
            lambda: agent.metric("forewarn_edge_windows_scored_total") == len(expected_ids(normal, spec, "g")), 30, "normal"
        )
        baseline = process.memory_info().rss
        peak = baseline
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, process.memory_info().rss)
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        publisher.rate = 1000  # ten times the pace, 1.5 M samples per ~2 s
        publisher.send(burst)
        publisher.close()
        total = len(expected_ids(normal + burst, spec, "g"))
        agent.wait(lambda: agent.metric("forewarn_edge_windows_scored_total") == total, 90, "the burst scored")
        done.set()
        sampler.join()
        growth_mb = (peak - baseline) / 2**20
        inbox_peak = agent.metric("forewarn_edge_inbox_peak_bytes") or 0
        print(
            f"burst: baseline RSS {baseline / 2**20:.0f} MiB, peak {peak / 2**20:.0f} MiB, growth {growth_mb:.1f} MiB, "
            f"inbox peak {inbox_peak / 2**20:.2f} MiB"
        )
        # Bounded by configuration, not by the burst's length: one step folds at most inbox_max_bytes of
        # messages, and the windows they complete (20 steps x 261 features each for the shipped bundle)
        # are scored before the next step, in batches of batch_size. About 70 MiB measured with the
        # dynamic-INT8 bundle (scored one window per call), 90-100 MiB with the shipped static-INT8
        # one, whose ONNX Runtime arena holds batches of 64 (four CI runs, 2026-12-01).
        assert growth_mb < 128, f"RSS grew {growth_mb:.0f} MiB during the burst"
        assert not agent.metric("forewarn_edge_bad_messages_total", 'reason="inbox_full"'), "backpressure, not dropping"
    finally:
        agent.close()


def test_a_bundle_dropped_in_place_is_hot_reloaded_only_once_verified(
    tmp_path: Path, mqtt_url: str, kafka_bootstrap: str, unique: str, spec: WindowSpec, bundle: Path, agents: list[Agent]
) -> None:
    """The documented procedure: prepare the new bundle beside the live one, then swap a symlink atomically."""
    first_copy, broken, second = tmp_path / "bundle-1", tmp_path / "bundle-broken", tmp_path / "bundle-2"
    shutil.copytree(bundle, first_copy)
    shutil.copytree(bundle, broken)
    (broken / "model.onnx").write_bytes((broken / "model.onnx").read_bytes()[:-100])  # e.g. a truncated copy
    shutil.copytree(bundle, second)
    config = json.loads((second / "config.json").read_text())
    config["note"] = "re-released"
    (second / "config.json").write_text(json.dumps(config))
    write_manifest(second)
    live = tmp_path / "live"
    live.symlink_to(first_copy)

    def swap(target: Path) -> None:
        link = tmp_path / "live.new"
        link.symlink_to(target)
        os.replace(link, live)

    agent = Agent(tmp_path / "agent", mqtt_url, kafka_bootstrap, unique, model=live, reload_check_s=0.3)
    agents.append(agent)
    reader = KafkaReader(kafka_bootstrap, agent.topic)
    publisher = Publisher(mqtt_url)
    messages = plant_stream(spec, agent.site, ["a1"], minutes=30)
    try:
        agent.start()
        publisher.send(messages[:16])
        before = expected_ids(messages[:16], spec, agent.gateway)
        assert len(before) >= 3
        agent.wait(lambda: reader.ids == before, 20, "scored by the first bundle")
        first = {p.model_version for p in reader.predictions.values()}
        swap(broken)
        agent.wait(lambda: agent.metric("forewarn_edge_model_reloads_total", 'result="failed"') == 1, 10, "refused")
        swap(second)
        agent.wait(lambda: agent.metric("forewarn_edge_model_reloads_total", 'result="ok"') == 1, 10, "swapped in")
        publisher.send(messages[16:])
        expected = expected_ids(messages, spec, agent.gateway)
        agent.wait(lambda: reader.ids == expected, 20, "every window scored, before and after the swap")
        versions = [p.model_version for p in sorted(reader.predictions.values(), key=lambda p: p.window_end)]
        assert set(versions[: len(before)]) == first and len(set(versions)) == 2 and versions[-1] not in first
    finally:
        publisher.close()
        reader.close()


def test_a_gateway_that_scores_nothing_says_so_in_its_log_and_status(
    tmp_path: Path, mqtt_url: str, unique: str, agents: list[Agent]
) -> None:
    agent = Agent(tmp_path, mqtt_url, "", unique, input_quiet_s=1)
    agents.append(agent)
    status_topic = f"forewarn/gateways/{agent.gateway}/status"
    listener = Listener(mqtt_url, status_topic)
    publisher = Publisher(mqtt_url)
    try:
        agent.start()

        def warning() -> str:
            status = listener.status(status_topic)
            return (status.warning or "") if status is not None else ""

        agent.wait(lambda: warning().startswith("nothing received on"), 10, "a 'nothing received' status")
        assert f"forewarn/{agent.site}/+/telemetry" in warning()
        publisher.raw(f"forewarn/{agent.site}/a1/telemetry", b'{"kind": "telemetry", "hostile": true}')
        agent.wait(lambda: "none placed" in warning(), 10, "a 'none placed' status")
        assert "invalid 1" in warning()
        log = agent.log.read_text()
        assert "scoring nothing: nothing received on" in log and "scoring nothing: 1 message received" in log
    finally:
        publisher.close()
        listener.close()
