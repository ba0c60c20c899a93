"""Early warning: how long before each known failure a verdict turns, and stays turned.

Window scores say how well a model separates degrading from healthy windows; a reliability
engineer asks something else: *how many hours (cycles) before the failure would I have been
told?* For every asset with a known failure, the warning is the first window from which
``persist`` consecutive windows of that asset are called non-normal (one stray window is not
a warning, as the stream's on-delay does not alert on one); its lead is the time from that
window's end to the failure. A warning whose window is still labelled normal came before the
labelled onset: early, or false; the figure counts them apart (``warned_before_onset``),
since for degradation without a known onset (C-MAPSS) it may be either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from models.windowing import Window

PERSIST = 3
"""Consecutive non-normal windows that make a warning."""


def lead_times(
    windows: Sequence[Window], alarm: np.ndarray, life_hours: np.ndarray, labelled_normal: np.ndarray, persist: int = PERSIST
) -> dict[str, Any]:
    """Leads of the first persistent warning per asset before its failure (``life_hours``: hours to it, NaN: none known)."""
    by_asset: dict[str, list[int]] = {}
    for i, w in enumerate(windows):
        if np.isfinite(life_hours[i]):
            by_asset.setdefault(w.asset_id, []).append(i)
    leads: list[float] = []
    early = 0
    for rows in by_asset.values():
        rows.sort(key=lambda i: windows[i].end)
        first = _first_run(alarm[rows], persist)
        if first is None:
            continue
        at = rows[first]
        leads.append(float(life_hours[at]))
        early += bool(labelled_normal[at])
    result: dict[str, Any] = {"assets": len(by_asset), "warned": len(leads), "persist": persist, "warned_before_onset": early}
    if leads:
        result.update(
            lead_hours_median=round(float(np.median(leads)), 3),
            lead_hours_p10=round(float(np.percentile(leads, 10)), 3),
            lead_hours_p90=round(float(np.percentile(leads, 90)), 3),
        )
    return result


def _first_run(flags: np.ndarray, persist: int) -> int | None:
    """Index of the first of ``persist`` consecutive True values, or None."""
    run = 0
    for i, flag in enumerate(flags):
        run = run + 1 if flag else 0
        if run >= persist:
            return i - persist + 1
    return None
