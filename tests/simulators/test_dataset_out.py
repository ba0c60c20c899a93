"""A model engineer writes a simulated dataset directory and reads it back through the product's own readers and windowing."""

from __future__ import annotations

from pathlib import Path

import pytest

from forewarn.contracts import Telemetry
from forewarn.dataset import iter_messages, label_at, read_labels, read_meta
from forewarn.errors import DatasetError
from models.data import labelled_windows
from models.windowing import WindowSpec, windows_from_messages
from simulators.channels import BY_NAME
from simulators.dataset_out import write_dataset
from simulators.plant import Plant
from simulators.scenario import load_scenario

START = 1_750_000_000.0


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "demo"
    summary = write_dataset(load_scenario("demo"), seed=2, duration_s=2 * 3600, out_dir=out, start=START, split="train")
    assert summary.assets == 5 and summary.messages > 3000
    return out


def test_round_trip_matches_the_plant(dataset: Path) -> None:
    plant = Plant(load_scenario("demo"), seed=2, start=START)
    expected = list(plant.messages(2 * 3600))
    assert list(iter_messages(dataset)) == expected
    assert read_labels(dataset) == sorted(plant.episodes(), key=lambda e: (e.onset, e.asset_id, e.fault))


def test_meta_describes_channels_assets_and_seed(dataset: Path) -> None:
    meta = read_meta(dataset)
    assert meta.seed == 2 and meta.split == "train" and meta.start == START
    assert meta.end == pytest.approx(START + 7200)
    assert meta.assets["P-101"] == "centrifugal_pump" and len(meta.assets) == 5
    assert meta.channels["band_bpfo_g"].rate_hz == 1.0 and meta.channels["band_bpfo_g"].unit == BY_NAME["band_bpfo_g"].unit
    assert "accel_waveform_g" in meta.channels  # P-101 sends raw bursts
    roles = {name: info.role for name, info in meta.channels.items()}
    assert roles["speed_rpm"] == "speed" and roles["bearing_temp_c"] == "temperature" and roles["current_l1_a"] == "current"
    assert roles["band_bpfo_g"] == "vibration" and roles["vib_kurtosis"] is None, "a dimensionless statistic has no role"
    assert meta.extra["episodes"][0]["initiation"] <= meta.extra["episodes"][0]["detectable"]


def test_meta_carries_each_assets_rated_current_and_the_currents_stay_under_it(dataset: Path) -> None:
    nameplates = read_meta(dataset).nameplates
    assert set(nameplates) == set(read_meta(dataset).assets)
    peak: dict[str, float] = {}
    for message in iter_messages(dataset):
        if isinstance(message, Telemetry) and "current_l1_a" in message.channels:
            values = [v for v in message.channels["current_l1_a"] if v is not None]
            peak[message.asset_id] = max([peak.get(message.asset_id, 0.0), *values])
    for asset, plate in nameplates.items():
        assert plate.rated_current_a is not None
        assert 0.3 * plate.rated_current_a < peak[asset] < 1.25 * plate.rated_current_a, asset


def test_the_demo_fault_is_labelled_and_visible_within_the_first_hour(dataset: Path) -> None:
    labels = read_labels(dataset)
    assert label_at(labels, "P-101", START + 1800)[0] == "bearing_outer_race"
    assert label_at(labels, "FAN-103", START + 1800)[0] == "normal"
    bpfo: dict[str, list[float]] = {}
    for message in iter_messages(dataset):
        if isinstance(message, Telemetry) and START + 1800 <= message.start < START + 3600:
            bpfo.setdefault(message.asset_id, []).extend(v for v in message.channels["band_bpfo_g"] if v is not None)
    healthy = max(sum(v) / len(v) for k, v in bpfo.items() if k != "P-101")
    assert sum(bpfo["P-101"]) / len(bpfo["P-101"]) > 3 * healthy


def test_edge_windowing_cuts_full_windows_from_it(dataset: Path) -> None:
    meta = read_meta(dataset)
    channels = tuple(c for c in meta.channels if c != "accel_waveform_g")
    spec = WindowSpec(channels=channels, grace_s=10.0)
    windows = list(windows_from_messages(iter_messages(dataset), spec))
    per_asset = {w.asset_id for w in windows}
    assert per_asset == set(meta.assets)
    assert all(w.coverage > 0.9 for w in windows)
    assert len(windows) >= 5 * 100  # 2 h, 1 min hop, 5 assets, less the first window


def test_training_windows_carry_each_assets_rated_current_from_meta(dataset: Path) -> None:
    spec = WindowSpec(channels=("speed_rpm", "current_l1_a"), grace_s=10.0)
    plates = read_meta(dataset).rated_currents()
    seen = {lw.window.asset_id: lw.window.rated_current_a for lw in labelled_windows(dataset, spec, every=30)}
    assert seen == plates and len(seen) == 5


def test_an_existing_dataset_is_not_overwritten_by_accident(dataset: Path) -> None:
    with pytest.raises(DatasetError, match="already holds a dataset"):
        write_dataset(load_scenario("test"), seed=0, duration_s=60, out_dir=dataset)
