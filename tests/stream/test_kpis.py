"""An operations console's load, floods, stale and chattering alerts and top contributors come out as ISA-18.2 counts them."""

from __future__ import annotations

from typing import Any

from stream.kpis import compute

NOW = 1_800_000_000.0


def opening(n: int, ts: float, site: str = "north", asset: str = "P-1", fault: str = "imbalance", **extra: Any) -> dict[str, Any]:
    return (
        {"id": f"{asset}:{fault}:{n}", "site": site, "asset_id": asset, "fault": fault, "severity": "low"}
        | {
            "updated_at": ts,
            "suppression": None,
            "chattering": False,
        }
        | extra
    )


def test_a_burst_is_a_flood_until_the_rate_falls_and_suppressed_alerts_are_not_counted() -> None:
    burst = [opening(i, NOW - 3600 + 20 * i, asset=f"P-{i % 3}", severity="high" if i < 3 else "low") for i in range(15)]
    calm = [opening(100 + i, NOW - 7200 + 600 * i, site="south") for i in range(3)]
    shelved = [opening(200 + i, NOW - 1800 + i, suppression="shelved") for i in range(20)]
    chatter = [opening(300, NOW - 100, site="south", asset="F-9", fault="cavitation", chattering=True)]
    old = [opening(400, NOW - 30 * 3600)]  # outside the window
    active = [{"id": "a", "site": "north", "first_seen": NOW - 25 * 3600}, {"id": "b", "site": "north", "first_seen": NOW - 60}]
    k = compute(burst + calm + shelved + chatter + old, active, NOW, hours=24)
    north, south = k["sites"]["north"], k["sites"]["south"]
    assert north["annunciated"] == 15 and north["suppressed"] == 20 and south["annunciated"] == 4
    assert north["peak_10min"] == 15 and len(north["floods"]) == 1 and not south["floods"]
    flood = north["floods"][0]
    # 15 alerts 20 s apart: more than 10 in 10 minutes from the 11th, fewer than 5 once the burst is 10 minutes old
    assert NOW - 3600 + 200 <= flood["start"] <= NOW - 3600 + 260 and flood["end"] <= NOW - 3600 + 280 + 600 + 60
    assert 0 < north["flood_share"] < 0.02
    assert north["band"] == "acceptable" and k["annunciated"] == 19 and k["per_hour"] == round(19 / 24, 3)
    assert k["standing"] == 2 and k["stale"] == 1 and k["stale_alerts"] == ["a"]
    assert k["chattering"] == ["F-9:cavitation"]
    assert k["top_contributors"][0] == {"asset_id": "P-1", "count": 8, "fault": "imbalance", "share": round(8 / 19, 4)}
    assert k["priority_mix"]["high"]["count"] == 3 and k["priority_mix"]["low"]["count"] == 16


def test_bands_follow_isa_18_2() -> None:
    busy = [opening(i, NOW - 3600 + 180 * i) for i in range(20)]  # 20 in the last hour, never 10 in 10 minutes
    k = compute(busy, [], NOW, hours=1)
    assert k["sites"]["north"]["band"] == "overloaded" and not k["sites"]["north"]["floods"]
    assert compute(busy[:10], [], NOW, hours=1)["sites"]["north"]["band"] == "manageable"
