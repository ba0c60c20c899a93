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


def test_remaining_life_is_scored_at_each_assets_last_window_with_the_cap() -> None:
    from models.evaluate import rul_rmse

    windows = [_window("U1", 100.0), _window("U1", 200.0), _window("U2", 100.0), _window("U3", 100.0)]
    true = np.array([300.0, 200.0, 50.0, np.nan])  # U3's failure is unknown: not scored
    predicted = np.array([0.0, 150.0, 80.0, 10.0])
    result = rul_rmse(windows, true, predicted, cap_hours=125.0)
    # U1 last window: min(150,125)-min(200,125) = 0; U2: 80-50 = 30
    assert result == {"rul_rmse": round(float(np.sqrt((0**2 + 30**2) / 2)), 3), "rul_units": 2, "rul_cap_hours": 125.0}
    assert rul_rmse(windows, true, predicted, None)["rul_rmse"] == round(float(np.sqrt((50**2 + 30**2) / 2)), 3)


def test_an_ablated_modality_is_gone_from_every_window_and_the_other_kept() -> None:
    from forewarn.contracts import LogRecord
    from models.evaluate import ablated

    line = LogRecord(site="s", asset_id="P-1", ts=1_767_225_590.0, level="ALARM", source="plc", text="seal leak")
    window = Window(
        "s", "P-1", "pump", 1_767_225_540.0, 1_767_225_600.0, np.ones((2, 1, 4), np.float32), np.ones((2, 1), np.int32), (line,)
    )
    no_logs, no_sensors = ablated([window], "logs")[0], ablated([window], "sensors")[0]
    assert no_logs.logs == () and (no_logs.stats == 1).all()
    assert no_sensors.logs == (line,) and np.isnan(no_sensors.stats).all() and (no_sensors.counts == 0).all()
