"""The gateway daemon: the stages wired in data-flow order, with their lifecycle.

    MQTT --MqttLink--> Inbox --WindowStage--> windows --Scorer--> predictions --Outbox--> KafkaPublisher --> Kafka
                                  (bad payloads -> dead letters -> Outbox)       \\--> MQTT .../prediction
                                  \\--> WindowJournal (checkpoint + journal of the windows in progress)

With ``[rollout] public_key_file`` set, a ``Rollout`` (its own MQTT connection) receives signed
bundles for the site; the loop self-tests them off the loop and swaps one in between two
steps, so every window is scored by exactly one bundle (edge_agent/rollout.py).

One asyncio loop runs the pipeline, the Kafka publisher and the health heartbeat; the paho
network thread only decodes and enqueues; ONNX Runtime runs in a worker thread so the loop
stays responsive while a batch is scored. Each step acknowledges its MQTT messages only
after the predictions they completed are committed to the outbox and the messages are in
the journal of windows in progress, so a crash loses neither (edge_agent/journal.py).

Start needs no uplink (Kafka and the MQTT broker are retried in the background); stop
(SIGTERM/SIGINT) finishes the current step, says ``offline``, flushes what Kafka takes
within ``stop_timeout_s`` and closes the outbox: whatever is left is there for the next start.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from edge_agent.config import EdgeSettings
from edge_agent.errors import EdgeError, ModelError, Rejected
from edge_agent.escalate import Budget, Escalator
from edge_agent.health import Health, InputWatch, Vitals
from edge_agent.infer import Scored, Scorer
from edge_agent.ingest import Delivery, Inbox, MqttLink
from edge_agent.journal import WindowJournal
from edge_agent.metrics import EdgeMetrics
from edge_agent.outbox import Outbox, Record
from edge_agent.publish import AioKafkaPort, KafkaPublisher, publish_predictions
from edge_agent.rollout import Rollout
from edge_agent.sparkplug.link import SparkplugLink
from edge_agent.window import AssetPolicy, WindowStage
from forewarn.contracts import LogRecord, Telemetry, dead_letter, decode_input, encode, rated_currents
from forewarn.errors import ContractError
from models.cascade import Policy
from models.windowing import Window

log = logging.getLogger(__name__)


class EdgeDaemon:
    """One gateway: build with settings, then ``await run(stop_event)``."""

    def __init__(self, settings: EdgeSettings) -> None:
        edge, topics = settings.edge, settings.topics
        self.settings = settings
        self.metrics = EdgeMetrics()
        self.scorer = Scorer(settings.model_path(), edge.gateway_id, edge.ort_threads, edge.batch_size)
        self.outbox = Outbox(settings.outbox_file(), self.metrics, edge.outbox_max_bytes, edge.outbox_max_age_s, edge.outbox_sync)
        self.inbox = Inbox(edge.inbox_max_bytes, edge.inbox_wait_s)
        self.metrics.watch(self.inbox.levels)
        status_topic = topics.mqtt_gateway_status.format(gateway=edge.gateway_id, site=settings.site, asset="")
        self.health = Health(edge.gateway_id, settings.site, status_topic, edge.status_interval_s, self._vitals)
        self.link = MqttLink(settings, self.inbox, self.metrics, will=self.health.will(), birth=self.health.birth)
        self.sparkplug: SparkplugLink | None = None
        if settings.sparkplug.enabled:
            self.sparkplug = SparkplugLink(settings, self.inbox, self.metrics, self._vitals)
        self.escalator: Escalator | None = None
        if edge.cascade_enabled:
            policy = Policy(edge.cascade_confidence_below, edge.cascade_anomaly_above)
            self.escalator = Escalator(policy, Budget(edge.cascade_rate, edge.cascade_burst), topics.kafka_escalations)
        self.publisher: KafkaPublisher | None = None
        if settings.kafka.bootstrap:
            topics_used = [topics.kafka_predictions, topics.kafka_deadletter]
            if self.escalator is not None:
                topics_used.append(topics.kafka_escalations)
            port = AioKafkaPort(settings.kafka, topics_used, edge.kafka_timeout_s, settings.client_id())
            self.publisher = KafkaPublisher(
                self.outbox, port, self.metrics, batch=edge.kafka_batch, historical_after_s=edge.historical_after_s,
                replay_rate=edge.replay_rate, backoff_max_s=edge.kafka_backoff_max_s,
            )  # fmt: skip
        self.windows: WindowStage | None = None
        self.journal: WindowJournal | None = None
        if edge.checkpoint_s > 0:
            self.journal = WindowJournal(settings.windows_dir(), edge.checkpoint_s, edge.journal_max_bytes)
            self.metrics.watch(self.journal.levels)
        self.windows_scored = 0
        self.metrics_port: int | None = None
        self._letters = Budget(edge.deadletter_rate, burst=edge.deadletter_rate)  # one second's worth saved up
        self._reasons_logged: set[str] = set()
        subscriptions = [topics.subscription(t, settings.site) for t in (topics.mqtt_telemetry, topics.mqtt_log)]
        self.input = InputWatch(edge.input_quiet_s, subscriptions)
        self._refused = 0
        self.rollout: Rollout | None = None
        if settings.rollout.public_key_file is not None:
            self.rollout = Rollout(settings, self.scorer, self.metrics)

    async def run(self, stop: asyncio.Event) -> None:
        """Start every stage, run the pipeline until ``stop`` is set, then stop them in reverse."""
        try:
            await self.start()
            next_reload = next_expiry = time.monotonic()
            while not stop.is_set():
                try:
                    await self.step()
                    self._check_input()
                    self._check_rollout()
                    if time.monotonic() >= next_reload and self.settings.edge.reload_check_s > 0:
                        next_reload = time.monotonic() + self.settings.edge.reload_check_s
                        await self.reload()
                    if time.monotonic() >= next_expiry:
                        next_expiry = time.monotonic() + 60.0
                        self.outbox.expire()
                except EdgeError as exc:  # the supervisor: a full disk or a broken step must not end the gateway
                    log.error("pipeline step failed, retrying in 1 s: %s", exc)
                    await asyncio.sleep(1.0)
        finally:
            await self.stop()

    async def start(self) -> None:
        edge = self.settings.edge
        if edge.metrics_enabled:
            self.metrics_port = self.metrics.serve(edge.metrics_host, edge.metrics_port)
        self.outbox.start()
        await asyncio.to_thread(self.scorer.load if self.rollout is None else self.rollout.load)
        self.windows = WindowStage(self.scorer.spec, _policy(self.settings), self.metrics)
        await self._restore()
        self.inbox.bind(asyncio.get_running_loop())
        self.link.start()
        if self.sparkplug is not None:
            self.sparkplug.start()
        if self.publisher is not None:
            self.publisher.start()
        else:
            log.warning("kafka.bootstrap is empty: predictions stay in the outbox (bounded) and go to MQTT only")
        self.health.start(self.link)
        if self.rollout is not None:
            self.rollout.start()
        log.info(
            "edge agent %s up: model %s, outbox %s (%d waiting), metrics port %s",
            edge.gateway_id, self.scorer.version, self.outbox.path, self.outbox.depth, self.metrics_port,
        )  # fmt: skip

    async def step(self) -> None:
        """Drain the inbox once: fold, score what became ready, store, publish, then acknowledge."""
        assert self.windows is not None, "start() first"
        if self.windows.release_expired():
            await self._score_ready()  # a gap that did not fill in reorder_hold_s: what waited behind it goes on
        deliveries = await self.inbox.get(self.settings.edge.drain_max_messages, timeout=0.2)
        if not deliveries:
            return
        try:
            await self._process(deliveries)
            if self.journal is not None:
                self.journal.record(self._journal_frame(d) for d in deliveries if d.message is not None)
                if self.journal.due():
                    self.journal.checkpoint(self.windows)
        finally:
            # Normally this runs after the outbox commit. On a failure it still runs: the windows were
            # consumed, a redelivery would be dropped as a duplicate, and unacked messages would hold
            # the broker's in-flight slots and stall the session.
            for d in deliveries:
                self.link.ack(d)

    async def _process(self, deliveries: list[Delivery]) -> None:
        assert self.windows is not None
        refused = self._refused
        letters = [letter for d in deliveries if (letter := self._fold(d)) is not None]
        self.input.saw(len(deliveries), len(deliveries) - (self._refused - refused))
        if letters:
            self.outbox.put(letters)
        await self._score_ready()

    async def _score_ready(self) -> None:
        """Score, store and publish every window completed since the last call."""
        assert self.windows is not None
        ready = self.windows.ready()
        batch, topic = self.settings.edge.batch_size, self.settings.topics.kafka_predictions
        for start in range(0, len(ready), batch):
            windows, arrived = [w for w, _ in ready[start : start + batch]], [a for _, a in ready[start : start + batch]]
            scored = await self._score(windows, arrived)
            encoded = [(p, encode(p)) for p in scored.predictions]
            self.outbox.put([Record(p.id, "prediction", topic, p.asset_id.encode(), value) for p, value in encoded])
            stored = time.perf_counter()
            self.metrics.inference_seconds.observe(scored.seconds)
            self.metrics.windows_scored.inc(len(windows))
            self.windows_scored += len(windows)
            for since in arrived:
                self.metrics.window_latency_seconds.observe(max(0.0, stored - since))
            if self.publisher is not None:
                self.publisher.wake()
            if self.settings.edge.publish_predictions_mqtt:
                publish_predictions(self.link, self.settings.topics, encoded, self.settings.edge.prediction_qos)
            if self.sparkplug is not None:
                self.sparkplug.predictions(scored.predictions)
            await self._escalate(windows, scored)

    async def _escalate(self, windows: list[Window], scored: Scored) -> None:
        """After the predictions are stored and published: the uncertain windows' inputs, to the plant tier (outbox)."""
        if self.escalator is None:
            return
        records = await asyncio.to_thread(self.escalator.records, windows, scored.predictions, self.scorer.loaded[1], time.time())
        if records:
            self.outbox.put(records)
            self.metrics.escalations.inc(len(records))
            if self.publisher is not None:
                self.publisher.wake()

    async def _score(self, windows: list[Window], arrived: list[float]) -> Scored:
        """Score a batch; if a rolled-out bundle fails on it, roll back to N-1 and score the same batch again."""
        try:
            scored = await asyncio.to_thread(self.scorer.score, windows, arrived)
        except ModelError as exc:
            if self.rollout is None or self.rollout.previous is None or not self.rollout.rollback(f"scoring failed: {exc}"):
                raise
            scored = await asyncio.to_thread(self.scorer.score, windows, arrived)
        if self.rollout is not None:
            self.rollout.keep(windows)
        return scored

    async def reload(self) -> None:
        """Swap in a bundle dropped in place (verified by its manifest); keep the running one if it is refused."""
        try:
            swapped = await asyncio.to_thread(self.scorer.check_reload)
        except ModelError as exc:
            self.metrics.model_reloads.labels("failed").inc()
            log.warning("new model bundle refused, still running %s: %s", self.scorer.version, exc)
            return
        if swapped and self.windows is not None:
            self.metrics.model_reloads.labels("ok").inc()
            if self.scorer.spec != self.windows.spec:
                log.warning(
                    "the new model cuts windows differently: %d assets' windows in progress dropped", self.windows.asset_count
                )
            self.windows.replace_spec(self.scorer.spec)
            log.info("model hot-reloaded: now running %s", self.scorer.version)

    async def stop(self) -> None:
        edge = self.settings.edge
        await self.health.stop()
        if self.journal is not None and self.windows is not None:
            try:
                await self._score_ready()  # a step cut short by the stop may have left windows unscored
                self.journal.checkpoint(self.windows)  # the next start replays nothing
            except EdgeError as exc:
                log.error("final checkpoint of the windows in progress failed; the journal will be replayed: %s", exc)
            self.journal.close()
        if self.rollout is not None:
            self.rollout.stop()
        self.inbox.close()  # nothing drains any more: free a paho thread waiting for room
        if self.sparkplug is not None:
            await self.sparkplug.stop()
        await asyncio.to_thread(self.link.stop, self.health.will())
        if self.publisher is not None:
            await self.publisher.stop(edge.stop_timeout_s)
        log.info("edge agent %s stopped; %d rows left in the outbox", edge.gateway_id, self.outbox.depth)
        self.outbox.stop()
        self.metrics.close()

    # ------------------------------------------------------------------ helpers

    async def _restore(self) -> None:
        """Take over the windows in progress a crash (or stop) left, score what the replay completed, checkpoint."""
        if self.journal is None or self.windows is None:
            return
        restored = self.journal.restore(self.windows, self._readmit)
        if restored.discarded is not None:
            log.warning("windows in progress start again: the checkpoint was set aside: %s", restored.discarded)
        elif restored.assets or restored.replayed:
            log.info(
                "windows in progress restored: %d assets from the checkpoint, %d journalled messages replayed%s",
                restored.assets, restored.replayed, " (the last frame was cut short by the crash)" if restored.torn else "",
            )  # fmt: skip
        await self._score_ready()
        self.journal.checkpoint(self.windows)

    def _readmit(self, topic: str, payload: bytes) -> Telemetry | LogRecord:
        """A journalled payload back to its message (it passed admission when it arrived)."""
        try:
            return decode_input(payload, limit=max(len(payload), 1))
        except ContractError as exc:
            raise Rejected("invalid", str(exc)) from exc

    def _journal_frame(self, delivery: Delivery) -> tuple[str, bytes]:
        """A folded delivery as the contract's JSON: an MQTT payload already is; a Sparkplug metric batch is encoded."""
        assert delivery.message is not None
        if self.link.router.parse(delivery.topic) is not None:
            return delivery.topic, delivery.payload
        return delivery.topic, encode(delivery.message)

    def _fold(self, delivery: Delivery) -> Record | None:
        """Feed one delivery to its window; a refused one becomes a dead-letter record (or None if paced out)."""
        assert self.windows is not None
        refusal = delivery.rejected
        if refusal is None and delivery.message is not None:
            try:
                self.windows.add(delivery.message, delivery.arrived)
                return None
            except Rejected as exc:
                refusal = exc
        assert refusal is not None, "a delivery carries a message or a refusal"
        self.metrics.bad_messages.labels(refusal.reason).inc()
        self._refused += 1
        self.input.refused(refusal.reason)
        if refusal.reason not in self._reasons_logged:
            self._reasons_logged.add(refusal.reason)
            log.warning(
                "refused a payload on %s: %s (further %r refusals are counted, not logged)",
                delivery.topic,
                refusal,
                refusal.reason,
            )
        if not self._letters.take():
            self.metrics.deadletters_suppressed.inc()
            return None
        letter = dead_letter("edge-agent", str(refusal), delivery.payload, delivery.topic, time.time())
        return Record(f"dl:{uuid.uuid4().hex}", "deadletter", self.settings.topics.kafka_deadletter, None, encode(letter))

    def _check_input(self) -> None:
        """Warn (log, and the retained status at once) when the gateway places nothing; say when it does again."""
        if not self.link.connected:
            self.input.restart()
        line = self.input.check()
        if line is None:
            return
        if self.input.warning is None:
            log.info("%s", line)
        else:
            log.warning("scoring nothing: %s", line)
        if self.link.connected:
            self.link.publish(self.health.topic, self.health.status("online"), qos=1, retain=True)

    def _check_rollout(self) -> None:
        """Let the rollout handle what arrived; a new outcome goes into the retained status at once."""
        if self.rollout is None:
            return
        self.rollout.tick()
        if self.rollout.changed:
            self.rollout.changed = False
            if self.link.connected:
                self.link.publish(self.health.topic, self.health.status("online"), qos=1, retain=True)

    def _vitals(self) -> Vitals:
        return Vitals(
            model_version=self.scorer.version if self.windows is not None else None,
            assets=self.windows.asset_count if self.windows is not None else 0,
            windows_scored=self.windows_scored,
            outbox_depth=self.outbox.depth,
            uplink=self.publisher is not None and self.publisher.uplink,
            warning=self.input.warning,
            previous_model_version=None if self.rollout is None else self.rollout.previous_version,
            rollout=None if self.rollout is None else self.rollout.state.outcome,
        )


def _policy(settings: EdgeSettings) -> AssetPolicy:
    edge = settings.edge
    rated = rated_currents(edge.nameplates)
    return AssetPolicy(
        unknown=edge.unknown_assets, known=frozenset(edge.known_assets), max_assets=edge.max_assets,
        idle_s=edge.asset_idle_s, dedup_window=edge.dedup_window, reorder_hold_s=edge.reorder_hold_s,
        rated_currents=rated, channel_map=edge.channel_map,
    )  # fmt: skip
