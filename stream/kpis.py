"""Alarm-system KPIs (ISA-18.2 / EEMUA 191) over a time window, from the alert history.

    annunciated rate   alerts opened and annunciated (not shelved, out of service or suppressed
                       by design) per hour, per site (one site = one operator console);
                       ISA-18.2: about 6/h "acceptable", 12/h "maximum manageable"
    floods             more than 10 annunciated in 10 minutes, until fewer than 5 in 10 minutes;
                       the periods and the share of the window spent in flood
    standing, stale    alerts active now; of those, active for more than 24 hours
    chattering         alerts that opened chattering (more than N openings an hour)
    top contributors   the ten (asset, fault) pairs with the most annunciated openings
    priority mix       annunciated openings per severity

Pure functions of the openings (each alert's first revision) and the active alerts, so the
same figures come out of the REST API, the CLI and a test.
"""

from __future__ import annotations

import bisect
from collections import Counter
from typing import Any

ACCEPTABLE_PER_HOUR = 6.0
MANAGEABLE_PER_HOUR = 12.0
FLOOD_WINDOW_S = 600.0
FLOOD_START = 10
"""More than this many annunciated in FLOOD_WINDOW_S starts a flood ..."""
FLOOD_END = 5
"""... which ends when fewer than this many remain in the trailing window."""
STALE_S = 24 * 3600.0
STEP_S = 60.0
SEVERITIES = ("low", "medium", "high", "critical")


def band(per_hour: float) -> str:
    if per_hour <= ACCEPTABLE_PER_HOUR:
        return "acceptable"
    return "manageable" if per_hour <= MANAGEABLE_PER_HOUR else "overloaded"


def floods(times: list[float], start: float, end: float) -> list[tuple[float, float]]:
    """Flood periods among sorted annunciation times, on a one-minute grid over [start, end]."""
    periods: list[tuple[float, float]] = []
    began: float | None = None
    t = start
    while t <= end:
        count = bisect.bisect_right(times, t) - bisect.bisect_right(times, t - FLOOD_WINDOW_S)
        if began is None and count > FLOOD_START:
            began = t
        elif began is not None and count < FLOOD_END:
            periods.append((began, t))
            began = None
        t += STEP_S
    if began is not None:
        periods.append((began, end))
    return periods


def compute(openings: list[dict[str, Any]], active: list[dict[str, Any]], now: float, hours: float) -> dict[str, Any]:
    """The KPIs of the ``hours`` up to ``now``; ``openings``: first revisions (Alert fields), ``active``: open alerts."""
    start = now - hours * 3600.0
    mine = [o for o in openings if start <= o["updated_at"] <= now]
    annunciated = [o for o in mine if o.get("suppression") is None]
    sites: dict[str, Any] = {}
    for site in sorted({o["site"] for o in mine} | {a["site"] for a in active}):
        times = sorted(o["updated_at"] for o in annunciated if o["site"] == site)
        periods = floods(times, start, now)
        per_hour = len(times) / hours
        sites[site] = {
            "annunciated": len(times),
            "suppressed": sum(1 for o in mine if o["site"] == site and o.get("suppression") is not None),
            "per_hour": round(per_hour, 3),
            "band": band(per_hour),
            "peak_10min": max(
                (bisect.bisect_right(times, t) - bisect.bisect_left(times, t - FLOOD_WINDOW_S) for t in times), default=0
            ),
            "floods": [{"start": a, "end": b, "minutes": round((b - a) / 60.0, 1)} for a, b in periods],
            "flood_share": round(sum(b - a for a, b in periods) / (hours * 3600.0), 4),
        }
    stale = [a for a in active if now - a["first_seen"] > STALE_S]
    pairs = Counter((o["asset_id"], o["fault"]) for o in annunciated)
    severities = Counter(o["severity"] for o in annunciated)
    total = len(annunciated)
    return {
        "window": {"start": start, "end": now, "hours": hours},
        "bands": {"acceptable_per_hour": ACCEPTABLE_PER_HOUR, "manageable_per_hour": MANAGEABLE_PER_HOUR},
        "annunciated": total,
        "per_hour": round(total / hours, 3),
        "sites": sites,
        "standing": len(active),
        "stale": len(stale),
        "stale_alerts": sorted(a["id"] for a in stale)[:50],
        "chattering": sorted({f"{o['asset_id']}:{o['fault']}" for o in mine if o.get("chattering")}),
        "top_contributors": [
            {"asset_id": asset, "fault": fault, "count": n, "share": round(n / total, 4)}
            for (asset, fault), n in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        ],
        "priority_mix": {
            s: {"count": severities[s], "share": round(severities[s] / total, 4) if total else 0.0} for s in SEVERITIES
        },
    }
