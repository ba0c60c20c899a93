"""Sparkplug B ingest: births bind aliases, DDATA becomes Telemetry, a sequence gap or an unknown node asks for a rebirth."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.errors import Rejected
from edge_agent.sparkplug.codec import BD_SEQ, REBIRTH, DataType, Metric, SpPayload, SpTopic, decode, encode
from edge_agent.sparkplug.host import SparkplugHost, channel_name
from forewarn.contracts import Telemetry

T0 = 1_767_225_600_000  # ms


class Plant:
    """One Sparkplug edge node of a plant, as the host sees its messages."""

    def __init__(self, host: SparkplugHost, node: str = "line1") -> None:
        self.host = host
        self.node = node
        self.seq = 0

    def send(self, kind: str, metrics: list[Metric], device: str | None = None, seq: int | None = -1) -> list[Telemetry]:
        if seq == -1:
            seq, self.seq = self.seq, (self.seq + 1) % 256
        topic = SpTopic("spBv1.0", "plant", kind, self.node, device)
        return self.host.admit(topic, encode(SpPayload(metrics=tuple(metrics), seq=seq, timestamp_ms=T0)))

    def birth(self, bd_seq: int = 0) -> None:
        self.seq = 0
        self.send("NBIRTH", [Metric(name=BD_SEQ, datatype=DataType.UInt64, value=bd_seq)])
        self.send(
            "DBIRTH",
            [
                Metric(name="Motor Current", alias=1, datatype=DataType.Float, value=0.0),
                Metric(name="Temp/Bearing DE", alias=2, datatype=DataType.Int16, value=0),
                Metric(name="Mode", alias=3, datatype=DataType.String, value="auto"),
            ],
            device="pump-7",
        )


@pytest.fixture
def requests() -> list[tuple[SpTopic, bytes]]:
    return []


@pytest.fixture
def host(requests: list[tuple[SpTopic, bytes]]) -> SparkplugHost:
    clock = iter(range(0, 10_000, 1))
    return SparkplugHost(
        "site1",
        {"Temp/Bearing DE": "bearing_temp"},
        lambda topic, payload: requests.append((topic, payload)),
        limit=1 << 20,
        clock=lambda: float(next(clock)),
        rebirth_interval_s=3.0,
    )


def test_ddata_by_alias_becomes_telemetry_of_the_device_on_its_channels(host: SparkplugHost) -> None:
    plant = Plant(host)
    plant.birth()
    data = [
        Metric(alias=1, value=12.5, timestamp_ms=T0 + 1000),
        Metric(alias=2, value=(1 << 32) - 4, timestamp_ms=T0 + 1000),  # Int16 -4 as Ignition sends it
        Metric(alias=1, value=13.0, timestamp_ms=T0 + 2000),
        Metric(alias=3, value="manual", timestamp_ms=T0 + 2000),  # a string: not a sample
    ]
    (telemetry,) = plant.send("DDATA", data, device="pump-7")
    (again,) = plant.send("DDATA", [Metric(alias=1, is_null=True)], device="pump-7")
    assert telemetry.site == "site1" and telemetry.asset_id == "pump-7" and telemetry.seq == 0
    assert telemetry.timestamps == [(T0 + 1000) / 1000, (T0 + 2000) / 1000]
    assert telemetry.channels == {"motor_current": [12.5, 13.0], "bearing_temp": [-4.0, None]}
    assert again.seq == 1 and again.timestamps == [T0 / 1000] and again.channels == {"motor_current": [None]}
    assert host.counts["metrics_unused"] == 1


def test_a_device_with_more_tags_than_one_batch_takes_is_split_not_refused(host: SparkplugHost) -> None:
    plant = Plant(host)
    plant.birth()
    tags = [Metric(name=f"Tag {i}", alias=100 + i, datatype=DataType.Double, value=0.0) for i in range(70)]
    plant.send("DBIRTH", tags, device="skid-1")
    first, second = plant.send("DDATA", [Metric(alias=100 + i, value=float(i)) for i in range(70)], device="skid-1")
    assert (first.seq, len(first.channels)) == (0, 64) and (second.seq, len(second.channels)) == (1, 6)
    assert second.channels["tag_69"] == [69.0] and first.timestamps == second.timestamps == [T0 / 1000]
    (after,) = plant.send("DDATA", [Metric(alias=100, value=1.0)], device="skid-1")
    assert after.seq == 2


def test_a_sequence_gap_asks_for_a_rebirth_and_refuses_data_until_it_comes(
    host: SparkplugHost, requests: list[tuple[SpTopic, bytes]]
) -> None:
    plant = Plant(host)
    plant.birth()
    plant.seq += 1  # one message lost
    with pytest.raises(Rejected) as gap:
        plant.send("DDATA", [Metric(alias=1, value=1.0)], device="pump-7")
    assert gap.value.reason == "sparkplug_seq_gap" and "seq 3, expected 2" in str(gap.value)
    assert host.counts["seq_gaps"] == 1 and len(requests) == 1
    topic, payload = requests[0]
    assert str(topic) == "spBv1.0/plant/NCMD/line1"
    (command,) = decode(payload, 1 << 20).metrics
    assert command.name == REBIRTH and command.value is True and command.datatype == DataType.Boolean
    with pytest.raises(Rejected) as stale:
        plant.send("DDATA", [Metric(alias=1, value=1.0)], device="pump-7")
    assert stale.value.reason == "sparkplug_out_of_sync" and len(requests) == 1  # asked again only after 3 s
    plant.birth()
    assert len(plant.send("DDATA", [Metric(alias=1, value=2.0)], device="pump-7")) == 1


def test_data_of_a_node_or_device_never_born_asks_for_a_rebirth(
    host: SparkplugHost, requests: list[tuple[SpTopic, bytes]]
) -> None:
    plant = Plant(host)
    with pytest.raises(Rejected) as unborn:
        plant.send("DDATA", [Metric(alias=1, value=1.0)], device="pump-7")
    assert unborn.value.reason == "sparkplug_unborn" and [str(t) for t, _ in requests] == ["spBv1.0/plant/NCMD/line1"]
    plant.birth()
    with pytest.raises(Rejected) as device:
        plant.send("DDATA", [Metric(alias=1, value=1.0)], device="pump-8")
    assert device.value.reason == "sparkplug_unborn" and len(requests) == 2
    plant.birth()
    with pytest.raises(Rejected) as alias:
        plant.send("DDATA", [Metric(alias=9, value=1.0)], device="pump-7")
    assert alias.value.reason == "sparkplug_unknown_alias" and len(requests) == 3


def test_only_the_death_of_the_current_session_ends_it(host: SparkplugHost) -> None:
    plant = Plant(host)
    plant.birth(bd_seq=4)
    plant.send("NDEATH", [Metric(name=BD_SEQ, datatype=DataType.UInt64, value=3)], seq=None)  # an older session's will
    assert host.counts["stale_ndeath"] == 1
    assert len(plant.send("DDATA", [Metric(alias=1, value=1.0)], device="pump-7")) == 1
    plant.send("NDEATH", [Metric(name=BD_SEQ, datatype=DataType.UInt64, value=4)], seq=None)
    with pytest.raises(Rejected) as after:
        plant.send("DDATA", [Metric(alias=1, value=1.0)], device="pump-7")
    assert after.value.reason == "sparkplug_unborn"


def test_a_bad_payload_or_an_invalid_device_id_is_refused_by_reason(host: SparkplugHost) -> None:
    plant = Plant(host)
    with pytest.raises(Rejected) as garbage:
        host.admit(SpTopic("spBv1.0", "plant", "NBIRTH", "line1"), b"\xff\xff")
    assert garbage.value.reason == "sparkplug_undecodable"
    plant.birth()
    plant.send("DBIRTH", [Metric(name="Motor Current", alias=1, datatype=DataType.Float)], device="pump 7")
    with pytest.raises(Rejected) as invalid:
        plant.send("DDATA", [Metric(alias=1, value=1.0)], device="pump 7")  # a space: not a Forewarn asset id
    assert invalid.value.reason == "invalid"


def test_own_node_and_commands_are_ignored(requests: list[tuple[SpTopic, bytes]]) -> None:
    host = SparkplugHost("s", {}, lambda t, p: requests.append((t, p)), limit=1024, ignore_node=("plant", "line1"))
    assert Plant(host).send("DDATA", [Metric(alias=1, value=1.0)], device="pump-7") == []
    assert not requests and host.counts["ignored"] == 1


@pytest.mark.parametrize(
    ("metric", "channel"),
    [("Motor Current", "motor_current"), ("Pump/Vibration RMS (mm/s)", "pump_vibration_rms_mm_s"), ("42", None), ("", None)],
)
def test_metric_names_become_channel_names(metric: str, channel: str | None) -> None:
    assert channel_name(metric, {}) == channel


REASONS = {
    "sparkplug_undecodable", "sparkplug_bad_metric", "sparkplug_bad_birth", "sparkplug_unknown_alias", "sparkplug_seq_gap",
    "sparkplug_no_seq", "sparkplug_out_of_sync", "sparkplug_unborn", "sparkplug_no_timestamp", "invalid",
}  # fmt: skip
KINDS = ["NBIRTH", "NDEATH", "NDATA", "DBIRTH", "DDEATH", "DDATA"]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def born_host() -> SparkplugHost:
    host = SparkplugHost("site1", {"Temp/Bearing DE": "bearing_temp"}, lambda t, p: None, limit=1 << 20)
    Plant(host).birth()
    return host


@SETTINGS
@given(kind=st.sampled_from(KINDS), payload=st.binary(max_size=300))
def test_any_bytes_are_read_or_refused_with_a_known_reason(kind: str, payload: bytes) -> None:
    host = born_host()
    topic = SpTopic("spBv1.0", "plant", kind, "line1", "pump-7" if kind.startswith("D") else None)
    try:
        out = host.admit(topic, payload)
    except Rejected as exc:
        assert exc.reason in REASONS, exc
    else:
        assert all(isinstance(t, Telemetry) for t in out)


samples = st.lists(
    st.tuples(st.sampled_from([1, 2]), st.integers(0, 3_600_000), st.floats(-1e6, 1e6, allow_nan=False) | st.none()),
    min_size=1,
    max_size=40,
)


@SETTINGS
@given(samples=samples)
def test_every_valid_ddata_is_read_sample_for_sample(samples: list[tuple[int, int, float | None]]) -> None:
    """The oracle: each (alias, timestamp, value) lands in its channel at its time (the last one wins a duplicate).

    Alias 1 is a Float (32 bits on the wire), alias 2 an Int16 (values kept in its range, negatives included).
    """
    host = born_host()
    metrics = [
        Metric(alias=1, datatype=DataType.Float, timestamp_ms=T0 + dt, value=v, is_null=v is None)
        if a == 1
        else Metric(alias=2, datatype=DataType.Int16, timestamp_ms=T0 + dt, value=None if v is None else round(v) % 65536 - 32768)
        for a, dt, v in samples
    ]
    (telemetry,) = Plant(host).send("DDATA", metrics, device="pump-7", seq=2)
    expected: dict[str, dict[float, float | None]] = {}
    for m in metrics:
        value = None if m.value is None else float(np.float32(m.value)) if m.alias == 1 else float(m.value)
        expected.setdefault("motor_current" if m.alias == 1 else "bearing_temp", {})[(m.timestamp_ms or 0) / 1000] = value
    got = {name: dict(zip(telemetry.timestamps, values, strict=True)) for name, values in telemetry.channels.items()}
    assert {name: {ts: v for ts, v in column.items() if ts in expected[name]} for name, column in got.items()} == expected
    for name, column in got.items():  # at the other channel's timestamps: a gap, never a made-up value
        assert all(v is None for ts, v in column.items() if ts not in expected[name])
