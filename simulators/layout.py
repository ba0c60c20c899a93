"""Materialise a scenario into the concrete plant of one run: every asset and every fault.

Explicit ``[[assets]]`` and ``[[faults]]`` are taken as written. ``[generate]`` adds assets
(ids like a plant's tag list: P-101, K-203, FAN-310, ...) and draws their fault schedule
from the run's seed: fault modes balanced across classes (a mode few asset types can
develop is drawn more often on those that can), onsets spread over the horizon, times to
failure log-uniform in the configured range, random growth curves, some faults already
developing at the start and some that do not reach failure within the run. The assets left
without faults are the healthy controls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forewarn.contracts import SIMULATED_FAULTS
from simulators.assets import ASSET_TYPES
from simulators.scenario import AssetSpec, FaultSpec, Scenario, Site

_GROWTHS = ("linear", "exponential", "sigmoid", "power", "step")
_GROWTH_WEIGHTS = (0.2, 0.35, 0.2, 0.2, 0.05)
_SHAPE = {"linear": (1.0, 1.0), "exponential": (2.0, 5.0), "sigmoid": (6.0, 12.0), "power": (1.5, 3.0), "step": (1.0, 1.0)}
_DUTIES = ("continuous", "shift", "cyclic", "standby")
_DUTY_WEIGHTS = (0.55, 0.25, 0.15, 0.05)
_TYPES_PER_FAULT = {f: sum(f in t.faults for t in ASSET_TYPES.values()) for f in SIMULATED_FAULTS}


@dataclass(frozen=True)
class PlantLayout:
    """The concrete plant of one run."""

    sites: tuple[Site, ...]
    assets: tuple[AssetSpec, ...]
    """Every asset, with ``site`` and ``log_style`` resolved."""
    faults: tuple[FaultSpec, ...]


def materialise(scenario: Scenario, seed: int) -> PlantLayout:
    """Explicit assets and faults plus generated ones, drawn deterministically from ``seed``."""
    rng = np.random.default_rng([seed, 0x1A_70_07])
    sites = tuple(scenario.sites)
    site_by_id = {s.id: s for s in sites}
    assets = [
        a.model_copy(
            update={
                "site": a.site or sites[0].id,
                "log_style": a.log_style or site_by_id[a.site or sites[0].id].log_style,
            }
        )
        for a in scenario.assets
    ]
    faults = list(scenario.faults)
    missing = scenario.asset_count - len(assets)
    if missing > 0:
        if len(sites) == 1 and scenario.generate.sites > 1 and not scenario.assets:
            sites = tuple(_generated_site(i, rng) for i in range(scenario.generate.sites))
        new_assets = _generate_assets(scenario, sites, missing, {a.id for a in assets}, rng)
        faults += _generate_faults(scenario, new_assets, rng)
        assets += new_assets
    return PlantLayout(sites=sites, assets=tuple(assets), faults=tuple(faults))


def _generated_site(i: int, rng: np.random.Generator) -> Site:
    styles = ("siemens", "rockwell", "abb", "schneider", "generic")
    return Site(
        id=f"site{i + 1}",
        ambient_c=float(rng.uniform(8.0, 32.0)),
        ambient_swing_c=float(rng.uniform(2.0, 9.0)),
        utc_offset_h=float(rng.choice([-6.0, -5.0, 0.0, 1.0, 2.0, 8.0])),
        log_style=styles[i % len(styles)],
        weekend_off=bool(rng.random() < 0.3),
    )


def _generate_assets(
    scenario: Scenario, sites: tuple[Site, ...], count: int, taken: set[str], rng: np.random.Generator
) -> list[AssetSpec]:
    gen = scenario.generate
    names = list(gen.types)
    weights = np.array([gen.types[n] for n in names], dtype=np.float64)
    weights /= weights.sum()
    numbers: dict[tuple[str, str], int] = {}
    out: list[AssetSpec] = []
    for i in range(count):
        type_id = names[int(rng.choice(len(names), p=weights))]
        site_index = i % len(sites)
        site = sites[site_index]
        prefix = ASSET_TYPES[type_id].tag_prefix
        key = (site.id, prefix)
        while True:
            numbers[key] = numbers.get(key, 0) + 1
            tag = f"{prefix}-{(site_index + 1) * 100 + numbers[key]}"
            asset_id = tag if len(sites) == 1 else f"{site.id}.{tag}"
            if asset_id not in taken:
                break
        taken.add(asset_id)
        duty = _DUTIES[int(rng.choice(len(_DUTIES), p=_DUTY_WEIGHTS))]
        style = site.log_style if rng.random() < 0.8 else str(rng.choice(["siemens", "rockwell", "abb", "schneider", "generic"]))
        out.append(
            AssetSpec(
                id=asset_id,
                type=type_id,
                site=site.id,
                duty=duty,
                vfd=bool(rng.random() < gen.vfd_fraction),
                load=float(rng.uniform(0.45, 0.95)),
                waveform=bool(rng.random() < gen.waveform_fraction),
                log_style=style,
            )
        )
    return out


def _generate_faults(scenario: Scenario, assets: list[AssetSpec], rng: np.random.Generator) -> list[FaultSpec]:
    gen = scenario.generate
    horizon = gen.horizon
    ttf_lo = min(gen.ttf[0], 0.4 * horizon)
    ttf_hi = max(ttf_lo, min(gen.ttf[1], 0.9 * horizon))
    faults: list[FaultSpec] = []
    for asset in assets:
        if rng.random() >= gen.fault_fraction:
            continue
        allowed = ASSET_TYPES[asset.type].faults
        weights = np.array([1.0 / _TYPES_PER_FAULT[f] for f in allowed])
        weights /= weights.sum()
        count = 1 + int(rng.integers(0, gen.max_faults_per_asset))
        chosen = rng.choice(len(allowed), size=min(count, len(allowed)), replace=False, p=weights)
        for k in chosen:
            ttf = float(np.exp(rng.uniform(np.log(ttf_lo), np.log(ttf_hi))))
            roll = rng.random()
            if roll < 0.1:  # already developing when the run starts
                onset = -float(rng.uniform(0.1, 0.6)) * ttf
            elif roll < 0.2:  # fails after the run ends: the episode stays open
                onset = float(rng.uniform(max(0.0, horizon - ttf), horizon * 0.95))
            else:
                onset = float(rng.uniform(0.0, max(1.0, horizon - ttf)))
            growth = _GROWTHS[int(rng.choice(len(_GROWTHS), p=_GROWTH_WEIGHTS))]
            faults.append(
                FaultSpec(
                    asset=asset.id,
                    fault=allowed[int(k)],
                    onset=round(onset, 1),
                    time_to_failure=round(ttf, 1),
                    growth=growth,
                    shape=float(rng.uniform(*_SHAPE[growth])),
                    repair=float(rng.uniform(2.0, 10.0)) * 3600.0,
                )
            )
    return faults
