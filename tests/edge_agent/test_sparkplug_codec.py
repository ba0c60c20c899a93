"""The Sparkplug B codec: the runtime schema is the .proto's, payloads round-trip, aliases resolve, bad input is refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edge_agent.errors import Rejected
from edge_agent.sparkplug import schema
from edge_agent.sparkplug.codec import AliasTable, DataType, Metric, SpPayload, SpTopic, decode, encode, parse_topic

PROTO = Path(schema.__file__).with_name("sparkplug_b.proto")
LIMIT = 1 << 20


def read_proto(text: str) -> tuple[dict[str, set[tuple[str, str, str, int]]], dict[str, int]]:
    """From the .proto text (its brace structure): message path -> {(label, type, name, number)}, and -> first extension."""
    text = re.sub(r"//[^\n]*", "", text)
    fields: dict[str, set[tuple[str, str, str, int]]] = {}
    extensions: dict[str, int] = {}
    scopes: list[tuple[str, str]] = []  # (message or oneof, name)
    pattern = (
        r"(message|oneof)\s+(\w+)\s*\{|\}|extensions\s+(\d+)\s+to\s+max\s*;"
        r"|(optional|repeated)?\s*([\w.]+)\s+(\w+)\s*=\s*(\d+)\s*;"
    )
    for token in re.finditer(pattern, text):
        path = ".".join(n for k, n in scopes if k == "message")
        if token.group(1):
            scopes.append((token.group(1), token.group(2)))
            if token.group(1) == "message":
                fields.setdefault(".".join(n for k, n in scopes if k == "message"), set())
        elif token.group(0) == "}":
            scopes.pop()
        elif token.group(3):
            extensions[path] = int(token.group(3))
        else:
            label = token.group(4) or "oneof"
            assert (label == "oneof") == (scopes[-1][0] == "oneof"), token.group(0)
            type_ = token.group(5)
            if type_ not in schema.SCALARS:  # a message type, named relative to the enclosing scopes
                candidates = [".".join([*path.split(".")[:i], type_]) for i in range(path.count(".") + 1, -1, -1)]
                type_ = next(c for c in candidates if c in schema.MESSAGES)
            fields[path].add((label, type_, token.group(6), int(token.group(7))))
    return fields, extensions


def test_the_runtime_schema_is_the_proto_file_field_by_field() -> None:
    fields, extensions = read_proto(PROTO.read_text())
    assert fields == {path: set(f) for path, (f, _) in schema.MESSAGES.items()}
    assert extensions == {path: e for path, (_, e) in schema.MESSAGES.items() if e is not None}
    assert len(fields) == 15 and len(fields["Payload.Metric"]) == 19
    built = schema.Payload.DESCRIPTOR.nested_types_by_name["Metric"]
    assert built.fields_by_name["double_value"].containing_oneof.name == "value" and built.fields_by_number[2].name == "alias"


def test_every_datatype_round_trips_with_its_sign() -> None:
    metrics = (
        Metric(name="int8", alias=1, datatype=DataType.Int8, value=-5, timestamp_ms=1_767_225_600_000),
        Metric(name="int32", alias=2, datatype=DataType.Int32, value=-2_000_000_000),
        Metric(name="int64", alias=3, datatype=DataType.Int64, value=-(1 << 62)),
        Metric(name="uint32", alias=4, datatype=DataType.UInt32, value=(1 << 32) - 1),
        Metric(name="uint64", alias=5, datatype=DataType.UInt64, value=(1 << 64) - 1),
        Metric(name="float", alias=6, datatype=DataType.Float, value=1.5),
        Metric(name="double", alias=7, datatype=DataType.Double, value=-0.1),
        Metric(name="bool", alias=8, datatype=DataType.Boolean, value=True),
        Metric(name="string", alias=9, datatype=DataType.String, value="Düse 3"),
        Metric(name="when", alias=10, datatype=DataType.DateTime, value=1_767_225_600_123),
        Metric(name="blob", alias=11, datatype=DataType.Bytes, value=b"\x00\xff"),
        Metric(name="missing", alias=12, datatype=DataType.Double, is_null=True),
    )
    payload = SpPayload(metrics=metrics, seq=255, timestamp_ms=1_767_225_600_999)
    assert decode(encode(payload), LIMIT) == payload


def test_data_named_by_alias_alone_resolves_to_the_birth_name_and_type() -> None:
    birth = decode(
        encode(SpPayload(metrics=(Metric(name="Motor/Temp", alias=7, datatype=DataType.Int16, value=20),), seq=1)), LIMIT
    )
    table = AliasTable(birth.metrics)
    (data,) = decode(encode(SpPayload(metrics=(Metric(alias=7, datatype=DataType.Int16, value=-3),), seq=2)), LIMIT).metrics
    assert data.name is None
    bare = Metric(alias=7, value=(1 << 16) - 3)  # no datatype in the DDATA (the birth's applies), 16-bit complement
    assert table.resolve(data) == Metric(name="Motor/Temp", alias=7, datatype=DataType.Int16, value=-3)
    assert table.resolve(bare).value == -3 and table.resolve(bare).name == "Motor/Temp"
    assert table.resolve(Metric(alias=7, value=(1 << 32) - 3)).value == -3  # 32-bit complement (Ignition)
    assert table.resolve(Metric(alias=7, value=(1 << 64) - 3)).value == -3  # in a long_value
    assert table.resolve(Metric(alias=7, value=300)).value == 300
    with pytest.raises(Rejected) as refused:
        table.resolve(Metric(alias=8, value=1))
    assert refused.value.reason == "sparkplug_unknown_alias" and "alias 8" in str(refused.value)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xff\xff\xff", "sparkplug_undecodable"),
        (b"\x12\x02\x20", "sparkplug_undecodable"),  # a metric cut short
        (b"x" * (LIMIT + 1), "sparkplug_oversized"),
        (schema.Payload(metrics=[schema.Payload.Metric(datatype=10)]).SerializeToString(), "sparkplug_bad_metric"),
        (b"\x12\x05\x0a\x01a\x20\x63", "sparkplug_bad_metric"),  # datatype 99
    ],
)  # fmt: skip
def test_a_bad_payload_is_refused_with_its_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(Rejected) as refused:
        decode(payload, LIMIT)
    assert refused.value.reason == reason


def test_a_birth_that_binds_one_alias_to_two_names_is_refused() -> None:
    with pytest.raises(Rejected) as refused:
        AliasTable([Metric(name="a", alias=1), Metric(name="b", alias=1)])
    assert refused.value.reason == "sparkplug_bad_birth"


def test_topics_parse_and_print_back() -> None:
    assert parse_topic("spBv1.0/plant/DDATA/node 1/pump-7") == SpTopic("spBv1.0", "plant", "DDATA", "node 1", "pump-7")
    assert str(parse_topic("spBv1.0/plant/NBIRTH/n1")) == "spBv1.0/plant/NBIRTH/n1"
    assert parse_topic("spBv1.0/plant/DDATA/n1") is None  # device message without a device
    assert parse_topic("spBv1.0/plant/NBIRTH/n1/d") is None
    assert parse_topic("spAv1.0/plant/NBIRTH/n1") is None
    assert parse_topic("spBv1.0/STATE/host") is None
