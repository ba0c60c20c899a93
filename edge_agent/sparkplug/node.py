"""The gateway as a Sparkplug B edge node: its health as node metrics, each asset's prediction as a device.

What an Ignition-style host sees under ``spBv1.0/<group_id>/.../<edge_node_id>``:

- ``NDEATH`` is the MQTT will of the Sparkplug connection, carrying ``bdSeq``; the
  ``NBIRTH`` after each connect carries the same ``bdSeq`` (it counts sessions, mod 256), ``seq``
  0, ``Node Control/Rebirth`` and the gateway's health (``Gateway/...`` metrics);
- one device per asset: ``DBIRTH`` the first time the asset is scored (every metric with
  its name, alias and datatype), then ``DDATA`` per prediction by alias; a prediction
  whose metric set differs (a hot-reloaded model with other classes) rebirths the node;
- every ``status_interval_s`` an ``NDATA`` with the health metrics that changed;
- an ``NCMD`` with ``Node Control/Rebirth`` = true publishes ``NBIRTH`` and every
  ``DBIRTH`` again, with the latest values.

Device metrics: ``Fault`` (the most likely class), ``Healthy`` (that class is normal),
``Confidence``, ``Anomaly Score``, ``Probability/<class>`` per class, ``TTF Hours`` (null
when the model gives none), ``Window End`` (DateTime) and ``Model Version``.

Sequence numbers must reach the broker in order, so every publish takes ``_lock``: the
event loop (predictions, health) and the paho thread (connect, NCMD) both publish.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from edge_agent.health import Vitals
from edge_agent.sparkplug.codec import BD_SEQ, REBIRTH, AliasTable, DataType, Metric, SpPayload, SpTopic, decode, encode, now_ms
from forewarn.contracts import NORMAL, FaultPrediction

Reading = tuple[str, DataType, int | float | bool | str | None]
"""(metric name, datatype, value) before aliases are given."""

Send = Callable[[str, bytes, int], bool]
"""Publish (topic, payload, qos); False if it could not even be queued."""


def asset_metrics(p: FaultPrediction) -> list[Reading]:
    """One prediction as device metrics."""
    readings: list[Reading] = [
        ("Fault", DataType.String, p.fault),
        ("Healthy", DataType.Boolean, p.fault == NORMAL),
        ("Confidence", DataType.Double, p.confidence),
        ("Anomaly Score", DataType.Double, p.anomaly_score),
    ]
    readings += [(f"Probability/{name}", DataType.Double, p.probabilities[name]) for name in sorted(p.probabilities)]
    readings += [
        ("TTF Hours", DataType.Double, p.ttf_hours),
        ("Window End", DataType.DateTime, round(p.window_end * 1000)),
        ("Model Version", DataType.String, p.model_version),
    ]
    return readings


def health_metrics(v: Vitals) -> list[Reading]:
    """The gateway's vitals as node metrics."""
    return [
        ("Gateway/Model Version", DataType.String, v.model_version),
        ("Gateway/Assets", DataType.UInt64, v.assets),
        ("Gateway/Windows Scored", DataType.UInt64, v.windows_scored),
        ("Gateway/Outbox Depth", DataType.UInt64, v.outbox_depth),
        ("Gateway/Uplink", DataType.Boolean, v.uplink),
        ("Gateway/Warning", DataType.String, v.warning),
    ]


