"""Sparkplug B on the wire: topics, datatypes, and payloads to and from plain Python values.

A payload decodes into ``SpPayload`` (frozen dataclasses, no protobuf object escapes this
module). Metric values are typed by their Sparkplug datatype: signed integers travel as
two's complement in unsigned fields and come back negative here. A payload that cannot be
used raises ``Rejected`` with a stable ``sparkplug_*`` reason (counted and dead-lettered by
the daemon like any refused payload): nothing bad is dropped silently.

Data messages name their metrics by alias only; ``AliasTable`` holds what a birth bound
to each alias (name and datatype) and resolves them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import IntEnum

from edge_agent.errors import Rejected
from edge_agent.sparkplug.schema import Payload

NAMESPACE = "spBv1.0"
REBIRTH = "Node Control/Rebirth"
BD_SEQ = "bdSeq"
NODE_TYPES = ("NBIRTH", "NDEATH", "NDATA", "NCMD")
DEVICE_TYPES = ("DBIRTH", "DDEATH", "DDATA", "DCMD")


class DataType(IntEnum):
    """Sparkplug B datatype codes (the ``datatype`` field of a metric)."""

    Unknown = 0
    Int8 = 1
    Int16 = 2
    Int32 = 3
    Int64 = 4
    UInt8 = 5
    UInt16 = 6
    UInt32 = 7
    UInt64 = 8
    Float = 9
    Double = 10
    Boolean = 11
    String = 12
    DateTime = 13
    Text = 14
    UUID = 15
    DataSet = 16
    Bytes = 17
    File = 18
    Template = 19
    PropertySet = 20
    PropertySetList = 21


_SIGNED_BITS = {DataType.Int8: 8, DataType.Int16: 16, DataType.Int32: 32, DataType.Int64: 64}
_INT32 = {DataType.Int8, DataType.Int16, DataType.Int32, DataType.UInt8, DataType.UInt16, DataType.UInt32}
_INT64 = {DataType.Int64, DataType.UInt64, DataType.DateTime}
_STRINGS = {DataType.String, DataType.Text, DataType.UUID}
NUMERIC = frozenset(_INT32 | _INT64 | {DataType.Float, DataType.Double, DataType.Boolean})
"""Datatypes whose value is a number (a Boolean is 0 or 1): what can become a telemetry sample."""

Value = int | float | bool | str | bytes | None


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric of a payload; ``value`` is None for a null value or one of an unsupported kind (DataSet, Template)."""

    name: str | None = None
    alias: int | None = None
    datatype: DataType = DataType.Unknown
    value: Value = None
    timestamp_ms: int | None = None
    is_null: bool = False
    is_historical: bool = False


@dataclass(frozen=True, slots=True)
class SpPayload:
    metrics: tuple[Metric, ...] = ()
    seq: int | None = None
    timestamp_ms: int | None = None


@dataclass(frozen=True, slots=True)
class SpTopic:
    """``namespace/group/TYPE/edge_node[/device]``; ``device`` is None for node messages."""

    namespace: str
    group: str
    type: str
    node: str
    device: str | None = None

    def __str__(self) -> str:
        parts = [self.namespace, self.group, self.type, self.node] + ([self.device] if self.device is not None else [])
        return "/".join(parts)


def parse_topic(topic: str, namespace: str = NAMESPACE) -> SpTopic | None:
    """The topic's parts, or None if it is not a Sparkplug B node or device topic of this namespace."""
    levels = topic.split("/")
    if levels[0] != namespace:
        return None
    if len(levels) == 4 and levels[2] in NODE_TYPES:
        return SpTopic(*levels)
    if len(levels) == 5 and levels[2] in DEVICE_TYPES:
        return SpTopic(*levels)
    return None


def now_ms() -> int:
    return round(time.time() * 1000)


# ------------------------------------------------------------------------------------ encode


def encode(payload: SpPayload) -> bytes:
    """Serialise; raises ValueError for a value its datatype cannot carry (a bug of the caller, not input)."""
    message = Payload()
    if payload.timestamp_ms is not None:
        message.timestamp = payload.timestamp_ms
    if payload.seq is not None:
        message.seq = payload.seq
    for metric in payload.metrics:
        _put_metric(message.metrics.add(), metric)
    data: bytes = message.SerializeToString()
    return data


def _put_metric(out: object, metric: Metric) -> None:
    m: object = out
    if metric.name is not None:
        m.name = metric.name  # type: ignore[attr-defined]
    if metric.alias is not None:
        m.alias = metric.alias  # type: ignore[attr-defined]
    if metric.timestamp_ms is not None:
        m.timestamp = metric.timestamp_ms  # type: ignore[attr-defined]
    if metric.datatype != DataType.Unknown:
        m.datatype = int(metric.datatype)  # type: ignore[attr-defined]
    if metric.is_historical:
        m.is_historical = True  # type: ignore[attr-defined]
    if metric.is_null or metric.value is None:
        m.is_null = True  # type: ignore[attr-defined]
        return
    field, raw = _wire_value(metric.datatype, metric.value)
    setattr(m, field, raw)


_INFERRED = (
    (bool, DataType.Boolean),
    (int, DataType.Int64),
    (float, DataType.Double),
    (str, DataType.String),
    (bytes, DataType.Bytes),
)


