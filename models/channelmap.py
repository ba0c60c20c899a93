"""Reading a second plant with a bundle trained on a first: which of its channels is which of the bundle's.

Two plants rarely name a channel alike: ``T24`` in one historian, ``TT-2104`` (described "LPC
outlet total temperature") in another. A bundle reads the channels it was trained on by name, so
on a plant with other names every input would be empty. A bundle written by ``model train``
keeps each channel's description, unit, role and original name (``config.json``,
``training.channels``, from the datasets' meta.json), and so does a plant's dataset directory
(``forewarn data import``). ``propose`` pairs them by that text:

- a pair whose declared roles differ, or whose declared units differ, is never made;
- otherwise its score is the overlap (Jaccard) of the two channels' words: their names split at
  case and digit changes, original names and descriptions, without filler words, plus the unit;
- pairs are taken best score first, each channel once, down to ``min_score``.

The result is a plain mapping, plant channel -> bundle channel, that a person reviews (`forewarn
model map` prints every pair with its score and what stayed unmatched) and the product applies
where messages come in: ``edge.channel_map`` on a gateway, ``forewarn data rename`` for a dataset.
No torch: the gateway imports this.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from forewarn.contracts import ChannelInfo

MIN_SCORE = 0.2
"""Below this word overlap a pair is left unmatched: a wrong input is worse than an empty one."""

_FILLER = frozenset(["a", "an", "and", "at", "by", "for", "in", "of", "on", "or", "per", "the", "to"])
_UNITS = {"degc": "c", "celsius": "c", "degf": "f", "degr": "r", "rankine": "r", "kelvin": "k", "psi": "psia"}


@dataclass(frozen=True)
class Match:
    plant: str
    bundle: str
    score: float


def words(name: str, info: ChannelInfo | None) -> frozenset[str]:
    """The words a channel is known by: name and original name split at case/digit changes, description, unit."""
    text = [name]
    if info is not None:
        text += [info.original_name, info.description]
    found: set[str] = set()
    for part in text:
        spaced = re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])", " ", part)
        found |= {w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if w and w not in _FILLER}
    unit = _unit(info)
    if unit:
        found.add(f"unit:{unit}")
    return frozenset(found)


def compatible(a: ChannelInfo | None, b: ChannelInfo | None) -> bool:
    """False when both declare a role, or a unit, and they differ."""
    if a is None or b is None:
        return True
    if a.role is not None and b.role is not None and a.role != b.role:
        return False
    ua, ub = _unit(a), _unit(b)
    return not (ua and ub and ua != ub)


def score(plant: tuple[str, ChannelInfo | None], bundle: tuple[str, ChannelInfo | None]) -> float:
    """Word overlap of two channels, 0 when they cannot be the same quantity."""
    if not compatible(plant[1], bundle[1]):
        return 0.0
    a, b = words(*plant), words(*bundle)
    return len(a & b) / len(a | b) if a | b else 0.0


def propose(
    plant: Mapping[str, ChannelInfo | None], bundle: Mapping[str, ChannelInfo | None], min_score: float = MIN_SCORE
) -> list[Match]:
    """One-to-one pairs, best first: plant channel -> bundle channel, each at least ``min_score``."""
    pairs = sorted(
        ((score((p, pi), (b, bi)), p, b) for p, pi in plant.items() for b, bi in bundle.items()),
        key=lambda t: (-t[0], t[1], t[2]),
    )
    used_plant: set[str] = set()
    used_bundle: set[str] = set()
    out: list[Match] = []
    for s, p, b in pairs:
        if s < min_score:
            break
        if p in used_plant or b in used_bundle:
            continue
        used_plant.add(p)
        used_bundle.add(b)
        out.append(Match(p, b, round(s, 3)))
    return out


def _unit(info: ChannelInfo | None) -> str:
    if info is None:
        return ""
    unit = re.sub(r"[^a-z0-9/%]", "", info.unit.lower())
    return _UNITS.get(unit, unit)
