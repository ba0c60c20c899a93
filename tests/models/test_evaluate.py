"""A reliability engineer asks which machines a class's errors sit on: `errors` groups the wrong running windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.evaluate import error_groups
from models.windowing import Window

LABELS = ("normal", "overheating", "seal_leak")


def _window(asset: str, end: float) -> Window:
    return Window("s", asset, "pump", end - 60.0, end, np.zeros((1, 1, 4), np.float32), np.zeros((1, 1), np.int32), ())


def test_wrong_running_windows_are_grouped_by_asset_truth_and_prediction_largest_first() -> None:
    rows = [
        ("P-1", 0, 2, True),  # healthy pump called a seal leak, three times
        ("P-1", 0, 2, True),
        ("P-1", 0, 2, True),
        ("M-1", 1, 0, True),  # a missed overheating, twice
        ("M-1", 1, 0, True),
        ("M-1", 1, 0, False),  # ... and once while stopped: not scored
        ("M-1", 1, 1, True),  # right: not an error
        ("P-2", 0, 2, True),  # another dataset's pump
    ]
    windows = [_window(asset, 1000.0 + 60 * i) for i, (asset, *_) in enumerate(rows)]
    y = np.array([r[1] for r in rows])
    predicted = np.array([r[2] for r in rows])
    ran = np.array([r[3] for r in rows])
    source = np.array([0, 0, 0, 0, 0, 0, 0, 1])
    groups = error_groups(y, predicted, ran, windows, source, [Path("data/a"), Path("data/b")], LABELS)
    assert [(g["dataset"], g["asset_id"], g["truth"], g["predicted"], g["windows"]) for g in groups] == [
        ("a", "P-1", "normal", "seal_leak", 3),
        ("a", "M-1", "overheating", "normal", 2),
        ("b", "P-2", "normal", "seal_leak", 1),
    ]
    assert groups[0]["first_end"] == 1000.0 and groups[0]["last_end"] == 1120.0
    assert len(error_groups(y, predicted, ran, windows, source, [Path("a"), Path("b")], LABELS, top=1)) == 1


def test_a_model_without_errors_lists_none() -> None:
    windows = [_window("P-1", 1000.0)]
    one = np.array([0])
    assert error_groups(one, one, np.array([True]), windows, np.array([0]), [Path("a")], LABELS) == []
