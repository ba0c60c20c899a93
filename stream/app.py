"""The Faust app of a stream worker: its topics, its table, and the services that run beside the agents.

    forewarn.predictions ─┐                                 ┌─> forewarn.alerts ──> sink agent ──> DB, MQTT
                          ├─> aggregation (entity table)    ┤                  └──> feed tail ──> SSE, page
    forewarn.stream.control ┘   ^ commands (web, CLI), heartbeats, ticks (timer)
                                                            └─> forewarn.deadletter (bad input)

Values travel as raw bytes and are decoded with ``forewarn.contracts.decode``: a bad
payload is a dead letter, never a crashed agent (Faust's own serializers would crash it).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust
from mode import Service

from forewarn.contracts import Alert
from forewarn.kafka import warn_if_in_clear
from stream.aggregate import Aggregator
from stream.config import StreamSettings
from stream.feed import AlertHub, AlertTail
from stream.notify import Notifier
from stream.publish import MqttAlertPublisher
from stream.recovery import RecoveryWatchdog
from stream.sink import AsyncSink
from stream.store import AlertStore
from stream.topics import TopicKeeper
from stream.transport import BATCH_HOOKS, QuietMonitor, StreamFaustApp, choose_delivery, missing_hooks
from stream.web import FeedApi

log = logging.getLogger(__name__)

STATE_TABLE = "entity-state"
"""Faust table: entity key ('a:<asset>' / 'g:<gateway>') -> EntityState JSON bytes."""
SINK_AGENT = "sink"
AGGREGATE_AGENT = "aggregate"
"""The aggregation's agent, on the agent delivery path only (``stream.agents``)."""


def changelog_topic(settings: StreamSettings) -> str:
    return f"{settings.stream.app_id}-{STATE_TABLE}-changelog"


def topic_names(settings: StreamSettings) -> list[str]:
    """Every topic the worker reads or writes, created with the app's partition count before Faust starts."""
    t = settings.topics
    return [t.kafka_predictions, settings.stream.control_topic, t.kafka_alerts, t.kafka_deadletter, changelog_topic(settings)]


def _broker_options(settings: StreamSettings) -> dict[str, Any]:
    """Faust's ``broker`` and ``broker_credentials``, from the same ``client_options`` every Kafka client uses.

    Faust hands the credentials to each of its aiokafka clients (consumer, producer, admin),
    so the worker authenticates and verifies the brokers exactly as the gateway does.
    """
    kafka = settings.kafka
    options: dict[str, Any] = {"broker": ";".join(f"kafka://{h}" for h in kafka.bootstrap.split(","))}
    client = kafka.client_options()
    warn_if_in_clear(kafka)
    if "sasl_mechanism" in client:
        options["broker_credentials"] = faust.SASLCredentials(
            username=client["sasl_plain_username"],
            password=client["sasl_plain_password"],
            mechanism=client["sasl_mechanism"],
            ssl_context=client.get("ssl_context"),  # SASL_SSL with a context, SASL_PLAINTEXT without
        )
    elif "ssl_context" in client:
        options["broker_credentials"] = faust.SSLCredentials(client["ssl_context"])
    return options


STUCK_AFTER_TICKS = 10
"""No batch folded for this many clock ticks (each tick is itself a message through the control topic): stuck."""
DB_SLOW_S = 5.0
STARTUP_GRACE_S = 60.0


def assess(
    now: float,
    *,
    started_at: float,
    owned_partitions: int,
    last_batch_at: float | None,
    tick_s: float,
    db_outage_since: float | None,
    db_writing_since: float | None,
) -> tuple[str, list[str]]:
    """The worker's health from what it observes: ('ok' | 'starting' | 'idle' | 'degraded', problems).

    The clock tick travels through Kafka like every other input, so a worker that owns
    partitions and has folded no batch for several ticks is not consuming, whatever the
    reason (broker gone, topic deleted, consumer wedged).
    """
    problems = []
    if db_outage_since is not None:
        problems.append(f"database unavailable for {now - db_outage_since:.0f} s (alert writes held and retried)")
    elif db_writing_since is not None and now - db_writing_since > DB_SLOW_S:
        problems.append(f"a database write has been pending for {now - db_writing_since:.0f} s")
    stuck_after = max(10.0, STUCK_AFTER_TICKS * tick_s)
    if owned_partitions and (last_batch_at is None or now - last_batch_at > stuck_after):
        since = now - (last_batch_at or started_at)
        if last_batch_at is not None or since > STARTUP_GRACE_S:
            problems.append(f"consumer stuck: no batch folded for {since:.0f} s")
    if problems:
        return "degraded", problems
    if not owned_partitions and now - started_at < STARTUP_GRACE_S:
        return "starting", []
    if not owned_partitions:
        return "idle", []  # rebalancing, or more workers than partitions: a standby
    return "ok", []


