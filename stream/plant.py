"""`forewarn stream plant`: the plant tier of the edge -> plant cascade, scoring the gateways' escalations.

    forewarn.escalations ──> PlantWorker (plant bundle, ONNX Runtime) ──> forewarn.stream.control ──> aggregation
      (Escalation: the edge's prediction          (PlantVerdict in a PlantReview,               (recorded on the
       and the model inputs it built)               keyed by asset id)                            asset's alert)

The gateway sends the model inputs it built for an uncertain window (``forewarn.contracts.Escalation``);
this worker scores them with a bigger bundle that reads the same inputs (``models.cascade.inputs_id``)
and sends its verdict to the stream's control topic, keyed by asset id, so it reaches the worker
that owns the asset's alerts in order with everything else (stream.control). A plain aiokafka
consumer in its own consumer group, beside the Faust worker: scoring is CPU work that must not
hold up the aggregation, and the plant tier can run it on another machine.

Offsets are committed after the verdicts of a batch are acknowledged by the broker: a crash scores
the batch again, and the aggregation does not record the same verdict twice. An escalation the
worker cannot use (invalid, or built for other inputs) goes to the dead-letter topic.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from forewarn.contracts import Escalation, PlantVerdict, dead_letter, decode, encode
from forewarn.errors import ContractError
from models.cascade import inputs_id, outcome
from models.features import Features
from models.runtime import Bundle, Predictor
from stream.config import StreamSettings
from stream.control import PlantReview, encode_control

log = logging.getLogger(__name__)

BATCH = 256
GROUP_SUFFIX = "-plant"


def plant_bundle_path() -> Path:
    """The plant-tier bundle shipped beside the default one (models/bundles/plant)."""
    from models.runtime import default_bundle_path

    return default_bundle_path().parent / "plant"


class PlantScorer:
    """A plant-tier bundle scoring escalated model inputs; numpy and ONNX Runtime only."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        self.bundle = Bundle.load(path)
        self.predictor = Predictor(self.bundle, threads=threads)
        self.inputs_id = inputs_id(self.bundle.manifest, self.bundle.config)
        self.steps = self.bundle.spec.steps
        self.features = int(self.bundle.model_config["sensor_features"])
        self.log_tokens = int(self.bundle.model_config["log_tokens"])

    def refusal(self, escalation: Escalation) -> str | None:
        """Why this bundle cannot score an escalation (None: it can)."""
        if escalation.inputs_id != self.inputs_id:
            return (
                f"escalation built for inputs {escalation.inputs_id}; plant bundle {self.bundle.version} reads {self.inputs_id}"
            )
        if (escalation.steps, escalation.features) != (self.steps, self.features) or len(escalation.tokens) > self.log_tokens:
            shape = f"{escalation.steps}x{escalation.features}"
            return f"escalation inputs are {shape}, the plant bundle reads {self.steps}x{self.features}"
        return None

    def score(self, escalations: Sequence[Escalation], now: float) -> list[PlantVerdict]:
        """The verdict on each escalation (all scorable: check ``refusal`` first)."""
        if not escalations:
            return []
        sensors = np.stack(
            [np.frombuffer(base64.b64decode(e.sensors), dtype="<f4").reshape(e.steps, e.features) for e in escalations]
        )
        tokens = np.zeros((len(escalations), self.log_tokens), dtype=np.int64)
        for i, e in enumerate(escalations):
            tokens[i, : len(e.tokens)] = e.tokens
        features = Features(sensors.astype(np.float32), tokens, np.full(tokens.shape, -1, dtype=np.int32))
        probs = self.predictor.probabilities(features, [e.prediction.asset_type for e in escalations])
        labels = self.bundle.labels
        verdicts = []
        for e, row in zip(escalations, probs, strict=True):
            p = e.prediction
            best = int(np.argmax(row))
            verdicts.append(
                PlantVerdict(
                    prediction_id=p.id,
                    asset_id=p.asset_id,
                    site=p.site,
                    window_end=p.window_end,
                    edge_fault=p.fault,
                    edge_confidence=p.confidence,
                    edge_model_version=p.model_version,
                    reason=e.reason,
                    fault=labels[best],
                    confidence=round(float(row[best]), 6),
                    outcome=outcome(p.fault, labels[best]),
                    model_version=self.bundle.version,
                    ts=now,
                )
            )
        return verdicts


@dataclass
class PlantCounters:
    escalations: int = 0
    verdicts: int = 0
    refused: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


class PlantWorker:
    """Consumes escalations, sends verdicts to the control topic, commits after the broker acknowledged them."""

    def __init__(self, settings: StreamSettings, scorer: PlantScorer) -> None:
        self.settings = settings
        self.scorer = scorer
        self.counters = PlantCounters()
        self.topic = settings.topics.kafka_escalations
        self.control_topic = settings.stream.control_topic

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set: a batch at a time, reconnecting through broker outages (aiokafka retries)."""
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

        from forewarn.kafka import ensure_topics

        kafka = self.settings.kafka
        await ensure_topics(
            kafka, [self.topic, self.control_topic, self.settings.topics.kafka_deadletter], self.settings.partitions
        )
        consumer = AIOKafkaConsumer(
            self.topic,
            group_id=self.settings.stream.app_id + GROUP_SUFFIX,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **kafka.client_options(),
        )
        producer = AIOKafkaProducer(acks="all", linger_ms=5, **kafka.client_options())
        await consumer.start()
        await producer.start()
        log.info("plant tier scoring %s with %s (inputs %s)", self.topic, self.scorer.bundle.version, self.scorer.inputs_id)
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=500, max_records=BATCH)
                records = [r for rs in batches.values() for r in rs]
                if records:
                    await self.handle(records, producer)
                    await consumer.commit()
        finally:
            await consumer.stop()
            await producer.stop()

    async def handle(self, records: Sequence[Any], producer: Any) -> None:
        """Decode, score and send one batch; returns once the broker acknowledged every send."""
        usable: list[Escalation] = []
        sends = []
        for record in records:
            raw = bytes(record.value or b"")
            self.counters.escalations += 1
            try:
                escalation = decode(raw, Escalation)
                reason = self.scorer.refusal(escalation)
            except ContractError as exc:
                reason = str(exc)
            if reason is None:
                usable.append(escalation)
                continue
            self.counters.refused += 1
            log.warning(
                "plant tier refused an escalation at %s[%s]@%s: %s", record.topic, record.partition, record.offset, reason
            )
            letter = dead_letter(
                "stream-plant", reason, raw, f"kafka:{record.topic}:{record.partition}:{record.offset}", time.time()
            )
            sends.append(await producer.send(self.settings.topics.kafka_deadletter, encode(letter)))
        verdicts = await asyncio.to_thread(self.scorer.score, usable, time.time())
        for verdict in verdicts:
            value = encode_control(PlantReview(verdict=verdict))
            sends.append(await producer.send(self.control_topic, value, key=verdict.asset_id.encode()))
            self.counters.verdicts += 1
            self.counters.outcomes[verdict.outcome] = self.counters.outcomes.get(verdict.outcome, 0) + 1
        if sends:
            await asyncio.gather(*sends)


def run_plant(settings: StreamSettings, bundle: Path, threads: int = 1) -> None:
    """`forewarn stream plant`: run until SIGTERM or Ctrl-C."""
    import signal

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        worker = PlantWorker(settings, PlantScorer(bundle, threads))
        await worker.run(stop)
        log.info("plant tier stopped: %s", worker.counters)

    asyncio.run(main())
