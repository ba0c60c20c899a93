"""Operators' verdicts as training labels: `forewarn alerts export-labels --out DIR`.

An operator who acknowledges or resolves an alert may say what it was (``Alert.verdict``):

    confirmed     a real fault: a fault episode of the fault the technician found
                  (``verdict_fault``, else the predicted one) over [first_seen, resolved]
    false_alarm   nothing wrong: a ``normal`` episode over the same span, so the windows the
    maintenance   model flagged are labelled normal (maintenance work explains the change)

Episodes are written to ``DIR/labels.jsonl`` in the dataset-directory format
(``forewarn.dataset``), merged with the episodes already there; an episode ends at the
alert's resolution (``end``, no failure: nobody let the machine fail) or, while the alert
is still active, at its last hit. ``DIR/verdicts.jsonl`` keeps every verdict as given
(alert id, who, when, note) for audit. Together with the plant's own recorded messages
(``DIR/messages.jsonl``) the directory is training input for `forewarn model train`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from forewarn.contracts import NORMAL, DatasetMeta, FaultEpisode, decode, encode
from forewarn.dataset import LABELS, MESSAGES, META, read_labels

VERDICTS = "verdicts.jsonl"


def episode_of(alert: dict[str, Any]) -> FaultEpisode | None:
    """The labelled episode an alert's verdict stands for (None without a verdict)."""
    verdict = alert.get("verdict")
    if verdict is None:
        return None
    fault = (alert.get("verdict_fault") or alert["fault"]) if verdict == "confirmed" else NORMAL
    end = alert.get("resolved_at") or alert["last_seen"]
    return FaultEpisode(asset_id=alert["asset_id"], fault=fault, onset=alert["first_seen"], end=max(end, alert["first_seen"]))


def export_labels(alerts: Iterable[dict[str, Any]], directory: Path) -> tuple[int, int]:
    """Write the verdicts of ``alerts`` into ``directory``; returns (episodes added, verdicts written)."""
    directory.mkdir(parents=True, exist_ok=True)
    existing = read_labels(directory) if (directory / LABELS).is_file() else []
    known = {(e.asset_id, e.fault, e.onset) for e in existing}
    added: list[FaultEpisode] = []
    verdicts: list[dict[str, Any]] = []
    for alert in alerts:
        episode = episode_of(alert)
        if episode is None:
            continue
        verdicts.append(
            {k: alert.get(k) for k in ("id", "site", "asset_id", "fault", "first_seen", "last_seen", "resolved_at")}
            | {k: alert.get(k) for k in ("verdict", "verdict_fault", "verdict_by", "verdict_at", "verdict_note")}
        )
        if (episode.asset_id, episode.fault, episode.onset) not in known:
            known.add((episode.asset_id, episode.fault, episode.onset))
            added.append(episode)
    episodes = sorted(existing + added, key=lambda e: (e.onset, e.asset_id, e.fault))
    (directory / LABELS).write_bytes(b"".join(encode(e) + b"\n" for e in episodes))
    (directory / VERDICTS).write_text("".join(json.dumps(v, sort_keys=True) + "\n" for v in verdicts))
    meta = directory / META
    if not meta.is_file():
        assets = {a: None for a in sorted({e.asset_id for e in episodes})}
        meta.write_text(DatasetMeta(source="forewarn alerts export-labels", assets=assets).model_dump_json(indent=2) + "\n")
    else:
        decode(meta.read_bytes(), DatasetMeta)  # a broken meta.json is the user's to fix, not ours to overwrite
    return len(added), len(verdicts)


def has_messages(directory: Path) -> bool:
    return (directory / MESSAGES).is_file()