def _wire_value(datatype: DataType, value: Value) -> tuple[str, Value]:
    if datatype == DataType.Unknown:  # a data message may leave the type to the birth: carry the value as Python has it
        datatype = next((code for kind, code in _INFERRED if isinstance(value, kind)), DataType.Unknown)
    if datatype in _INT32 or datatype in _INT64:
        if not isinstance(value, int):
            raise ValueError(f"a {datatype.name} metric needs an int, not {value!r}")
        bits = 32 if datatype in _INT32 else 64
        return ("int_value" if bits == 32 else "long_value"), value & ((1 << bits) - 1)
    if datatype in (DataType.Float, DataType.Double) and isinstance(value, int | float):
        return ("float_value" if datatype == DataType.Float else "double_value"), float(value)
    if datatype == DataType.Boolean and isinstance(value, bool):
        return "boolean_value", value
    if datatype in _STRINGS and isinstance(value, str):
        return "string_value", value
    if datatype in (DataType.Bytes, DataType.File) and isinstance(value, bytes):
        return "bytes_value", value
    raise ValueError(f"cannot encode {value!r} as a Sparkplug {datatype.name}")


# ------------------------------------------------------------------------------------ decode


def decode(data: bytes, limit: int) -> SpPayload:
    """Parse one payload; raises ``Rejected`` (``sparkplug_oversized``, ``sparkplug_undecodable``)."""
    if len(data) > limit:
        raise Rejected("sparkplug_oversized", f"payload is {len(data):,} bytes, over the {limit:,} byte limit")
    try:
        message = Payload.FromString(data)
    except Exception as exc:  # protobuf's DecodeError, or anything a hostile payload provokes
        raise Rejected("sparkplug_undecodable", f"not a Sparkplug B payload: {exc}") from exc
    metrics = tuple(_metric(m, i) for i, m in enumerate(message.metrics))
    return SpPayload(
        metrics=metrics,
        seq=message.seq if message.HasField("seq") else None,
        timestamp_ms=message.timestamp if message.HasField("timestamp") else None,
    )


def _metric(m: object, index: int) -> Metric:
    pb: object = m
    kind = pb.WhichOneof("value")  # type: ignore[attr-defined]
    code = pb.datatype if pb.HasField("datatype") else 0  # type: ignore[attr-defined]
    try:
        datatype = DataType(code)
    except ValueError:
        raise Rejected("sparkplug_bad_metric", f"metric {index} has unknown datatype {code}") from None
    raw: Value = None
    if kind in ("int_value", "long_value", "float_value", "double_value", "boolean_value", "string_value", "bytes_value"):
        raw = getattr(pb, kind)
    metric = Metric(
        name=pb.name if pb.HasField("name") else None,  # type: ignore[attr-defined]
        alias=pb.alias if pb.HasField("alias") else None,  # type: ignore[attr-defined]
        datatype=datatype,
        value=raw,
        timestamp_ms=pb.timestamp if pb.HasField("timestamp") else None,  # type: ignore[attr-defined]
        is_null=pb.is_null,  # type: ignore[attr-defined]
        is_historical=pb.is_historical,  # type: ignore[attr-defined]
    )
    if metric.name is None and metric.alias is None:
        raise Rejected("sparkplug_bad_metric", f"metric {index} has neither a name nor an alias")
    return typed(metric)


def typed(metric: Metric) -> Metric:
    """The value as its datatype means it: signed integers made negative again (idempotent).

    Int8, Int16 and Int32 travel in a uint32: as the 32-bit two's complement (Tahu's Java,
    Ignition, and what ``encode`` writes) or as the type's own width (Tahu's Python); both are read.
    """
    bits = _SIGNED_BITS.get(metric.datatype)
    value = metric.value
    if bits is None or not isinstance(value, int) or isinstance(value, bool) or value < 0:
        return metric
    if value >= 1 << 63:  # a 64-bit complement, whatever the declared width (a long_value from a lax node)
        return replace(metric, value=value - (1 << 64))
    if bits < 64 and (1 << 31) <= value < (1 << 32):
        return replace(metric, value=value - (1 << 32))
    if (1 << (bits - 1)) <= value < (1 << bits):
        return replace(metric, value=value - (1 << bits))
    return metric


def sample(metric: Metric) -> float | None:
    """A numeric metric as a telemetry sample: None for a null or non-finite value."""
    value = metric.value
    if metric.is_null or value is None or isinstance(value, str | bytes):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


class AliasTable:
    """What one birth (NBIRTH or DBIRTH) bound: alias -> name, name -> datatype."""

    def __init__(self, births: Iterable[Metric] = ()) -> None:
        self._names: dict[int, str] = {}
        self._types: dict[str, DataType] = {}
        for metric in births:
            self._define(metric)

    def _define(self, metric: Metric) -> None:
        if metric.name is None:
            raise Rejected("sparkplug_bad_birth", f"a birth metric (alias {metric.alias}) has no name")
        if metric.alias is not None:
            bound = self._names.get(metric.alias)
            if bound is not None and bound != metric.name:
                raise Rejected("sparkplug_bad_birth", f"alias {metric.alias} is bound to both {bound!r} and {metric.name!r}")
            self._names[metric.alias] = metric.name
        self._types[metric.name] = metric.datatype

    def __len__(self) -> int:
        return len(self._types)

    def resolve(self, metric: Metric) -> Metric:
        """The metric with its name and datatype from the birth; raises Rejected(sparkplug_unknown_alias)."""
        name = metric.name
        if name is None:
            assert metric.alias is not None, "decode refuses a metric with neither name nor alias"
            name = self._names.get(metric.alias)
            if name is None:
                raise Rejected("sparkplug_unknown_alias", f"alias {metric.alias} was not defined by the last birth")
        datatype = metric.datatype if metric.datatype != DataType.Unknown else self._types.get(name, DataType.Unknown)
        return typed(replace(metric, name=name, datatype=datatype))
