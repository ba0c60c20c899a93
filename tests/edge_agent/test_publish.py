"""Only acknowledged rows leave; a backlog replays paced and flagged historical; a tansu restart loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from demo.brokers import TansuBroker, free_port
from edge_agent.metrics import EdgeMetrics
from edge_agent.outbox import Outbox, Record
from edge_agent.publish import AioKafkaPort, KafkaPort, KafkaPublisher, publish_predictions
from forewarn.contracts import Evidence, FaultPrediction, decode, encode, prediction_id
from forewarn.settings import KafkaSettings, TopicSettings
from tests.edge_agent.fakes import FakeKafka, FakeMqtt

T0 = 1_767_225_600.0
TOPIC = "forewarn.predictions"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _prediction(i: int, asset: str = "a1") -> FaultPrediction:
    end = T0 + 60 * i
    return FaultPrediction(
        id=prediction_id("gw", asset, end), gateway_id="gw", site="p1", asset_id=asset, window_start=end - 600, window_end=end,
        fault="normal", probabilities={"normal": 0.9, "imbalance": 0.1}, anomaly_score=0.1, confidence=0.9,
        model_version="test-1", evidence=Evidence(), latency_ms=1.0, produced_at=end,
    )  # fmt: skip


def _record(p: FaultPrediction, topic: str = TOPIC) -> Record:
    return Record(p.id, "prediction", topic, p.asset_id.encode(), encode(p))


def _setup(
    tmp_path: Path, port: KafkaPort, clock: Clock, rate: float = 1000.0, batch: int = 100
) -> tuple[Outbox, KafkaPublisher]:
    metrics = EdgeMetrics()
    box = Outbox(tmp_path / "outbox.sqlite3", metrics, 1 << 30, 86_400, clock=clock)
    box.start()
    publisher = KafkaPublisher(
        box, port, metrics, batch=batch, historical_after_s=120, replay_rate=rate, backoff_max_s=1, clock=clock
    )
    return box, publisher


def test_only_acknowledged_rows_leave_the_outbox(tmp_path: Path) -> None:
    kafka, clock = FakeKafka(), Clock()
    box, publisher = _setup(tmp_path, kafka, clock)
    predictions = [_prediction(i) for i in range(5)]
    box.put([_record(p) for p in predictions])
    kafka.refuse = {encode(predictions[2])}

    async def scenario() -> None:
        try:
            await publisher.step()
        except Exception as exc:
            assert "acknowledged 4 of 5" in str(exc)
        assert [r.id for r in box.take(10)] == [predictions[2].id]
        kafka.refuse.clear()
        assert await publisher.step() == 1
        kafka.down = True
        box.put([_record(_prediction(9))])
        with contextlib.suppress(Exception):
            await publisher.step()
        assert box.depth == 1, "nothing leaves while Kafka is down"

    asyncio.run(scenario())
    assert sorted(decode(v, FaultPrediction).id for _, _, v in kafka.sent) == sorted(p.id for p in predictions)
    assert all(k == b"a1" and t == TOPIC for t, k, _ in kafka.sent)
    box.stop()


def test_a_backlog_is_replayed_oldest_first_paced_and_flagged_historical_while_live_rows_go_first(tmp_path: Path) -> None:
    kafka, clock = FakeKafka(), Clock()
    box, publisher = _setup(tmp_path, kafka, clock, rate=10.0)
    box.put([_record(_prediction(i)) for i in range(30)])  # stored during an outage
    clock.now += 600
    box.put([_record(_prediction(100))])  # live

    async def scenario() -> list[int]:
        sent = [await publisher.step() for _ in range(4)]
        clock.now += 1.0  # ten more tokens
        sent.append(await publisher.step())
        return sent

    assert asyncio.run(scenario()) == [1, 10, 0, 0, 10]
    values = [decode(v, FaultPrediction) for _, _, v in kafka.sent]
    assert values[0].window_end == _prediction(100).window_end and not values[0].historical
    assert [p.window_end for p in values[1:]] == [_prediction(i).window_end for i in range(20)]
    assert all(p.historical for p in values[1:])
    assert box.metrics.registry.get_sample_value("forewarn_edge_kafka_sent_total", {"kind": "historical"}) == 20
    box.stop()


def test_predictions_are_published_to_their_assets_mqtt_topic() -> None:
    mqtt = FakeMqtt()
    predictions = [_prediction(1, "a1"), _prediction(1, "a2")]
    publish_predictions(mqtt, TopicSettings(), [(p, encode(p)) for p in predictions], qos=1)
    assert [(t, q, r) for t, _, q, r in mqtt.published] == [
        ("forewarn/p1/a1/prediction", 1, False),
        ("forewarn/p1/a2/prediction", 1, False),
    ]


async def _consume(bootstrap: str, topic: str, seen: set[str], stop: asyncio.Event) -> None:
    """Read every prediction id on the topic, reconnecting across broker restarts."""
    while not stop.is_set():
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
        try:
            await consumer.start()
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=200)
                for messages in batches.values():
                    seen.update(decode(m.value, FaultPrediction).id for m in messages if m.value)
        except Exception:  # the broker went away: start over
            await asyncio.sleep(0.3)
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()


def test_no_prediction_is_lost_when_kafka_restarts_empty_mid_stream(tmp_path: Path, unique: str) -> None:
    port_number = free_port()
    broker = TansuBroker(port=port_number, log_file=tmp_path / "tansu.log")
    broker.start()
    topic = f"predictions-{unique}"
    kafka = KafkaSettings(bootstrap=broker.bootstrap, partitions=2)
    clock = Clock()
    port = AioKafkaPort(kafka, [topic], timeout_s=3.0, client_id=f"edge-{unique}")
    box, publisher = _setup(tmp_path, port, clock)
    expected = [_prediction(i) for i in range(300)]
    seen_first: set[str] = set()
    seen_second: set[str] = set()

    async def wait_for(condition: object, timeout: float) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not condition():  # type: ignore[operator]
            assert asyncio.get_running_loop().time() < deadline, "timed out"
            await asyncio.sleep(0.1)

    async def scenario() -> None:
        publisher.start()
        stop_first = asyncio.Event()
        reader = asyncio.create_task(_consume(broker.bootstrap, topic, seen_first, stop_first))
        for p in expected[:100]:
            box.put([_record(p, topic)])
            publisher.wake()
            await asyncio.sleep(0.002)
        await wait_for(lambda: len(seen_first) == 100 and box.depth == 0, 30)
        stop_first.set()
        await reader
        await asyncio.to_thread(broker.stop)  # every topic and record of this broker is gone
        for p in expected[100:200]:
            box.put([_record(p, topic)])
            publisher.wake()
        await wait_for(lambda: not publisher.uplink, 15)
        assert box.depth == 100, "kept while Kafka is away"
        await asyncio.to_thread(broker.start)  # same port, empty
        stop_second = asyncio.Event()
        reader = asyncio.create_task(_consume(broker.bootstrap, topic, seen_second, stop_second))
        for p in expected[200:]:
            box.put([_record(p, topic)])
            publisher.wake()
            await asyncio.sleep(0.002)
        await wait_for(lambda: box.depth == 0 and len(seen_second) == 200, 60)
        stop_second.set()
        await reader
        await publisher.stop(1.0)

    try:
        asyncio.run(scenario())
    finally:
        broker.stop()
        box.stop()
    assert seen_first | seen_second == {p.id for p in expected}
    assert (box.metrics.registry.get_sample_value("forewarn_edge_kafka_send_errors_total") or 0) >= 1
