"""A dataset directory with its channels renamed: a second plant read with a bundle trained on a first.

`forewarn model map BUNDLE DIR` proposes which of the plant's channels is which of the bundle's
(models.channelmap); `forewarn data rename DIR --map MAP --out NEW` writes NEW with the plant's
channels under the bundle's names (telemetry and meta.json; the channel's unit, description and
original name travel with it), so `model evaluate` and `edge score` read it as the bundle expects.
A gateway applies the same mapping live with ``edge.channel_map``. Channels the mapping does not
name keep their names; two channels mapped to one name are refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path

from forewarn.contracts import LogRecord, Telemetry
from forewarn.dataset import iter_messages, read_labels, read_meta
from forewarn.importers.common import ImportRefused, Report, write_dataset


def read_mapping(path: Path) -> dict[str, str]:
    """A mapping file: a JSON object, plant channel -> bundle channel (what `model map --out` writes)."""
    try:
        mapping = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ImportRefused(f"cannot read the channel map {path}: {exc}") from exc
    if not isinstance(mapping, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
        raise ImportRefused(f"{path} is not a JSON object of channel names (plant channel -> bundle channel)")
    return mapping


def rename_dataset(src: Path, out: Path, mapping: Mapping[str, str], overwrite: bool = False) -> Report:
    """Write ``out``: ``src`` with every channel named by ``mapping`` renamed."""
    meta = read_meta(src)
    targets = [mapping.get(name, name) for name in meta.channels]
    clashes = sorted({t for t in targets if targets.count(t) > 1})
    if clashes:
        raise ImportRefused(f"the channel map gives {', '.join(clashes)} to more than one channel")
    unknown = sorted(set(mapping) - set(meta.channels))
    report = Report(source=f"{src} with {len(mapping) - len(unknown)} channels renamed")
    if unknown:
        report.notes.append(f"not in {src}/meta.json, ignored: {', '.join(unknown)}")
    channels = {mapping.get(name, name): info for name, info in meta.channels.items()}
    renamed = meta.model_copy(update={"channels": channels})
    write_dataset(out, renamed, _renamed(iter_messages(src), mapping), read_labels(src), report, overwrite=overwrite)
    return report


def _renamed(messages: Iterator[Telemetry | LogRecord], mapping: Mapping[str, str]) -> Iterator[Telemetry | LogRecord]:
    for message in messages:
        if isinstance(message, Telemetry):
            message = message.model_copy(update={"channels": {mapping.get(k, k): v for k, v in message.channels.items()}})
        yield message