class SparkplugNode:
    """Builds and publishes this gateway's Sparkplug B node and device messages."""

    def __init__(self, namespace: str, group: str, node_id: str, send: Send, vitals: Callable[[], Vitals]) -> None:
        self.namespace = namespace
        self.group = group
        self.node_id = node_id
        self.send = send
        self.vitals = vitals
        self.bd_seq = 0
        self.connected = False
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._seq = 0
        self._aliases: dict[tuple[str | None, str], int] = {}  # (device or None for the node, name) -> alias
        self._assets: dict[str, list[Reading]] = {}  # asset -> its latest prediction's metrics
        self._health: list[Reading] = []

    def topic(self, kind: str, device: str | None = None) -> str:
        return str(SpTopic(self.namespace, self.group, kind, self.node_id, device))

    # ------------------------------------------------------------------ session (paho thread)

    def will(self) -> tuple[str, bytes]:
        """The NDEATH for the current ``bdSeq``: set as the MQTT will before each connect."""
        death = SpPayload(metrics=(Metric(name=BD_SEQ, datatype=DataType.UInt64, value=self.bd_seq),), timestamp_ms=now_ms())
        return self.topic("NDEATH"), encode(death)

    def session_ended(self) -> None:
        """The connection is gone (the broker has sent our will): the next session gets the next ``bdSeq``."""
        with self._lock:
            self.connected = False
            self.bd_seq = (self.bd_seq + 1) % 256

    def birth(self) -> None:
        """NBIRTH then a DBIRTH per known asset: after each connect and on a rebirth command."""
        with self._lock:
            self.connected = True
            self._birth_locked()

    def command(self, payload: bytes, limit: int) -> bool:
        """Apply an NCMD; True if it asked for (and got) a rebirth. Raises ``Rejected`` for a bad payload."""
        with self._lock:
            node = [Metric(name=name, alias=alias) for (device, name), alias in self._aliases.items() if device is None]
        names = AliasTable(node)
        for metric in decode(payload, limit).metrics:
            if names.resolve(metric).name == REBIRTH and metric.value is True:
                self.counts["rebirths_answered"] += 1
                self.birth()
                return True
        return False

    # ------------------------------------------------------------------ data (event loop)

    def predictions(self, predictions: list[FaultPrediction]) -> None:
        """Publish each prediction as its asset's DDATA (a DBIRTH first for a new asset)."""
        for p in predictions:
            readings = asset_metrics(p)
            with self._lock:
                before = self._assets.get(p.asset_id)
                self._assets[p.asset_id] = readings
                if not self.connected:
                    continue  # the birth after the reconnect carries the latest values
                if before is None:
                    self._publish("DBIRTH", self._metrics(p.asset_id, readings, birth=True), p.asset_id)
                elif [r[0] for r in before] != [r[0] for r in readings]:
                    self._birth_locked()  # another set of metrics: the host must learn it from a birth
                else:
                    self._publish("DDATA", self._metrics(p.asset_id, readings, birth=False), p.asset_id)

    def health(self) -> None:
        """NDATA with the health metrics that changed since the last birth or NDATA."""
        readings = health_metrics(self.vitals())
        with self._lock:
            changed = [r for r, old in zip(readings, self._health, strict=False) if r != old]
            self._health = readings
            if self.connected and changed:
                self._publish("NDATA", self._metrics(None, changed, birth=False))

    # ------------------------------------------------------------------ internals (hold _lock)

    def _birth_locked(self) -> None:
        self._seq = 0
        self._health = health_metrics(self.vitals())
        node: list[Reading] = [(BD_SEQ, DataType.UInt64, self.bd_seq), (REBIRTH, DataType.Boolean, False), *self._health]
        self._publish("NBIRTH", self._metrics(None, node, birth=True))
        for asset, readings in self._assets.items():
            self._publish("DBIRTH", self._metrics(asset, readings, birth=True), asset)

    def _metrics(self, device: str | None, readings: list[Reading], birth: bool) -> tuple[Metric, ...]:
        """Births name each metric with its alias and datatype; data messages use the alias alone."""
        stamp, out = now_ms(), []
        for name, datatype, value in readings:
            alias = self._aliases.setdefault((device, name), len(self._aliases) + 1)
            out.append(
                Metric(
                    name=name if birth else None,
                    alias=alias,
                    datatype=datatype,
                    value=value,
                    timestamp_ms=stamp,
                    is_null=value is None,
                )
            )
        return tuple(out)

    def _publish(self, kind: str, metrics: tuple[Metric, ...], device: str | None = None) -> None:
        payload = SpPayload(metrics=metrics, seq=self._seq, timestamp_ms=now_ms())
        self._seq = (self._seq + 1) % 256
        if self.send(self.topic(kind, device), encode(payload), 0):
            self.counts[f"{kind.lower()}_sent"] += 1
        else:
            self.counts["dropped"] += 1

    def levels(self) -> list[tuple[str, str, float]]:
        c = self.counts
        return [
            ("sparkplug_node_births_sent_total", "NBIRTH published by this gateway's edge node", float(c["nbirth_sent"])),
            ("sparkplug_device_data_sent_total", "DDATA (predictions) published as an edge node", float(c["ddata_sent"])),
            ("sparkplug_rebirths_answered_total", "NCMD rebirth requests this gateway answered", float(c["rebirths_answered"])),
            ("sparkplug_publish_dropped_total", "Sparkplug publishes that could not be queued", float(c["dropped"])),
        ]  # fmt: skip
