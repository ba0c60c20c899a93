"""Synthetic fault predictions, for the stream's tests, benchmarks and anyone exercising a worker.

They are valid ``FaultPrediction`` messages (ids, probabilities summing to one), shaped
like a gateway's: a healthy asset says "normal", a faulty one gives the fault a high
probability and a time to failure.
"""

from __future__ import annotations

from forewarn.contracts import ChannelEvidence, Evidence, FaultPrediction, LogEvidence, prediction_id

MODEL_VERSION = "synthetic-1"


def prediction(
    asset: str,
    window_end: float,
    fault: str = "normal",
    p: float = 0.95,
    *,
    gateway: str = "gw1",
    site: str = "plant1",
    asset_type: str | None = "pump",
    ttf_hours: float | None = None,
    produced_at: float | None = None,
    window_s: float = 10.0,
) -> FaultPrediction:
    """One asset's prediction for the window ending at ``window_end``: ``fault`` with probability ``p``."""
    if fault == "normal":
        probabilities = {"normal": p, "imbalance": round(1.0 - p, 6)}
    else:
        probabilities = {fault: p, "normal": round(1.0 - p, 6)}
    evidence = Evidence()
    if fault != "normal":
        evidence = Evidence(
            channels=[ChannelEvidence(channel="vibration_rms", score=4.2, value=7.1, baseline=2.0)],
            logs=[LogEvidence(ts=window_end - 1, text=f"{fault.replace('_', ' ')} suspected by controller", weight=0.6)],
        )
    return FaultPrediction(
        id=prediction_id(gateway, asset, window_end),
        gateway_id=gateway,
        site=site,
        asset_id=asset,
        asset_type=asset_type,
        window_start=window_end - window_s,
        window_end=window_end,
        fault=max(probabilities, key=lambda k: probabilities[k]),
        probabilities=probabilities,
        anomaly_score=min(1.0, 1.0 - probabilities.get("normal", 0.0)),
        ttf_hours=ttf_hours,
        confidence=max(probabilities.values()),
        model_version=MODEL_VERSION,
        evidence=evidence,
        latency_ms=1.5,
        produced_at=produced_at if produced_at is not None else window_end,
    )
