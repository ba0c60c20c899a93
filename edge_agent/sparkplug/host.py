"""Sparkplug B ingest: the gateway as a host application that turns device data into ``Telemetry``.

Per edge node it keeps what the Sparkplug rules need to read the node's messages right:

- ``NBIRTH`` starts a session: its ``bdSeq``, ``seq`` 0, and the node's metric aliases;
  every later message of the node (``NDATA``, ``DBIRTH``, ``DDATA``, ``DDEATH``) must carry
  the next ``seq`` (mod 256);
- ``DBIRTH`` binds each device metric's name, alias and datatype; ``DDATA`` then names
  metrics by alias alone, resolved here;
- ``NDEATH`` (the node's MQTT will) ends the session if its ``bdSeq`` is the session's (a
  late will of an older session is ignored); ``DDEATH`` forgets one device.

A message whose ``seq`` is not the next one, data of a node or device never born (the
gateway started after the birth), or an alias no birth defined means this gateway may
read the node wrong: it sends the node an ``NCMD`` with ``Node Control/Rebirth`` = true
(at most once per ``rebirth_interval_s``, counted) and refuses the node's messages
(counted, dead-lettered) until the new ``NBIRTH`` arrives. Birth values are definitions,
not samples: only ``DDATA`` feeds windows.

A ``DDATA`` becomes ``Telemetry`` of asset = device id (one batch, or several when it
holds more channels or timestamps than one batch may): each numeric metric is a
channel (``channels`` maps metric names to channel names; an unmapped name is lowercased
with runs of other characters made ``_``), samples at each metric's own timestamp. Metrics
that are not numbers (strings, bytes, datasets) or have no channel name are counted, not used.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from pydantic import ValidationError

from edge_agent.errors import Rejected
from edge_agent.sparkplug.codec import (
    BD_SEQ,
    NUMERIC,
    REBIRTH,
    AliasTable,
    DataType,
    Metric,
    SpPayload,
    SpTopic,
    decode,
    encode,
    now_ms,
    sample,
)
from forewarn.contracts import MAX_CHANNELS, MAX_SAMPLES, Telemetry

_CHANNEL = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


def channel_name(metric: str, channels: Mapping[str, str]) -> str | None:
    """The channel a metric feeds: the configured one, else the name made a channel name; None if it cannot be."""
    mapped = channels.get(metric)
    if mapped is not None:
        return mapped
    name = re.sub(r"[^a-z0-9]+", "_", metric.lower()).strip("_")
    return name if _CHANNEL.match(name) else None


@dataclass
class _Node:
    bd_seq: int | None
    next_seq: int
    devices: dict[str, AliasTable] = field(default_factory=dict)
    in_sync: bool = True


RebirthRequest = Callable[[SpTopic, bytes], None]
"""Publishes an NCMD (topic, payload) to a node."""


class SparkplugHost:
    """Reads Sparkplug B node and device messages; ``admit`` returns the Telemetry a DDATA carries."""

    def __init__(
        self,
        site: str,
        channels: Mapping[str, str],
        request: RebirthRequest,
        *,
        limit: int,
        ignore_node: tuple[str, str] | None = None,
        rebirth_interval_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.site = site
        self.channels = dict(channels)
        self.request = request
        self.limit = limit
        self.ignore_node = ignore_node
        self.rebirth_interval_s = rebirth_interval_s
        self.clock = clock
        self._nodes: dict[tuple[str, str], _Node] = {}
        self._asked: dict[tuple[str, str], float] = {}
        self._seq: Counter[str] = Counter()  # per asset: the Telemetry seq (the window stage checks it)
        self.counts: Counter[str] = Counter()

    def admit(self, topic: SpTopic, payload: bytes) -> list[Telemetry]:
        """Apply one node or device message; the Telemetry a DDATA carries, else []. Raises ``Rejected``."""
        key = (topic.group, topic.node)
        if key == self.ignore_node or topic.type in ("NCMD", "DCMD"):
            self.counts["ignored"] += 1  # our own node's messages, or another host's commands
            return []
        self.counts[topic.type.lower()] += 1
        message = decode(payload, self.limit)
        if topic.type == "NBIRTH":
            self._birth(key, message)
            return []
        if topic.type == "NDEATH":
            self._death(key, message)
            return []
        node = self._in_sequence(topic, key, message)
        if topic.type == "DBIRTH":
            node.devices[str(topic.device)] = AliasTable(message.metrics)
        elif topic.type == "DDEATH":
            node.devices.pop(str(topic.device), None)
        elif topic.type == "DDATA":
            return self._telemetry(topic, key, node, message)
        return []

    # ------------------------------------------------------------------ session and sequence

    def _birth(self, key: tuple[str, str], message: SpPayload) -> None:
        AliasTable(message.metrics)  # refuses a malformed birth before it replaces the session
        bd_seq = _bd_seq(message.metrics)
        self._nodes[key] = _Node(bd_seq=bd_seq, next_seq=((message.seq or 0) + 1) % 256)
        self._asked.pop(key, None)

    def _death(self, key: tuple[str, str], message: SpPayload) -> None:
        node = self._nodes.get(key)
        bd_seq = _bd_seq(message.metrics)
        if node is not None and (node.bd_seq is None or bd_seq is None or bd_seq == node.bd_seq):
            del self._nodes[key]
        else:
            self.counts["stale_ndeath"] += 1  # the will of an older session, published after the new birth

    def _in_sequence(self, topic: SpTopic, key: tuple[str, str], message: SpPayload) -> _Node:
        """The node's state if this message is the next one of a known session; else ask for a rebirth and refuse."""
        node = self._nodes.get(key)
        if node is None:
            self._rebirth(topic, key)
            raise Rejected(
                "sparkplug_unborn", f"{topic.type} from {topic.group}/{topic.node} before its NBIRTH: rebirth requested"
            )
        if not node.in_sync:
            self._rebirth(topic, key)
            raise Rejected("sparkplug_out_of_sync", f"{topic} after a sequence gap, waiting for the NBIRTH requested")
        if message.seq is None:
            node.in_sync = False
            self._rebirth(topic, key)
            raise Rejected("sparkplug_no_seq", f"{topic} carries no seq: rebirth requested")
        if message.seq != node.next_seq:
            node.in_sync = False
            self.counts["seq_gaps"] += 1
            self._rebirth(topic, key)
            raise Rejected("sparkplug_seq_gap", f"{topic}: seq {message.seq}, expected {node.next_seq}: rebirth requested")
        node.next_seq = (message.seq + 1) % 256
        return node

    def _rebirth(self, topic: SpTopic, key: tuple[str, str]) -> None:
        now = self.clock()
        last = self._asked.get(key)
        if last is not None and now - last < self.rebirth_interval_s:
            return
        self._asked[key] = now
        self.counts["rebirths_requested"] += 1
        command = SpTopic(topic.namespace, topic.group, "NCMD", topic.node)
        metric = Metric(name=REBIRTH, datatype=DataType.Boolean, value=True, timestamp_ms=now_ms())
        self.request(command, encode(SpPayload(metrics=(metric,), timestamp_ms=now_ms())))

    # ------------------------------------------------------------------ data

    def _telemetry(self, topic: SpTopic, key: tuple[str, str], node: _Node, message: SpPayload) -> list[Telemetry]:
        device = str(topic.device)
        table = node.devices.get(device)
        if table is None:
            node.in_sync = False
            self._rebirth(topic, key)
            raise Rejected("sparkplug_unborn", f"DDATA of device {device!r} before its DBIRTH: rebirth requested")
        try:
            metrics = [table.resolve(m) for m in message.metrics]
        except Rejected:
            node.in_sync = False
            self._rebirth(topic, key)
            raise
        columns = self._columns(metrics, message.timestamp_ms)
        if not columns:
            self.counts["ddata_without_samples"] += 1
            return []
        try:
            batches = [self._batch(device, self._seq[device] + i, chunk) for i, chunk in enumerate(_chunks(columns))]
        except ValidationError as exc:
            raise Rejected("invalid", f"{topic}: {exc}") from exc
        self._seq[device] += len(batches)
        return batches

    def _batch(self, device: str, seq: int, columns: dict[str, dict[int, float | None]]) -> Telemetry:
        stamps = sorted({ts for values in columns.values() for ts in values})
        return Telemetry(
            site=self.site,
            asset_id=device,
            seq=seq,
            timestamps=[ts / 1000.0 for ts in stamps],
            channels={name: [values.get(ts) for ts in stamps] for name, values in columns.items()},
        )

    def _columns(self, metrics: Iterable[Metric], default_ms: int | None) -> dict[str, dict[int, float | None]]:
        """channel -> {timestamp ms: sample}; metrics with no number or no channel name are counted, not used."""
        columns: dict[str, dict[int, float | None]] = {}
        for m in metrics:
            assert m.name is not None, "resolved"
            channel = channel_name(m.name, self.channels) if m.datatype in NUMERIC else None
            if channel is None:
                self.counts["metrics_unused"] += 1
                continue
            ts = m.timestamp_ms if m.timestamp_ms is not None else default_ms
            if ts is None:
                raise Rejected("sparkplug_no_timestamp", f"metric {m.name!r} and its payload carry no timestamp")
            columns.setdefault(channel, {})[ts] = sample(m)
        return columns

    def levels(self) -> list[tuple[str, str, float]]:
        """Counters for the metrics endpoint."""
        c = self.counts
        return [
            ("sparkplug_births_total", "Sparkplug NBIRTH messages read", float(c["nbirth"])),
            ("sparkplug_device_births_total", "Sparkplug DBIRTH messages read", float(c["dbirth"])),
            ("sparkplug_device_data_total", "Sparkplug DDATA messages read", float(c["ddata"])),
            ("sparkplug_seq_gaps_total", "Sparkplug seq numbers out of order (each asks for a rebirth)", float(c["seq_gaps"])),
            ("sparkplug_rebirths_requested_total", "rebirth NCMDs sent to edge nodes", float(c["rebirths_requested"])),
            ("sparkplug_stale_ndeath_total", "NDEATH of an older session (bdSeq differs), ignored", float(c["stale_ndeath"])),
            ("sparkplug_metrics_unused_total", "DDATA metrics not numeric or with no channel name", float(c["metrics_unused"])),
            ("sparkplug_nodes", "Sparkplug edge nodes with a live session", float(len(self._nodes))),
        ]  # fmt: skip


def _chunks(columns: dict[str, dict[int, float | None]]) -> Iterator[dict[str, dict[int, float | None]]]:
    """Columns in batches the telemetry contract takes: at most MAX_CHANNELS channels and MAX_SAMPLES timestamps.

    A device with a hundred tags, or a DDATA of stored history, is split rather than refused.
    """
    names = list(columns)
    for first in range(0, len(names), MAX_CHANNELS):
        group = {name: columns[name] for name in names[first : first + MAX_CHANNELS]}
        stamps = sorted({ts for values in group.values() for ts in values})
        for start in range(0, len(stamps), MAX_SAMPLES):
            low, high = stamps[start], stamps[min(start + MAX_SAMPLES, len(stamps)) - 1]
            part = {name: {ts: v for ts, v in values.items() if low <= ts <= high} for name, values in group.items()}
            yield {name: values for name, values in part.items() if values}


def _bd_seq(metrics: Iterable[Metric]) -> int | None:
    for m in metrics:
        if m.name == BD_SEQ and isinstance(m.value, int):
            return m.value
    return None
