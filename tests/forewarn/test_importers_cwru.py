"""Bearing recordings in CWRU's .mat layout become vibration telemetry labelled from their file names,
and a healthy recording made at 48 kHz is found out and resampled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from forewarn.contracts import Telemetry
from forewarn.dataset import iter_messages, read_labels, read_meta
from forewarn.importers.common import ImportRefused
from forewarn.importers.cwru import import_cwru

scipy_io = pytest.importorskip("scipy.io")

SHAFT_HZ = 1797 / 60


def _signal(rate: int, seconds: float, seed: int) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    noise = np.random.default_rng(seed).normal(0, 0.05, t.size)
    return (0.3 * np.sin(2 * np.pi * SHAFT_HZ * t) + 0.1 * np.sin(2 * np.pi * 3 * SHAFT_HZ * t) + noise).reshape(-1, 1)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    d = tmp_path / "cwru"
    d.mkdir()
    for i, (name, var) in enumerate(
        [("12k_Drive_End_IR007_0_105", "X105"), ("12k_Drive_End_OR014@6_0_197", "X197"), ("12k_Drive_End_B014_0_185", "X185")]
    ):
        scipy_io.savemat(d / f"{name}.mat", {f"{var}_DE_time": _signal(12_000, 1.0, i), f"{var}RPM": np.array([[1797.0]])})
    # the healthy baseline, recorded at 48 kHz: nothing in the file says so
    scipy_io.savemat(d / "normal_0_97.mat", {"X097_DE_time": _signal(48_000, 2.0, 9), "X097RPM": np.array([[1797.0]])})
    (d / "notes.mat").write_bytes(b"not a recording")
    return d


def test_recordings_become_labelled_assets_at_one_checked_rate(src: Path, tmp_path: Path) -> None:
    report = import_cwru(src, tmp_path / "out", batch_s=0.25)

    meta = read_meta(tmp_path / "out")
    normal = meta.extra["recordings"]["cwru_normal_0_97"]
    assert normal["recorded_hz"] == 48_000 and normal["samples"] == 24_000  # 2 s at 12 kHz after resampling
    assert meta.extra["recordings"]["cwru_ir007_105"]["recorded_hz"] == 12_000
    assert meta.channels["de_accel_g"].rate_hz == 12_000 and meta.channels["de_accel_g"].role == "vibration"
    faults = {e.asset_id: e.fault for e in read_labels(tmp_path / "out")}
    assert faults == {
        "cwru_ir007_105": "bearing_inner_race",
        "cwru_or014at6_197": "bearing_outer_race",
        "cwru_b014_185": "bearing_ball",
    }
    messages = [m for m in iter_messages(tmp_path / "out") if isinstance(m, Telemetry)]
    normal_samples = sum(len(m.timestamps) for m in messages if m.asset_id == "cwru_normal_0_97")
    assert normal_samples == 24_000 and max(len(m.timestamps) for m in messages) == 3_000
    assert report.bad_count == 1 and report.bad_rows[0][0] == "notes.mat"
    assert any("normal_0_97.mat was recorded at 48000 Hz" in n for n in report.notes)


def test_a_given_rate_overrides_the_check(src: Path, tmp_path: Path) -> None:
    import_cwru(src, tmp_path / "out", rates={"normal_0_97.mat": 12_000})
    assert read_meta(tmp_path / "out").extra["recordings"]["cwru_normal_0_97"]["samples"] == 96_000


def test_split_by_size_shares_no_recording(src: Path, tmp_path: Path) -> None:
    import_cwru(src, tmp_path / "out", split="size", test_sizes=("014",), label_by="location_size")
    train, test = read_meta(tmp_path / "out" / "train"), read_meta(tmp_path / "out" / "test")
    assert set(train.assets) == {"cwru_ir007_105", "cwru_normal_0_97_a"}
    assert set(test.assets) == {"cwru_or014at6_197", "cwru_b014_185", "cwru_normal_0_97_b"}
    assert {e.fault for e in read_labels(tmp_path / "out" / "test")} == {"bearing_outer_race_014", "bearing_ball_014"}
    files = {r["file"] for r in train.extra["recordings"].values()} & {r["file"] for r in test.extra["recordings"].values()}
    assert files == {"normal_0_97.mat"}  # only the healthy one is cut in two, with no window shared


def test_a_folder_without_recordings_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImportRefused, match="no CWRU"):
        import_cwru(tmp_path, tmp_path / "out")


def test_split_by_time_cuts_every_recording_in_two(src: Path, tmp_path: Path) -> None:
    import_cwru(src, tmp_path / "out", split="time", test_fraction=0.25)
    train, test = read_meta(tmp_path / "out" / "train"), read_meta(tmp_path / "out" / "test")
    assert set(train.assets) == {a + "_a" for a in ("cwru_ir007_105", "cwru_or014at6_197", "cwru_b014_185", "cwru_normal_0_97")}
    assert {a[:-2] for a in test.assets} == {a[:-2] for a in train.assets}
    assert test.extra["recordings"]["cwru_ir007_105_b"]["samples"] == 3_000  # the last quarter of 12,000
    assert {e.asset_id for e in read_labels(tmp_path / "out" / "test")} == {
        "cwru_ir007_105_b",
        "cwru_or014at6_197_b",
        "cwru_b014_185_b",
    }


def test_normal_first_trains_on_the_healthy_recordings_first_part_alone(src: Path, tmp_path: Path) -> None:
    import_cwru(src, tmp_path / "out", split="normal-first", test_fraction=0.5)
    train, test = read_meta(tmp_path / "out" / "train"), read_meta(tmp_path / "out" / "test")
    assert set(train.assets) == {"cwru_normal_0_97_a"} and read_labels(tmp_path / "out" / "train") == []
    assert set(test.assets) == {"cwru_normal_0_97_b", "cwru_ir007_105", "cwru_or014at6_197", "cwru_b014_185"}
    assert {e.asset_id for e in read_labels(tmp_path / "out" / "test")} == {
        "cwru_ir007_105",
        "cwru_or014at6_197",
        "cwru_b014_185",
    }
