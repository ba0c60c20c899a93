"""A message that obeys the contract survives encode/decode unchanged; one that breaks it is refused with the field named."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forewarn.contracts import (
    MAX_PAYLOAD_BYTES,
    Alert,
    AlertState,
    DeadLetter,
    Evidence,
    FaultEpisode,
    FaultPrediction,
    LogRecord,
    Severity,
    Telemetry,
    alert_id,
    dead_letter,
    decode,
    decode_input,
    encode,
    prediction_id,
)
from forewarn.errors import ContractError

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z

ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,20}", fullmatch=True)
channel_names = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64, min_value=-1e12, max_value=1e12)


@st.composite
def telemetry(draw: st.DrawFn) -> Telemetry:
    n = draw(st.integers(1, 40))
    start = draw(st.floats(T0, T0 + 1e7))
    steps = draw(st.lists(st.floats(0, 10), min_size=n, max_size=n))
    timestamps = [start]
    for step in steps[1:]:
        timestamps.append(timestamps[-1] + step)
    names = draw(st.lists(channel_names, min_size=1, max_size=6, unique=True))
    channels = {name: draw(st.lists(st.none() | finite, min_size=n, max_size=n)) for name in names}
    return Telemetry(
        site=draw(ids), asset_id=draw(ids), seq=draw(st.integers(0, 2**40)), timestamps=timestamps, channels=channels
    )


@st.composite
def logs(draw: st.DrawFn) -> LogRecord:
    return LogRecord(
        site=draw(ids),
        asset_id=draw(ids),
        ts=draw(st.floats(T0, T0 + 1e7)),
        level=draw(st.sampled_from(["INFO", "WARNING", "ALARM", "ERROR"])),
        source=draw(st.text(min_size=1, max_size=20)),
        text=draw(st.text(min_size=1, max_size=200)),
        code=draw(st.none() | st.text(min_size=1, max_size=10)),
    )


def _prediction(**changes: object) -> FaultPrediction:
    fields: dict[str, object] = {
        "id": prediction_id("gw1", "pump-1", T0 + 60),
        "gateway_id": "gw1",
        "site": "plant1",
        "asset_id": "pump-1",
        "window_start": T0,
        "window_end": T0 + 60,
        "fault": "imbalance",
        "probabilities": {"normal": 0.1, "imbalance": 0.9},
        "anomaly_score": 0.8,
        "ttf_hours": 12.5,
        "confidence": 0.9,
        "model_version": "slm-abc123",
        "latency_ms": 1.2,
        "produced_at": T0 + 61,
    }
    fields.update(changes)
    return FaultPrediction.model_validate(fields)


@given(telemetry() | logs())
def test_input_messages_round_trip(message: Telemetry | LogRecord) -> None:
    assert decode_input(encode(message)) == message


@given(telemetry())
def test_telemetry_round_trips_as_its_own_type(message: Telemetry) -> None:
    assert decode(encode(message), Telemetry) == message


def test_prediction_and_alert_round_trip() -> None:
    prediction = _prediction()
    assert decode(encode(prediction), FaultPrediction) == prediction
    alert = Alert(
        id=alert_id("pump-1", "imbalance", T0 + 60),
        site="plant1",
        asset_id="pump-1",
        fault="imbalance",
        severity=Severity.HIGH,
        state=AlertState.OPEN,
        first_seen=T0 + 60,
        last_seen=T0 + 120,
        occurrences=3,
        peak_probability=0.95,
        last_probability=0.9,
        evidence=Evidence(),
        revision=1,
        updated_at=T0 + 121,
    )
    assert decode(encode(alert), Alert) == alert


def test_level_aliases_are_normalised() -> None:
    record = LogRecord(site="s", asset_id="a", ts=T0, level="warn", text="bearing temp high")
    assert record.level == "WARNING"


@pytest.mark.parametrize(
    ("payload", "field", "reason"),
    [
        ({"timestamps": [T0, T0 + 1], "channels": {"temp": [1.0]}}, "(message)", "1 samples but there are 2"),
        ({"timestamps": [T0 * 1000], "channels": {"temp": [1.0]}}, "timestamps.0", "milliseconds"),
        ({"timestamps": [T0 + 1, T0], "channels": {"temp": [1.0, 2.0]}}, "(message)", "must not decrease"),
        ({"timestamps": [T0], "channels": {"Temp C": [1.0]}}, "channels.Temp C.[key]", "pattern"),
        ({"timestamps": [T0], "channels": {"temp": ["hot"]}}, "channels.temp.0", "valid number"),
        ({"timestamps": [T0], "channels": {}}, "channels", "at least 1"),
    ],
)
def test_bad_telemetry_names_the_field(payload: dict[str, object], field: str, reason: str) -> None:
    raw = json.dumps({"kind": "telemetry", "site": "s", "asset_id": "a", "seq": 0, **payload})
    with pytest.raises(ContractError) as info:
        decode_input(raw)
    fields = [loc for loc, _ in info.value.problems]
    assert any(loc.endswith(field) for loc in fields), fields
    assert reason in str(info.value)


def test_nan_is_refused() -> None:
    raw = f'{{"kind":"telemetry","site":"s","asset_id":"a","seq":0,"timestamps":[{T0:f}],"channels":{{"t":[NaN]}}}}'
    with pytest.raises(ContractError, match="channels.t.0"):
        decode_input(raw)


def test_unknown_fields_and_versions_are_refused() -> None:
    base = {"kind": "log", "site": "s", "asset_id": "a", "ts": T0, "text": "x"}
    with pytest.raises(ContractError, match="colour: Extra inputs"):
        decode_input(json.dumps({**base, "colour": "red"}))
    with pytest.raises(ContractError, match="schema_version"):
        decode_input(json.dumps({**base, "schema_version": 2}))


def test_oversized_payload_is_refused_before_parsing() -> None:
    with pytest.raises(ContractError, match="over the"):
        decode_input(b" " * (MAX_PAYLOAD_BYTES + 1))


def test_prediction_id_must_be_deterministic() -> None:
    with pytest.raises(ContractError, match="id"):
        decode(encode(_prediction()).replace(b'"gw1:pump-1:', b'"gw2:pump-1:'), FaultPrediction)


def test_prediction_probabilities_must_sum_to_one() -> None:
    with pytest.raises(ValueError, match="sum to"):
        _prediction(probabilities={"normal": 0.5, "imbalance": 0.9})
    with pytest.raises(ValueError, match="no entry"):
        _prediction(fault="cavitation")


@given(st.binary(max_size=2_000))
def test_garbage_never_escapes_as_anything_but_contract_error(raw: bytes) -> None:
    with contextlib.suppress(ContractError):
        decode_input(raw)


def test_dead_letter_truncates_and_keeps_size() -> None:
    letter = dead_letter("edge", "bad json", b"\xff" * 20_000, "forewarn/p/a/telemetry", T0)
    assert letter.payload_bytes == 20_000
    assert len(letter.payload) <= 8_192
    assert decode(encode(letter), DeadLetter) == letter


def test_episode_covers_its_interval() -> None:
    episode = FaultEpisode(asset_id="a", fault="imbalance", onset=T0, failure=T0 + 100)
    assert episode.covers(T0) and episode.covers(T0 + 100)
    assert not episode.covers(T0 - 1) and not episode.covers(T0 + 101)
    with pytest.raises(ValueError, match="before onset"):
        FaultEpisode(asset_id="a", fault="imbalance", onset=T0, failure=T0 - 1)


@pytest.mark.parametrize(
    ("level", "expected"),
    [("SEVERE", "ERROR"), ("failure", "ERROR"), ("Fatal", "CRITICAL"), ("emerg", "CRITICAL"), ("trace", "DEBUG"), ("E", "ERROR")],
)
def test_well_known_level_aliases_map_to_the_seven(level: str, expected: str) -> None:
    record = decode_input(json.dumps({"kind": "log", "site": "s", "asset_id": "a", "ts": T0, "level": level, "text": "x"}))
    assert isinstance(record, LogRecord)
    assert record.level == expected
    assert record.text == "x"


def test_an_unknown_level_word_is_kept_in_the_text_not_refused() -> None:
    raw = json.dumps({"kind": "log", "site": "s", "asset_id": "a", "ts": T0, "level": "AUDIT", "text": "door opened"})
    record = decode_input(raw)
    assert isinstance(record, LogRecord)
    assert (record.level, record.text) == ("NOTICE", "[AUDIT] door opened")
    assert decode_input(encode(record)) == record  # the mapping is stable on a second pass


def test_a_level_that_is_not_a_word_is_still_refused() -> None:
    with pytest.raises(ContractError, match="level"):
        decode_input(json.dumps({"kind": "log", "site": "s", "asset_id": "a", "ts": T0, "level": "42 !!", "text": "x"}))


def test_channel_info_keeps_a_sources_name_and_role() -> None:
    from forewarn.contracts import ChannelInfo, DatasetMeta

    meta = DatasetMeta(
        source="plant",
        channels={"accelerometer1_rms": ChannelInfo(rate_hz=1.0, unit="g", original_name="Accelerometer1RMS", role="vibration")},
    )
    again = decode(encode(meta), DatasetMeta)
    assert again.channels["accelerometer1_rms"].original_name == "Accelerometer1RMS"
    assert again.channels["accelerometer1_rms"].role == "vibration"
    with pytest.raises(ContractError, match="role"):
        decode(json.dumps({"source": "p", "channels": {"x": {"rate_hz": 1, "role": "smell"}}}), DatasetMeta)


def test_a_reversible_condition_ends_without_a_failure() -> None:
    from forewarn.dataset import label_at

    episode = FaultEpisode(asset_id="a", fault="seal_leak", onset=T0, end=T0 + 100)
    assert episode.covers(T0 + 100) and not episode.covers(T0 + 101)
    assert label_at([episode], "a", T0 + 50) == ("seal_leak", None)  # no time to failure: it never failed
    assert decode(encode(episode), FaultEpisode) == episode
    with pytest.raises(ContractError, match="not both"):
        decode(json.dumps({"asset_id": "a", "fault": "x", "onset": T0, "failure": T0 + 5, "end": T0 + 9}), FaultEpisode)
