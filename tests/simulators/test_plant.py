"""A model engineer runs the same plant twice and gets the same data, in time order, with labels that match the physics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from forewarn.contracts import LogRecord, Telemetry, decode_input, encode
from forewarn.dataset import label_at, message_time
from simulators.assets import ASSET_TYPES
from simulators.faults import DETECTABLE
from simulators.plant import Plant
from simulators.scenario import load_scenario, scenario_from_dict

START = 1_750_000_000.0


def _plant(seed: int = 1, noise: dict[str, float] | None = None, **generate: object) -> Plant:
    scenario = scenario_from_dict(
        {"generate": {"assets": 12, "horizon": 6 * 3600, "fault_fraction": 0.6, **generate}, "noise": noise or {}}
    )
    return Plant(scenario, seed=seed, start=START)


def test_same_seed_same_bytes_other_seed_other_data() -> None:
    a = [encode(m) for m in _plant(seed=5).messages(1800)]
    b = [encode(m) for m in _plant(seed=5).messages(1800)]
    c = [encode(m) for m in _plant(seed=6).messages(1800)]
    assert a == b
    assert a != c


def test_continuing_a_run_equals_one_long_run() -> None:
    whole = [encode(m) for m in _plant().messages(1200)]
    plant = _plant()
    parts = [encode(m) for m in plant.messages(600)] + [encode(m) for m in plant.messages(600)]
    assert parts == whole


def test_messages_are_in_time_order_and_valid_contracts() -> None:
    plant = _plant()
    last = -math.inf
    seqs: dict[str, int] = {}
    for message in plant.messages(3600):
        t = message_time(message)
        assert t >= last
        last = t
        assert decode_input(encode(message)) == message  # what model_construct built is what validation accepts
        if isinstance(message, Telemetry):
            assert set(message.channels) == set(ASSET_TYPES[message.asset_type or ""].channels)
            assert message.timestamps == sorted(message.timestamps)
            assert message.seq > seqs.get(message.asset_id, -1)
            seqs[message.asset_id] = message.seq
    assert len(seqs) == len(plant)


def test_sensor_artefacts_show_up_as_none_gaps_and_jitter() -> None:
    plant = _plant(seed=2, noise={"gap_per_day": 20.0, "dropout_per_day": 10.0})
    nones = 0
    gaps = 0
    last_seq: dict[str, int] = {}
    intervals: list[float] = []
    for message in plant.messages(2 * 3600):
        if isinstance(message, Telemetry):
            nones += sum(v is None for column in message.channels.values() for v in column)
            if message.seq != last_seq.get(message.asset_id, -1) + 1:
                gaps += 1
            last_seq[message.asset_id] = message.seq
            intervals.extend(np.diff(message.timestamps).tolist())
    assert nones > 0
    assert gaps > 0
    spread = np.std(intervals)
    assert 0.005 < spread < 0.2  # jittered around the 1 s period, never backwards
    assert min(intervals) >= 0


def test_labels_follow_the_fault_schedule() -> None:
    plant = _plant(seed=3)
    list(plant.messages(6 * 3600))
    episodes = plant.episodes()
    schedule = plant.meta().extra["episodes"]
    assert episodes, "a 60% fault fraction over 12 assets produced no episode"
    faulty = {e.asset_id for e in episodes}
    for spec in plant.layout.faults:
        assert spec.asset in {a.id for a in plant.layout.assets}
    for label in episodes:
        row = next(r for r in schedule if r["asset_id"] == label.asset_id and r["fault"] == label.fault)
        assert label.onset == pytest.approx(row["detectable"])
        assert row["initiation"] <= label.onset
        if label.failure is not None:
            assert label.failure == pytest.approx(row["failure"])
            assert label.failure <= plant.now
        else:
            assert row["failure"] is None or row["failure"] > plant.now
        assert label.fault in ASSET_TYPES[plant.asset_types[plant.asset_ids.index(label.asset_id)]].faults
    healthy = set(plant.asset_ids) - faulty - {r["asset_id"] for r in schedule}
    for asset in healthy:
        assert label_at(episodes, asset, plant.now - 1) == ("normal", None)


def test_an_asset_trips_at_functional_failure_and_runs_again_after_repair() -> None:
    scenario = load_scenario("test")  # M-2: imbalance from 10 min, failure at 70 min, 4 h repair
    plant = Plant(scenario, seed=0)
    speeds: list[tuple[float, float]] = []
    lines: list[LogRecord] = []
    for message in plant.messages(6 * 3600):
        if message.asset_id != "M-2":
            continue
        if isinstance(message, Telemetry):
            speeds.extend((t, v) for t, v in zip(message.timestamps, message.channels["speed_rpm"], strict=True) if v is not None)
        else:
            lines.append(message)
    (label,) = plant.episodes()
    assert label.failure is not None
    after = [v for t, v in speeds if label.failure + 120 < t < label.failure + 3 * 3600]
    before = [v for t, v in speeds if label.onset < t < label.failure]
    assert np.median(before) > 900 and max(after) < 50
    assert any(t > label.failure + 4 * 3600 and v > 900 for t, v in speeds)
    assert any(label.failure <= line.ts < label.failure + 1 for line in lines), "no trip line at the failure"


def test_imbalance_shows_in_1x_before_failure_on_the_shipped_test_plant() -> None:
    plant = Plant(load_scenario("test"), seed=4)
    one_x: dict[str, list[tuple[float, float]]] = {}
    for message in plant.messages(75 * 60):
        if isinstance(message, Telemetry):
            one_x.setdefault(message.asset_id, []).extend(
                (t, v) for t, v in zip(message.timestamps, message.channels["band_1x_mm_s"], strict=True) if v is not None
            )
    start = plant.start

    def mean(asset: str, lo: float, hi: float) -> float:
        return float(np.mean([v for t, v in one_x[asset] if start + lo <= t < start + hi]))

    assert mean("M-2", 3600, 4200) > 3 * mean("M-2", 0, 600)
    assert mean("P-1", 3600, 4200) == pytest.approx(mean("P-1", 0, 600), rel=0.3)


def test_healthy_plant_has_no_episodes_and_stays_within_its_own_range() -> None:
    plant = _plant(seed=9, fault_fraction=0.0)
    vib: dict[str, list[float]] = {}
    for message in plant.messages(4 * 3600):
        if isinstance(message, Telemetry):
            vib.setdefault(message.asset_id, []).extend(v for v in message.channels["vib_rms_velocity_mm_s"] if v)
    assert plant.episodes() == []
    for values in vib.values():
        assert np.percentile(values, 99) < 8.0


def test_detectability_thresholds_cover_every_fault() -> None:
    assert all(0 < v < 0.5 for v in DETECTABLE.values())
