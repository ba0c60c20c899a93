"""Prometheus metrics of one gateway daemon, served on a local HTTP port.

Each daemon owns its registry (no module-level default registry), so tests and `edge score`
can build as many as they like. Events are counted where they happen (stages hold a
reference to ``EdgeMetrics``); levels that already live in a stage (outbox depth, buffered
assets, the windowers' late-sample counters) are read at scrape time through ``watch``,
so they are never stale and never double-booked.

Names (all prefixed ``forewarn_edge_``) are listed in docs/edge.md.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

PREFIX = "forewarn_edge_"

# Seconds; inference of one batch and the added latency of one window sit between 0.5 ms and 1 s.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)

Reading = Callable[[], Iterable[tuple[str, str, float]]]
"""A stage's levels at scrape time: (name without prefix, help, value); a name ending in _total is a counter."""


class _Levels(Collector):
    """Gauges read from the stages when Prometheus scrapes (a missing stage simply reports nothing)."""

    def __init__(self) -> None:
        self._readings: list[Reading] = []
        self._lock = threading.Lock()

    def add(self, reading: Reading) -> None:
        with self._lock:
            self._readings.append(reading)

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            readings = list(self._readings)
        for reading in readings:
            for name, help_text, value in reading():
                family = CounterMetricFamily if name.endswith("_total") else GaugeMetricFamily
                yield family(PREFIX + name, help_text, value=value)


class EdgeMetrics:
    """Counters and histograms of the daemon, plus the levels its stages report."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.messages = Counter(PREFIX + "messages", "inbound messages accepted, by kind", ["kind"], registry=r)
        self.samples = Counter(PREFIX + "samples", "sensor samples (timestamp x channel) accepted", registry=r)
        self.bad_messages = Counter(
            PREFIX + "bad_messages", "inbound payloads refused and dead-lettered, by reason", ["reason"], registry=r
        )
        self.duplicates = Counter(PREFIX + "duplicates", "telemetry/log messages dropped as seq duplicates", registry=r)
        self.reordered = Counter(PREFIX + "reordered", "messages that arrived after a higher seq (used)", registry=r)
        self.missing = Counter(PREFIX + "missing_messages", "seq numbers skipped (messages never seen)", registry=r)
        self.seq_resets = Counter(PREFIX + "seq_resets", "publishers that restarted their seq numbering", registry=r)
        self.windows_scored = Counter(PREFIX + "windows_scored", "windows run through the model", registry=r)
        self.inference_seconds = Histogram(
            PREFIX + "inference_seconds", "model time per batch of windows", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.window_latency_seconds = Histogram(
            PREFIX + "window_latency_seconds",
            "added latency per window: arrival of the message that completed it -> prediction stored",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.kafka_sent = Counter(
            PREFIX + "kafka_sent",
            "records acknowledged by Kafka, by kind (live, historical, deadletter, escalation)",
            ["kind"],
            registry=r,
        )
        self.kafka_send_errors = Counter(PREFIX + "kafka_send_errors", "Kafka sends that failed or timed out", registry=r)
        self.kafka_connected = Gauge(PREFIX + "kafka_connected", "1 while the Kafka producer is connected", registry=r)
        self.mqtt_connected = Gauge(PREFIX + "mqtt_connected", "1 while the MQTT session is up", registry=r)
        self.mqtt_dropped = Counter(
            PREFIX + "mqtt_publish_dropped", "MQTT publishes dropped (broker away and local queue full)", registry=r
        )
        self.outbox_discarded = Counter(
            PREFIX + "outbox_discarded",
            "outbox rows discarded before delivery, by reason (bytes, age)",
            ["reason", "kind"],
            registry=r,
        )
        self.escalations = Counter(
            PREFIX + "escalations", "uncertain windows escalated to the plant tier's model (edge -> plant cascade)", registry=r
        )
        self.deadletters_suppressed = Counter(
            PREFIX + "deadletters_suppressed", "dead letters counted but not sent (over deadletter_rate)", registry=r
        )
        self.model_reloads = Counter(
            PREFIX + "model_reloads", "bundle hot-reloads, by result (ok, failed)", ["result"], registry=r
        )
        self.model_rollouts = Counter(
            PREFIX + "model_rollouts",
            "signed bundles received from the site's bundle topic, by outcome (installed, refused, rolled_back) and reason",
            ["outcome", "reason"],
            registry=r,
        )
        self._levels = _Levels()
        r.register(self._levels)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def watch(self, reading: Reading) -> None:
        """Report a stage's levels at every scrape."""
        self._levels.add(reading)

    def serve(self, host: str, port: int) -> int:
        """Start the HTTP endpoint (a daemon thread); returns the bound port (useful with port 0)."""
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        return int(self._server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
