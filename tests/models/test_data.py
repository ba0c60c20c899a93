"""An engineer evaluates on simulator data: a window's right answers are its label plus every fault truly present in it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from models.data import labelled_windows, load_tables
from models.windowing import WindowSpec
from tests.models.synthetic import CHANNELS, T0, write_dataset

SPEC = WindowSpec(channels=CHANNELS, length_s=600.0, hop_s=60.0, steps=10, grace_s=10.0)


def test_truths_add_incipient_and_just_failed_faults_to_the_label(tmp_path: Path) -> None:
    directory = write_dataset(tmp_path / "d", seconds=4800)
    meta = json.loads((directory / "meta.json").read_text())
    # P-1's imbalance began (invisibly) 10 minutes before its labelled P point at +1800 s; it fails at +3600 s.
    meta["extra"] = {"episodes": [{"asset_id": "P-1", "fault": "imbalance", "initiation": T0 + 1200, "detectable": T0 + 1800}]}
    (directory / "meta.json").write_text(json.dumps(meta))
    by_end = {(w.window.asset_id, w.window.end - T0): w for w in labelled_windows(directory, SPEC)}
    early = by_end[("P-1", 1500.0)]
    assert early.label == "normal" and early.truths == ("normal", "imbalance"), "begun, not yet labelled: both right"
    assert by_end[("P-1", 1140.0)].truths == ("normal",), "before it began: only normal"
    assert by_end[("P-1", 2400.0)].truths == ("imbalance",)
    after = by_end[("P-1", 3900.0)]
    assert after.label == "normal" and after.truths == ("normal", "imbalance"), "the window still holds the failing machine"
    assert by_end[("P-1", 4260.0)].truths == ("normal",), "a whole window after the failure: healthy again"
    assert by_end[("P-2", 2400.0)].truths == ("normal",)


def test_every_window_before_a_known_failure_knows_its_time_to_failure(tmp_path: Path) -> None:
    directory = write_dataset(tmp_path / "d", seconds=4800)
    by_end = {(w.window.asset_id, w.window.end - T0): w for w in labelled_windows(directory, SPEC)}
    healthy = by_end[("P-1", 1140.0)]  # P-1 fails at +3600 s; its episode starts at +1800 s
    assert healthy.label == "normal" and healthy.ttf_hours == (3600.0 - 1140.0) / 3600.0
    assert by_end[("P-1", 2400.0)].ttf_hours == (3600.0 - 2400.0) / 3600.0
    assert by_end[("P-1", 3900.0)].ttf_hours is None, "after its failure, none is known ahead"
    assert by_end[("M-1", 3000.0)].ttf_hours is None, "a fault that never fails has no time to failure"


def test_datasets_cut_in_parallel_into_the_cache_read_back_as_cut_in_one_process(tmp_path: Path) -> None:
    dirs = [write_dataset(tmp_path / f"d{i}", seconds=1800, seed=i) for i in range(2)]
    parallel = load_tables(dirs, SPEC, tmp_path / "cache", workers=2)
    assert len(list((tmp_path / "cache").glob("windows-*.npz"))) == 2, "each dataset cut once, into the cache"
    plain = load_tables(dirs, SPEC, None)
    assert len(parallel) == len(plain) > 0
    assert parallel.sources == plain.sources and parallel.labels == plain.labels and parallel.logs == plain.logs
    np.testing.assert_array_equal(parallel.stats, plain.stats)
    np.testing.assert_array_equal(parallel.source, plain.source)


def test_a_declared_remaining_life_horizon_caps_the_training_target(tmp_path: Path) -> None:
    directory = write_dataset(tmp_path / "d", seconds=4800)
    meta = json.loads((directory / "meta.json").read_text())
    meta["extra"] = {"cycle_s": 600.0, "rul": {"cap": 3, "unit": "cycles"}}  # 3 cycles of 10 minutes: 0.5 h
    (directory / "meta.json").write_text(json.dumps(meta))
    by_end = {(w.window.asset_id, w.window.end - T0): w for w in labelled_windows(directory, SPEC)}
    assert by_end[("P-1", 1140.0)].ttf_hours == 0.5, "41 minutes ahead, capped at the declared horizon"
    assert by_end[("P-1", 1500.0)].ttf_hours == 0.5 and by_end[("P-1", 2400.0)].ttf_hours == (3600.0 - 2400.0) / 3600.0
