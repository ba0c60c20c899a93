"""A tiny hand-made dataset directory for unit tests: three assets, two faults, a few log phrasings.

Not a simulator and never a training source for a shipped model: it only gives tests real
dataset directories and real Windows with known structure (imbalance raises vibration,
overheating raises temperature, each with its own log line).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from forewarn.contracts import ChannelInfo, DatasetMeta, FaultEpisode, LogRecord, Telemetry
from forewarn.dataset import DatasetWriter

T0 = 1_767_225_600.0
CHANNELS = ("temp_c", "vib_mm_s", "current_a")
ASSETS = {"P-1": "pump", "P-2": "pump", "M-1": "motor"}
FAULTS = {"P-1": ("imbalance", 1800.0, 3600.0), "M-1": ("overheating", 2400.0, None)}
LOGS = {
    "imbalance": "vibration high on drive end, check balance",
    "overheating": "winding temperature above limit",
}


def write_dataset(directory: Path, seconds: int = 3600, seed: int = 0, batch: int = 20) -> Path:
    """Write DIR/messages.jsonl, labels.jsonl, meta.json; 1 Hz samples in batches of ``batch``."""
    rng = np.random.default_rng(seed)
    meta = DatasetMeta(
        source="tests synthetic",
        channels={c: ChannelInfo(rate_hz=1.0) for c in CHANNELS},
        assets=dict(ASSETS),
        seed=seed,
    )
    with DatasetWriter(directory, meta, overwrite=True) as writer:
        for asset, (fault, onset, failure) in FAULTS.items():
            writer.label(
                FaultEpisode(asset_id=asset, fault=fault, onset=T0 + onset, failure=None if failure is None else T0 + failure)
            )
        seq = dict.fromkeys(ASSETS, 0)
        for start in range(0, seconds, batch):
            for asset, asset_type in ASSETS.items():
                t = np.arange(start, start + batch, dtype=np.float64)
                temp = 40 + rng.normal(0, 0.3, batch)
                vib = 2 + rng.normal(0, 0.1, batch)
                fault = FAULTS.get(asset)
                if fault is not None and start >= fault[1]:
                    grow = (start - fault[1]) / 600.0
                    if fault[0] == "imbalance":
                        vib += 1.0 + grow
                    else:
                        temp += 5.0 + 3 * grow
                channels: dict[str, list[float | None]] = {"temp_c": temp.round(2).tolist(), "vib_mm_s": vib.round(3).tolist()}
                if asset_type == "motor":
                    channels["current_a"] = (30 + rng.normal(0, 0.5, batch)).round(2).tolist()
                writer.write(
                    Telemetry(
                        site="plant",
                        asset_id=asset,
                        asset_type=asset_type,
                        seq=seq[asset],
                        timestamps=(T0 + t).tolist(),
                        channels=channels,
                    )
                )
                seq[asset] += 1
            for asset, (fault, onset, _) in FAULTS.items():
                if start >= onset and start % 120 == 0:
                    writer.write(
                        LogRecord(site="plant", asset_id=asset, ts=T0 + start + batch - 1, level="WARNING", text=LOGS[fault])
                    )
            if start % 300 == 0:
                writer.write(
                    LogRecord(site="plant", asset_id="P-2", ts=T0 + start + batch - 1, text="shift handover, all normal")
                )
    return directory
