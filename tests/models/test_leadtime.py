"""The early-warning figure: the first persistent warning per asset, and its lead before the failure."""

from __future__ import annotations

import numpy as np

from models.leadtime import lead_times
from models.windowing import Window


def _window(asset: str, end: float) -> Window:
    return Window("s", asset, None, end - 10.0, end, np.zeros((1, 1, 1), np.float32), np.zeros((1, 1), np.int32), ())


def test_the_first_run_of_persist_warnings_sets_the_lead_and_a_stray_one_does_not() -> None:
    ends = [float(h) for h in range(10)]
    # asset a fails at hour 10: a stray warning at 2, then 6, 7, 8, 9 in a row -> warned at 6, lead 4 h
    # asset b fails at hour 10: never three in a row -> not warned; asset c: no known failure -> not counted
    windows = [_window(a, 3600.0 * e) for a in ("a", "b", "c") for e in ends]
    alarm = np.array([e in (2, 6, 7, 8, 9) for e in ends] + [e in (1, 2, 5, 6) for e in ends] + [True] * 10)
    life = np.array([10.0 - e for e in ends] * 2 + [np.nan] * 10)
    normal = np.array([e < 5 for e in ends] * 3)
    result = lead_times(windows[::-1], alarm[::-1], life[::-1], normal[::-1], persist=3)  # order does not matter
    assert result["assets"] == 2 and result["warned"] == 1 and result["warned_before_onset"] == 0
    assert result["lead_hours_median"] == 4.0
    early = lead_times(windows, alarm, life, np.ones(30, bool), persist=1)
    assert early["warned"] == 2 and early["warned_before_onset"] == 2
    assert sorted([early["lead_hours_p10"], early["lead_hours_p90"]]) == [early["lead_hours_p10"], early["lead_hours_p90"]]


def test_no_warning_means_no_lead_figures() -> None:
    windows = [_window("a", 3600.0 * e) for e in range(5)]
    result = lead_times(windows, np.zeros(5, bool), np.arange(5.0)[::-1] + 1, np.ones(5, bool))
    assert result == {"assets": 1, "warned": 0, "persist": 3, "warned_before_onset": 0}
