"""Escalation: the gateway's side of the edge -> plant cascade.

The gateway's model decides and alerts on its own; its prediction goes out first, unchanged
and undelayed. Afterwards, the windows it was unsure of (``models.cascade.Policy``: confidence
below ``edge.cascade_confidence_below``, or normal with an anomaly score of at least
``edge.cascade_anomaly_above``) are escalated to the plant tier's bigger model: an
``Escalation`` carrying the prediction and the model inputs the gateway built for the window,
stored in the outbox like a prediction, keyed by asset id, for ``topics.kafka_escalations``.

A budget bounds what the uplink carries: at most ``edge.cascade_rate`` escalations a second,
``edge.cascade_burst`` saved up; the windows over budget are counted and keep the edge verdict.
With the uplink down the escalations wait in the outbox (the first rows dropped when it is
full, edge_agent.outbox) and go when it is back; the edge's alerts never wait for them.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from edge_agent.outbox import Record
from forewarn.contracts import Escalation, FaultPrediction, encode
from models.cascade import Policy, Reason, inputs_id
from models.windowing import Window

if TYPE_CHECKING:
    from models.runtime import Predictor


class Budget:
    """A token bucket: ``rate`` a second, at most ``burst`` saved up."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self.tokens = float(burst)
        self.stamp = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Escalator:
    """Chooses the windows to escalate within the budget and builds their outbox records."""

    def __init__(self, policy: Policy, budget: Budget, topic: str) -> None:
        self.policy = policy
        self.budget = budget
        self.topic = topic
        self.escalated = 0
        self.over_budget = 0
        self._inputs: tuple[str, str] | None = None  # (model version, inputs id)

    def choose(self, predictions: Sequence[FaultPrediction]) -> list[tuple[int, Reason]]:
        """The predictions to escalate, with why, in order; those over budget are counted and left out."""
        chosen: list[tuple[int, Reason]] = []
        for i, p in enumerate(predictions):
            reason = self.policy.reason(p.probabilities, p.anomaly_score)
            if reason is None:
                continue
            if self.budget.take():
                chosen.append((i, reason))
            else:
                self.over_budget += 1
        return chosen

    def records(
        self, windows: Sequence[Window], predictions: Sequence[FaultPrediction], predictor: Predictor, now: float
    ) -> list[Record]:
        """Outbox records of the escalated windows; the model inputs are built again by the bundle that scored them.

        Runs after the predictions are stored and published (off the event loop): the edge alarm
        does not wait for it. Predictions of another bundle than ``predictor``'s (a swap in between) are skipped.
        """
        bundle = predictor.bundle
        mine = [(i, r) for i, r in self.choose(predictions) if predictions[i].model_version == bundle.version]
        if not mine:
            return []
        if self._inputs is None or self._inputs[0] != bundle.version:
            self._inputs = (bundle.version, inputs_id(bundle.manifest, bundle.config))
        features = predictor.featuriser([windows[i] for i, _ in mine])
        out = []
        for j, (i, reason) in enumerate(mine):
            p = predictions[i]
            sensors = np.ascontiguousarray(features.sensors[j], dtype="<f4")
            tokens = features.tokens[j]
            used = int(np.flatnonzero(tokens)[-1]) + 1 if tokens.any() else 0
            escalation = Escalation(
                prediction=p,
                reason=reason,
                inputs_id=self._inputs[1],
                steps=sensors.shape[0],
                features=sensors.shape[1],
                sensors=base64.b64encode(sensors.tobytes()).decode(),
                tokens=tokens[:used].tolist(),
                ts=now,
            )
            out.append(Record(f"esc:{p.id}", "escalation", self.topic, p.asset_id.encode(), encode(escalation)))
        self.escalated += len(out)
        return out


__all__ = ["Budget", "Escalator"]
