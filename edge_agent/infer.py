"""Inference: batches of windows -> the model bundle (ONNX Runtime) -> ``FaultPrediction``s.

The featurisation and the model are the models package's (``models.runtime.Predictor``
over ``models.windowing.Window``); this stage only batches, times, and turns each
``ModelOutput`` into the wire contract with the gateway's id, the window, the evidence
(the channels that deviated most, the log lines that weighed most), the bundle's version
and the latency. The daemon and `edge score` both call ``Scorer.score``.

Two clocks, chosen by the caller:
- live (``arrived`` given): ``produced_at`` is the wall clock and ``latency_ms`` is the
  gateway's added latency for that window, from the arrival of the message that completed
  it to the prediction;
- deterministic (``arrived=None``, offline scoring): ``produced_at`` is the window's end and
  ``latency_ms`` is 0, so the same input gives the same bytes; the measured model time is
  reported separately (``Scored.seconds``).

Hot reload: ``check_reload`` notices a bundle directory whose files changed (a new bundle
dropped in place), loads it (``Bundle.load`` verifies every sha256 of its manifest) and
swaps it in; a bundle that fails verification is refused and the running one stays.
Signed bundles from the site's bundle topic go through ``open`` and ``swap``
(``edge_agent.rollout``), after their self-test.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from edge_agent.errors import ModelError
from forewarn.contracts import FaultPrediction, prediction_id
from models.windowing import Window, WindowSpec

if TYPE_CHECKING:  # imported for real in Scorer._open: the runtime pulls in ONNX Runtime
    from models.runtime import Bundle, ModelOutput, Predictor

Signature = tuple[tuple[str, int, int], ...]


@dataclass(frozen=True)
class Scored:
    """One batch's predictions and the model time it took."""

    predictions: list[FaultPrediction]
    seconds: float


def bundle_signature(path: Path) -> Signature:
    """(name, size, mtime) of every file in the bundle directory: changes when a bundle is dropped in place."""
    try:
        files = sorted(p for p in path.rglob("*") if p.is_file())
        return tuple((str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    except OSError:
        return ()


class Scorer:
    """A loaded bundle and its ONNX Runtime session, turning windows into predictions."""

    def __init__(self, path: Path, gateway_id: str, threads: int = 1, batch_size: int = 64) -> None:
        self.path = path
        self.gateway_id = gateway_id
        self.threads = threads
        self.batch_size = batch_size
        self._signature: Signature = ()
        self._bundle: Bundle | None = None
        self._predictor: Predictor | None = None

    def load(self) -> None:
        """Load and verify the bundle; raises ModelError with the reason when it cannot be used."""
        signature = bundle_signature(self.path)
        self._bundle, self._predictor = self._open(self.path)
        self._signature = signature

    def check_reload(self) -> bool:
        """Swap in a bundle dropped in place; True if swapped, False if unchanged. Raises ModelError if refused.

        A refused bundle is not retried until its files change again (a copy still in progress will).
        """
        signature = bundle_signature(self.path)
        if signature == self._signature or not signature:
            return False
        self._signature = signature
        bundle, predictor = self._open(self.path)
        self._bundle, self._predictor = bundle, predictor
        return True

    def open(self, path: Path) -> tuple[Bundle, Predictor]:
        """Load and verify a bundle without using it (a rollout self-tests it first); raises ModelError."""
        return self._open(path)

    def swap(self, path: Path, loaded: tuple[Bundle, Predictor]) -> tuple[Path, tuple[Bundle, Predictor]]:
        """Make a loaded bundle the one that scores; returns the one it replaces.

        The caller swaps between batches (the daemon's loop, never during ``score``), so every
        window is scored by exactly one bundle.
        """
        old = self.path, self._loaded()
        self.path = path
        self._bundle, self._predictor = loaded
        self._signature = bundle_signature(path)
        return old

    @property
    def loaded(self) -> tuple[Bundle, Predictor]:
        return self._loaded()

    @property
    def version(self) -> str:
        return str(self._loaded()[0].version)

    @property
    def spec(self) -> WindowSpec:
        spec: WindowSpec = self._loaded()[0].spec
        return spec

    def score(self, windows: Sequence[Window], arrived: Sequence[float] | None = None) -> Scored:
        """Predictions for ``windows`` in order, in batches of batch_size (see the module docstring for clocks)."""
        bundle, predictor = self._loaded()
        predictions: list[FaultPrediction] = []
        seconds = 0.0
        for start in range(0, len(windows), self.batch_size):
            chunk = windows[start : start + self.batch_size]
            t0 = time.perf_counter()
            try:
                outputs = predictor.predict(chunk)
            except Exception as exc:  # ONNX Runtime raises its own types; the daemon needs one
                raise ModelError(f"inference failed on {len(chunk)} windows: {type(exc).__name__}: {exc}") from exc
            done = time.perf_counter()
            seconds += done - t0
            if len(outputs) != len(chunk):
                raise ModelError(f"the model returned {len(outputs)} outputs for {len(chunk)} windows")
            now = time.time()
            for i, (window, output) in enumerate(zip(chunk, outputs, strict=True)):
                if arrived is None:
                    produced_at, latency_ms = window.end, 0.0
                else:
                    since = arrived[start + i]
                    produced_at, latency_ms = now, max(0.0, (done - since) * 1000.0) if since else 0.0
                predictions.append(self._prediction(window, output, str(bundle.version), produced_at, latency_ms))
        return Scored(predictions, seconds)

    def _prediction(self, window: Window, o: ModelOutput, version: str, produced_at: float, latency_ms: float) -> FaultPrediction:
        try:
            return FaultPrediction(
                id=prediction_id(self.gateway_id, window.asset_id, window.end),
                gateway_id=self.gateway_id,
                site=window.site,
                asset_id=window.asset_id,
                asset_type=window.asset_type,
                window_start=window.start,
                window_end=window.end,
                fault=o.fault,
                probabilities=dict(o.probabilities),
                anomaly_score=o.anomaly_score,
                ttf_hours=o.ttf_hours,
                confidence=o.confidence,
                model_version=version,
                evidence=o.evidence,
                latency_ms=round(latency_ms, 3),
                produced_at=produced_at,
            )
        except ValidationError as exc:
            raise ModelError(f"the model's output for {window.asset_id} at {window.end} breaks the contract: {exc}") from exc

    def _loaded(self) -> tuple[Bundle, Predictor]:
        if self._bundle is None or self._predictor is None:
            raise ModelError("no model bundle is loaded (call load() first)")
        return self._bundle, self._predictor

    def _open(self, path: Path) -> tuple[Bundle, Predictor]:
        from models.errors import BundleError
        from models.runtime import Bundle, Predictor

        try:
            bundle = Bundle.load(path)
            return bundle, Predictor(bundle, threads=self.threads)
        except BundleError as exc:
            raise ModelError(f"model bundle {path} refused: {exc}") from exc
        except (OSError, RuntimeError, ValueError) as exc:  # unreadable files, ORT session errors
            raise ModelError(f"model bundle {path} cannot be loaded: {type(exc).__name__}: {exc}") from exc