class FeedService(Service):
    """The alert feed's web server, its Kafka tail and the MQTT publisher, started and stopped with the app."""

    def __init__(self, stream_app: StreamApp, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stream_app = stream_app
        self.runner: Any = None
        self.url: str | None = None

    async def on_start(self) -> None:
        from aiohttp import web

        s = self.stream_app
        if s.publisher is not None:
            s.publisher.start()
        s.notifier.start()
        if not s.settings.stream.web_enabled:
            return
        await s.tail.start()
        self.runner = web.AppRunner(s.api.routes(), access_log=None, shutdown_timeout=1.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, s.settings.stream.web_host, s.settings.stream.web_port)
        try:
            await site.start()
        except OSError as exc:  # the feed is a view: aggregation and alert writes go on without it
            log.error(
                "alert feed not served: cannot listen on %s:%s: %s", s.settings.stream.web_host, s.settings.stream.web_port, exc
            )
            return
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        log.info("alert feed on %s", self.url)
        if s.on_feed_started is not None:
            s.on_feed_started(self.url)

    async def on_stop(self) -> None:
        s = self.stream_app
        s.hub.close()
        if self.runner is not None:
            await self.runner.cleanup()
        await s.tail.stop()
        if s.publisher is not None:
            s.publisher.stop()
        await s.notifier.stop()
        s.sink.close()


class StreamApp:
    """One worker's Faust app and everything it owns, built from settings alone."""

    def __init__(
        self, settings: StreamSettings, token: str, on_feed_started: Any = None, recovery_stall_s: float | None = None
    ) -> None:
        self.settings = settings
        self.started_at = time.time()
        self.delivery = choose_delivery(settings.stream.delivery, missing_hooks(BATCH_HOOKS))
        log.info("aggregation delivery path: %s", self.delivery)
        self.on_feed_started = on_feed_started
        partitions = settings.partitions
        self.app = StreamFaustApp(
            settings.stream.app_id,
            **_broker_options(settings),
            store="memory://",
            datadir=str(settings.state_dir / "stream-data"),  # Faust's local data: under the state dir, not the cwd
            topic_partitions=partitions,
            broker_session_timeout=settings.kafka.session_timeout_s,
            broker_heartbeat_interval=max(1.0, settings.kafka.session_timeout_s / 5),
            consumer_auto_offset_reset="earliest",
            web_enabled=False,  # the feed runs its own aiohttp server (SSE needs a streaming response)
            stream_buffer_maxsize=max(4096, settings.stream.batch_size * 2),
            producer_linger_ms=5,
            producer_max_batch_size=1_000_000,
            consumer_max_fetch_size=4 * 1024 * 1024,
            broker_max_poll_records=settings.stream.batch_size,  # one fetch is at most one aggregation batch
            table_cleanup_interval=3600.0,
            topic_allow_declare=True,
            monitor=QuietMonitor(),
        )
        raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
        t = settings.topics
        self.inputs = self.app.topic(t.kafka_predictions, settings.stream.control_topic, partitions=partitions, **raw)
        self.alerts = self.app.topic(t.kafka_alerts, partitions=partitions, **raw)
        self.control = self.app.topic(settings.stream.control_topic, partitions=partitions, **raw)
        self.deadletter = self.app.topic(t.kafka_deadletter, partitions=partitions, **raw)
        self.table = self.app.Table(STATE_TABLE, default=None, partitions=partitions, key_type=str, value_type=bytes)
        self.sink = AsyncSink(AlertStore(settings.database_url(), settings.database.echo), settings.stream.db_retry_max_s)
        self.publisher = MqttAlertPublisher(settings.mqtt, settings.topics) if settings.stream.mqtt_publish else None
        self.notifier = Notifier(settings.stream.notify, settings.stream.smtp)
        self.aggregator = Aggregator(
            settings,
            self.table,
            self.alerts,
            self.control,
            self.deadletter,
            active_alerts=self.sink.active_alerts,
            stored_alert=self.sink.stored_alert,
            on_change=self.on_change,
        )
        self.hub = AlertHub()
        self.tail = AlertTail(settings.kafka, t.kafka_alerts, self.hub)
        self.api = FeedApi(
            self.sink,
            self.hub,
            self.send_command,
            token,
            self.stats,
            settings.stream.command_wait_s,
            settings.stream.api_tokens,
            settings.stream.read_auth,
        )
        self.feed = FeedService(self)
        self.app.add_dependency(self.feed)
        self.keeper = TopicKeeper(settings.kafka, topic_names(settings), partitions, settings.stream.topic_check_s)
        self.app.add_dependency(self.keeper)
        stall_s = settings.stream.recovery_stall_s if recovery_stall_s is None else recovery_stall_s
        self.watchdog = RecoveryWatchdog(self.app, stall_s or 0.0)
        if stall_s:
            self.app.add_dependency(self.watchdog)
        from stream.agents import register

        register(self)

    def on_change(self, alert: Alert) -> None:
        """Each alert change this worker decided, once sent to Kafka: MQTT and notifications, never waiting for the DB."""
        if self.publisher is not None:
            self.publisher.publish(alert)
        self.notifier.submit(alert)

    async def send_command(self, asset_id: str, value: bytes) -> None:
        await self.control.send(key=asset_id.encode(), value=value)

    def _owned_partitions(self) -> int:
        """Partitions assigned to this worker; 0 while the consumer starts or rebalances (it cannot say yet)."""
        try:
            return len(self.app.consumer.assignment()) if self.app.consumer is not None else 0
        except Exception:  # Faust's consumer raises while its thread starts or rejoins
            return 0

    def stats(self) -> dict[str, Any]:
        """Counters and an honest status: 'ok', 'starting', or 'degraded' with the problems named."""
        status, problems = assess(
            time.time(),
            started_at=self.started_at,
            owned_partitions=self._owned_partitions(),
            last_batch_at=self.aggregator.last_batch_at,
            tick_s=self.settings.stream.tick_s,
            db_outage_since=self.sink.outage_since,
            db_writing_since=self.sink.writing_since,
        )
        counters: dict[str, Any] = {"status": status, "problems": problems, "delivery": self.delivery}
        counters.update(self.aggregator.counters)
        counters.update(
            alerts_written=self.sink.written,
            db_retries=self.sink.retries,
            db_outage=self.sink.outage_since is not None,
            mqtt_published=self.publisher.published if self.publisher else 0,
            recoveries_ended=self.watchdog.forced,
            topics_recreated=self.keeper.recreated,
            **{f"notify_{k}": v for k, v in self.notifier.counters.items()},
        )
        return counters
