"""The edge -> plant cascade: which windows the gateway's small model hands to the plant tier's bigger one.

The gateway's INT8 model decides and alerts on its own. A window it is unsure of is also sent
(``forewarn.escalations``) to a bigger model in the plant tier, whose verdict refines the alert:

    escalate    the edge's confidence (its top class probability, renormalised over the faults
                the asset's type can have) is below ``confidence_below``, or the edge calls the
                window normal while its anomaly head scores it at least ``anomaly_above``
                (something is off, and no fault the model knows explains it)
    verdict     the plant model's class against the edge's: ``confirm`` (same class), ``clear``
                (the edge named a fault, the plant model calls it normal), ``reclassify`` (any
                other difference)

The cascade's class for a window is the plant model's where the window was escalated, the
edge's elsewhere. ``sweep`` measures it offline for a range of thresholds (escalated share
against macro-F1), which is how the operating point is chosen (docs/models.md, "Cascade").

Pure numpy: the gateway imports this module (no torch, no onnxruntime).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from forewarn.contracts import NORMAL
from models.metrics import classification, credit_any_truth

CONFIDENCE_BELOW = 0.6
"""Default threshold on the edge's confidence (the chosen operating point, docs/models.md "Cascade")."""
ANOMALY_ABOVE = 0.9
"""Default anomaly score above which an edge verdict of normal is escalated."""
SWEEP = (0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99)
"""The confidence thresholds ``sweep`` measures by default."""

Reason = Literal["low_confidence", "unknown_anomaly"]
Outcome = Literal["confirm", "reclassify", "clear"]


@dataclass(frozen=True)
class Policy:
    """When the edge escalates a window; both thresholds are configuration (edge.cascade_* keys)."""

    confidence_below: float = CONFIDENCE_BELOW
    anomaly_above: float = ANOMALY_ABOVE

    def reasons(self, probabilities: np.ndarray, anomaly: np.ndarray, normal: int = 0) -> list[Reason | None]:
        """Per window (rows of ``probabilities``, (N, K)), why it is escalated, or None when the edge verdict suffices."""
        probs = np.asarray(probabilities, dtype=np.float64)
        if probs.ndim != 2 or len(probs) != len(anomaly):
            raise ValueError(f"probabilities {probs.shape} and anomaly {np.shape(anomaly)} must describe the same windows")
        unsure = probs.max(axis=1, initial=0.0) < self.confidence_below
        unknown = (probs.argmax(axis=1) == normal) & (np.asarray(anomaly, dtype=np.float64) >= self.anomaly_above)
        return ["low_confidence" if u else "unknown_anomaly" if k else None for u, k in zip(unsure, unknown, strict=True)]

    def escalate(self, probabilities: np.ndarray, anomaly: np.ndarray, normal: int = 0) -> np.ndarray:
        """(N,) bool: the windows sent to the plant tier."""
        return np.array([r is not None for r in self.reasons(probabilities, anomaly, normal)], dtype=bool)

    def reason(self, probabilities: dict[str, float], anomaly: float) -> Reason | None:
        """One prediction's reason to escalate (the gateway's call, on a FaultPrediction's fields)."""
        labels = list(probabilities)
        normal = labels.index(NORMAL) if NORMAL in labels else -1
        row = np.array([[probabilities[label] for label in labels]])
        return self.reasons(row, np.array([anomaly]), normal)[0]


INPUT_FILES = ("tokenizer.json", "normalisation.json", "labels.json")
"""Bundle files that, with the config's window and feature specs, decide a model's inputs and outputs."""


def inputs_id(manifest: dict[str, Any], config: dict[str, Any]) -> str:
    """A hash of what turns a window into model inputs and outputs into labels (bundle manifest and config.json).

    Two bundles with the same ``inputs_id`` read the same featurised window: the gateway sends
    the inputs its bundle built, and the plant tier scores them only with a bundle that agrees.
    """
    files = manifest["files"]
    parts = [f"{name}:{files[name]['sha256']}" for name in INPUT_FILES]
    parts.append(json.dumps({"spec": config.get("spec"), "features": config.get("features")}, sort_keys=True))
    return "in-" + hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def outcome(edge_fault: str, plant_fault: str) -> Outcome:
    """What the plant model's verdict does to the edge's: confirm it, clear it (plant says normal), or reclassify."""
    if plant_fault == edge_fault:
        return "confirm"
    if plant_fault == NORMAL:
        return "clear"
    return "reclassify"


def combine(edge_classes: np.ndarray, plant_classes: np.ndarray, escalated: np.ndarray) -> np.ndarray:
    """The cascade's class per window: the plant model's where escalated, else the edge's."""
    return np.where(np.asarray(escalated, dtype=bool), plant_classes, edge_classes)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, k: int) -> float:
    """Macro-F1 over the classes present in truth or prediction, of ``k`` class indices (models.metrics.classification)."""
    result: float = classification(np.asarray(y_true), np.asarray(y_pred), [str(i) for i in range(k)])["macro_f1"]
    return result


def point(
    y: np.ndarray,
    edge_probs: np.ndarray,
    plant_probs: np.ndarray,
    anomaly: np.ndarray,
    policy: Policy,
    credit: Sequence[Sequence[int]] | None = None,
) -> dict[str, Any]:
    """escalated_fraction and macro-F1 of edge, plant and cascade at one policy, on the same windows.

    ``credit[i]``: every class that is right for window i (a window with two faults); a model
    naming any of them is scored right (models.metrics.credit_any_truth), each model on its own.
    """
    k = edge_probs.shape[1]
    edge, plant = edge_probs.argmax(axis=1), plant_probs.argmax(axis=1)
    escalated = policy.escalate(edge_probs, anomaly)
    cascade = combine(edge, plant, escalated)

    def f1(pred: np.ndarray) -> float:
        truth = y if credit is None else credit_any_truth(y, pred, credit)
        return round(macro_f1(truth, pred, k), 4)

    f_plant = f1(plant)
    f_cascade = f1(cascade)
    return {
        "confidence_below": policy.confidence_below,
        "anomaly_above": policy.anomaly_above,
        "escalated_fraction": round(float(escalated.mean()) if len(escalated) else 0.0, 4),
        "escalated": int(escalated.sum()),
        "macro_f1_edge": f1(edge),
        "macro_f1_plant": f_plant,
        "macro_f1_cascade": f_cascade,
        "plant_f1_recovered": round(f_cascade / f_plant, 4) if f_plant > 0 else None,
    }


def sweep(
    y: np.ndarray,
    edge_probs: np.ndarray,
    plant_probs: np.ndarray,
    anomaly: np.ndarray,
    anomaly_above: float = ANOMALY_ABOVE,
    thresholds: Sequence[float] = SWEEP,
    credit: Sequence[Sequence[int]] | None = None,
) -> list[dict[str, Any]]:
    """``point`` at every confidence threshold: the escalated share against macro-F1, a curve."""
    return [point(y, edge_probs, plant_probs, anomaly, Policy(t, anomaly_above), credit) for t in thresholds]


def operating_point(curve: Sequence[dict[str, Any]], max_fraction: float = 0.05) -> dict[str, Any] | None:
    """The curve's best cascade macro-F1 among the points escalating at most ``max_fraction`` (None: none does)."""
    within = [p for p in curve if p["escalated_fraction"] <= max_fraction]
    return max(within, key=lambda p: (p["macro_f1_cascade"], -p["escalated_fraction"])) if within else None


__all__ = ["Outcome", "Policy", "Reason", "combine", "inputs_id", "macro_f1", "operating_point", "outcome", "point", "sweep"]
