"""The gateway as a Sparkplug B edge node: births, data by alias, bdSeq per session, rebirth on command."""

from __future__ import annotations

from edge_agent.health import Vitals
from edge_agent.sparkplug.codec import BD_SEQ, REBIRTH, AliasTable, DataType, Metric, SpPayload, decode, encode
from edge_agent.sparkplug.node import SparkplugNode
from forewarn.contracts import FaultPrediction, prediction_id

T0 = 1_767_225_600.0
LIMIT = 1 << 20


def prediction(asset: str, end: float, classes: tuple[str, ...] = ("normal", "imbalance")) -> FaultPrediction:
    probabilities = {name: 1.0 / len(classes) for name in classes}
    return FaultPrediction(
        id=prediction_id("gw1", asset, end), gateway_id="gw1", site="s1", asset_id=asset, window_start=end - 600,
        window_end=end, fault=classes[-1], probabilities=probabilities, anomaly_score=0.7, confidence=0.5,
        model_version="slm-test", latency_ms=3.0, produced_at=end + 1,
    )  # fmt: skip


class Wire:
    """What the node published, decoded."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, SpPayload]] = []

    def send(self, topic: str, payload: bytes, qos: int) -> bool:
        self.sent.append((topic, decode(payload, LIMIT)))
        return True

    def kinds(self) -> list[str]:
        return [topic.split("/")[2] + ("/" + topic.split("/")[4] if topic.count("/") == 4 else "") for topic, _ in self.sent]


def make_node(wire: Wire, outbox_depth: list[int] | None = None) -> SparkplugNode:
    depth = outbox_depth or [0]
    return SparkplugNode(
        "spBv1.0",
        "fw",
        "gw1",
        wire.send,
        lambda: Vitals("slm-test", assets=1, windows_scored=2, outbox_depth=depth[0], uplink=True),
    )


def test_births_then_data_by_alias_with_one_sequence_across_node_and_devices() -> None:
    wire = Wire()
    node = make_node(wire)
    node.birth()
    node.predictions([prediction("a1", T0), prediction("a2", T0)])
    node.predictions([prediction("a1", T0 + 60)])
    assert wire.kinds() == ["NBIRTH", "DBIRTH/a1", "DBIRTH/a2", "DDATA/a1"]
    assert [p.seq for _, p in wire.sent] == [0, 1, 2, 3]
    nbirth = {m.name: m.value for m in wire.sent[0][1].metrics}
    assert nbirth[BD_SEQ] == 0 and nbirth[REBIRTH] is False and nbirth["Gateway/Windows Scored"] == 2
    birth, data = wire.sent[1][1], wire.sent[3][1]
    assert all(m.name is None for m in data.metrics)
    values = {m.name: m.value for m in map(AliasTable(birth.metrics).resolve, data.metrics)}
    assert values["Fault"] == "imbalance" and values["Healthy"] is False and values["Anomaly Score"] == 0.7
    assert values["Probability/normal"] == 0.5 and values["Window End"] == round((T0 + 60) * 1000)
    assert values["TTF Hours"] is None and values["Model Version"] == "slm-test"
    aliases = [m.alias for _, p in wire.sent[:3] for m in p.metrics]
    assert len(aliases) == len(set(aliases)), "aliases are unique across the node"


def test_the_will_carries_the_session_bdseq_and_the_next_session_the_next() -> None:
    wire = Wire()
    node = make_node(wire)
    topic, payload = node.will()
    assert topic == "spBv1.0/fw/NDEATH/gw1"
    assert [(m.name, m.value) for m in decode(payload, LIMIT).metrics] == [(BD_SEQ, 0)]
    node.session_ended()
    assert [m.value for m in decode(node.will()[1], LIMIT).metrics] == [1]
    node.birth()
    assert {m.name: m.value for m in wire.sent[0][1].metrics}[BD_SEQ] == 1


def test_a_rebirth_command_births_again_with_the_latest_values() -> None:
    wire = Wire()
    node = make_node(wire)
    node.birth()
    node.predictions([prediction("a1", T0), prediction("a1", T0 + 60)])
    command = encode(SpPayload(metrics=(Metric(name=REBIRTH, datatype=DataType.Boolean, value=True),)))
    assert node.command(command, LIMIT) is True
    assert wire.kinds() == ["NBIRTH", "DBIRTH/a1", "DDATA/a1", "NBIRTH", "DBIRTH/a1"]
    assert wire.sent[3][1].seq == 0 and wire.sent[4][1].seq == 1
    again = {m.name: m.value for m in wire.sent[4][1].metrics}
    assert again["Window End"] == round((T0 + 60) * 1000)
    no = encode(SpPayload(metrics=(Metric(name=REBIRTH, datatype=DataType.Boolean, value=False),)))
    assert node.command(no, LIMIT) is False and len(wire.sent) == 5


def test_health_sends_only_what_changed_and_nothing_while_disconnected() -> None:
    wire, depth = Wire(), [0]
    node = make_node(wire, depth)
    node.predictions([prediction("a1", T0)])
    assert wire.sent == [], "not connected: the birth will carry it"
    node.birth()
    assert wire.kinds() == ["NBIRTH", "DBIRTH/a1"]
    node.health()
    depth[0] = 7
    node.health()
    assert wire.kinds()[-1] == "NDATA" and len(wire.sent) == 3
    (changed,) = wire.sent[-1][1].metrics
    assert changed.name is None and changed.value == 7


def test_a_model_with_other_classes_rebirths_the_node() -> None:
    wire = Wire()
    node = make_node(wire)
    node.birth()
    node.predictions([prediction("a1", T0)])
    node.predictions([prediction("a1", T0 + 60, classes=("normal", "cavitation", "imbalance"))])
    assert wire.kinds() == ["NBIRTH", "DBIRTH/a1", "NBIRTH", "DBIRTH/a1"]
    assert "Probability/cavitation" in {m.name for m in wire.sent[-1][1].metrics}
