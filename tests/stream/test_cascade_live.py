"""The edge -> plant cascade on real brokers: an escalated window's plant verdict lands on its alert (tansu, worker, database)."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.escalate import Budget, Escalator
from edge_agent.infer import Scorer
from forewarn.contracts import Escalation, decode, encode
from models.cascade import Policy
from models.runtime import Bundle, Predictor, default_bundle_path
from models.windowing import windows_from_messages
from stream.config import StreamSettings
from stream.plant import PlantScorer, PlantWorker, plant_bundle_path
from stream.synthetic import prediction
from tests.edge_agent.streams import plant_stream
from tests.stream.conftest import RunningWorker

pytestmark = pytest.mark.integration

FAULT = "bearing_outer_race"
T0 = 1_800_000_000.0


class PlantThread:
    """`forewarn stream plant`'s worker on its own event loop in a thread, stopped by the test."""

    def __init__(self, settings: StreamSettings, bundle: Path) -> None:
        self.worker = PlantWorker(settings, PlantScorer(bundle))
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self.stop_event = asyncio.Event()
            await self.worker.run(self.stop_event)

        try:
            self.loop.run_until_complete(main())
        except BaseException as exc:  # reported by the test that reads it
            self.error = exc

    def stop(self) -> None:
        if self.stop_event is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(30)


@pytest.fixture
def plant(worker: RunningWorker) -> Iterator[tuple[PlantThread, str]]:
    """A plant tier beside the shared worker: its own escalations topic, the worker's control topic."""
    stream = json.loads(worker.env["FOREWARN_STREAM"])
    topic = f"escalations-{uuid.uuid4().hex[:8]}"
    settings = StreamSettings.model_validate(
        {
            "kafka": {"bootstrap": worker.bootstrap},
            "topics": {"kafka_escalations": topic, "kafka_deadletter": worker.deadletter},
            "stream": {"app_id": stream["app_id"], "control_topic": stream["control_topic"]},
        }
    )
    running = PlantThread(settings, plant_bundle_path())  # the shipped plant tier, as a fresh install runs it
    running.thread.start()
    try:
        yield running, topic
    finally:
        running.stop()


def _escalation(asset: str, window_end: float) -> Escalation:
    """Model inputs the gateway builds for a real window, escalated with the stream's prediction for that window."""
    bundle = Bundle.load(default_bundle_path())
    windows = list(windows_from_messages(plant_stream(bundle.spec, "plant1", [asset], minutes=12), bundle.spec))
    scorer = Scorer(default_bundle_path(), "gw1", 1, 64)
    scorer.load()
    scored = scorer.score(windows[:1]).predictions
    (record,) = Escalator(Policy(1.0, 0.0), Budget(0.0, 1), "t").records(windows[:1], scored, Predictor(bundle), now=T0)
    sent = prediction(asset, window_end, FAULT, 0.62).model_copy(update={"model_version": scored[0].model_version})
    return decode(record.value, Escalation).model_copy(update={"prediction": sent})


def test_an_escalated_windows_plant_verdict_is_recorded_on_its_alert(
    worker: RunningWorker, plant: tuple[PlantThread, str]
) -> None:
    plant_thread, topic = plant
    asset = f"cas-{uuid.uuid4().hex[:6]}"
    worker.produce([prediction(asset, T0 + 10 * i, FAULT, 0.9) for i in range(3)])  # k=3 of n=5: an alert opens
    (opened,) = worker.wait_for(lambda: worker.alerts_of(asset), 30, "the edge's alert")
    escalation = _escalation(asset, T0 + 10)
    from aiokafka import AIOKafkaProducer

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=worker.bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(topic, encode(escalation), key=asset.encode())
        finally:
            await producer.stop()

    asyncio.run(send())

    def recorded() -> dict[str, object] | None:
        alert = worker.get(f"/api/alerts/{opened['id']}")
        return alert if alert and alert.get("plant") else None

    alert = worker.wait_for(recorded, 60, "the plant verdict on the alert")
    assert plant_thread.error is None
    verdict = alert["plant"]
    assert isinstance(verdict, dict)
    assert verdict["prediction_id"] == escalation.prediction.id and verdict["edge_fault"] == FAULT
    assert verdict["model_version"].startswith("slm-") and verdict["outcome"] in ("confirm", "reclassify", "clear")
    history = alert["history"]
    assert isinstance(history, list)
    assert [h["change"] for h in history][-1] == f"plant_{verdict['outcome']}"
    assert plant_thread.worker.counters.verdicts == 1 and plant_thread.worker.counters.refused == 0
