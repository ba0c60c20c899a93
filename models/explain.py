"""`forewarn model explain`: which inputs a bundle's verdicts rest on, by occlusion.

The runtime's evidence ranks channels by how far they sit from the type's healthy baseline:
it says what is unusual in a window, not what the model read. When a bundle names a fault on
a healthy machine (a row of `model evaluate`'s ``errors``), the retraining engineer needs the
second: each group of inputs (one channel, one derived feature, the log lines) is masked as
missing, exactly as the featuriser encodes a channel that sent nothing (z 0, presence flag 0),
and the windows are scored again. The drop in the explained class's probability is that
group's weight in the verdict; a group whose masking *raises* it argued against the verdict.

The masks follow the sensor token's layout (``models.features.FeatureSpec.sensor_features``):
per channel its four statistics' z and presence against the type, per derived feature its z
and presence, then, with a running reference, the same against the asset's own history, and
last a waveform channel's band spectrum, which belongs to that channel's group.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from models.data import labelled_windows
from models.features import Features
from models.runtime import Predictor
from models.windowing import STATS, Window

LOGS = "log lines"


@dataclass(frozen=True)
class Group:
    """One occluded group: its name and the sensor-token columns it owns ([] for the log lines)."""

    name: str
    kind: str
    """"channel", "derived" or "logs"."""
    columns: tuple[int, ...]


def groups(predictor: Predictor) -> list[Group]:
    """Every channel, every derived feature and the log lines, with their columns in the sensor token."""
    spec, features = predictor.bundle.spec, predictor.bundle.features
    c, d, s = len(spec.channels), len(features.derived), len(STATS)
    relative = c * (s + 1) + 2 * d  # where the deviations from the asset's own reference begin
    spectral, bands = features.sensor_features(c), spec.spectral_bands  # where the band spectra begin
    out = []
    for k, name in enumerate(spec.channels):
        columns = [*range(k * s, (k + 1) * s), c * s + k]
        if features.relative:
            columns += [relative + k, relative + c + k]
        if name in spec.spectral_channels:  # a waveform channel's spectrum is part of what it says
            i = spec.spectral_channels.index(name)
            columns += [*range(spectral + i * bands, spectral + (i + 1) * bands)]
            columns += [spectral + len(spec.spectral_channels) * bands + i]
        out.append(Group(name, "channel", tuple(columns)))
    for j, name in enumerate(features.derived):
        columns = [c * (s + 1) + j, c * (s + 1) + d + j]
        if features.relative:
            columns += [relative + 2 * c + j, relative + 2 * c + d + j]
        out.append(Group(name, "derived", tuple(columns)))
    out.append(Group(LOGS, "logs", ()))
    return out


def _masked(features: Features, group: Group) -> Features:
    if group.kind == "logs":
        return replace(features, tokens=np.zeros_like(features.tokens), line_index=np.full_like(features.line_index, -1))
    sensors = features.sensors.copy()
    sensors[:, :, list(group.columns)] = 0.0
    return replace(features, sensors=sensors)


def explain(
    predictor: Predictor,
    windows: Sequence[Window],
    fault: str | None = None,
    called: str | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> dict[str, object]:
    """Each group's mean drop in ``fault``'s probability over ``windows`` when it is masked, largest first.

    ``called``: only the windows whose verdict is that class (a false alarm among healthy windows
    would otherwise be averaged with them); ``fault`` defaults to ``called``, else to the fault the
    bundle calls most often on these windows (normal only when it calls no fault at all): an
    engineer asks why a machine was flagged, not why its healthy hours looked healthy.
    """
    labels = list(predictor.bundle.labels)
    types = [w.asset_type for w in windows]
    features = predictor.featuriser(windows)
    base = predictor.probabilities(features, types)
    verdicts = base.argmax(axis=1)
    if called is not None:
        keep = np.flatnonzero(verdicts == labels.index(called))
        types = [types[i] for i in keep]
        features = Features(features.sensors[keep], features.tokens[keep], features.line_index[keep])
        base, verdicts = base[keep], verdicts[keep]
        fault = fault or called
    if not len(verdicts):
        raise ValueError("no windows to explain" + (f": none is called {called}" if called else ""))
    counts = np.bincount(verdicts, minlength=len(labels))
    most_called_fault = int(counts[1:].argmax()) + 1 if counts[1:].any() else 0
    target = labels.index(fault) if fault is not None else most_called_fault
    rows = []
    masked_groups = groups(predictor)
    for done, group in enumerate(masked_groups, start=1):
        if progress is not None:
            progress(done, len(masked_groups), "inputs masked")
        masked = predictor.probabilities(_masked(features, group), types)
        drop = base[:, target] - masked[:, target]
        flipped = masked.argmax(axis=1) != verdicts
        rows.append(
            {
                "group": group.name,
                "kind": group.kind,
                "drop": round(float(drop.mean()), 4),
                "flipped": round(float(flipped.mean()), 4),
            }
        )
    rows.sort(key=lambda r: -float(r["drop"]))  # type: ignore[arg-type]
    counts = np.bincount(verdicts, minlength=len(labels))
    return {
        "model_version": predictor.bundle.version,
        "windows": len(verdicts),
        "fault": labels[target],
        "probability": round(float(base[:, target].mean()), 4),
        "verdicts": {labels[i]: int(n) for i, n in enumerate(counts) if n},
        "groups": rows,
    }


def running_windows(
    directory: Path, predictor: Predictor, asset_id: str, start: float | None = None, end: float | None = None
) -> list[Window]:
    """The asset's windows in a dataset whose end falls in [start, end] and in which the machine ran.

    Only the asset's messages are windowed (an asset's windows depend on its own messages alone),
    and stopped windows are left out as `model evaluate` leaves them out: their verdict is the prior.
    """
    windows = [
        w
        for w, *_ in labelled_windows(directory, predictor.bundle.spec, assets={asset_id})
        if (start is None or w.end >= start) and (end is None or w.end <= end)
    ]
    if not windows:
        return []
    ran = predictor.featuriser.running(np.stack([w.stats for w in windows]), np.stack([w.counts for w in windows]))
    return [w for w, r in zip(windows, ran, strict=True) if r]
