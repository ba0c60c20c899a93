"""Running a model bundle: what the gateway and offline scoring call. numpy + onnxruntime + tokenizers, never torch.

    bundle = Bundle.load(default_bundle_path())      # verifies every sha256 first
    predictor = Predictor(bundle, threads=1)
    outputs = predictor.predict(windows)              # list[ModelOutput], one per Window

Evidence is computed with the prediction and costs little: channels are ranked by how far
their window statistics sit from the bundle's healthy baseline for the asset's type (the
score is that z), and log lines by the share of the [CLS] token's last-layer attention that
fell on their word pieces (an extra output of the ONNX graph).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from forewarn.contracts import NORMAL, ChannelEvidence, Evidence, LogEvidence, LogRecord
from models.bundle import read_json, verify
from models.errors import BundleError
from models.features import Features, FeatureSpec, Featuriser, Normaliser
from models.tokenizer import LogTokenizer
from models.windowing import Window, WindowSpec

INPUTS = ("sensors", "tokens")
OUTPUTS = ("probabilities", "anomaly", "ttf_log_hours", "log_attention")


def default_bundle_path() -> Path:
    """The shipped bundle inside the package."""
    return Path(__file__).resolve().parent / "bundles" / "default"


@dataclass(frozen=True)
class ModelOutput:
    """The model's verdict on one window, before the gateway wraps it in a FaultPrediction."""

    probabilities: dict[str, float]
    """Every label, "normal" included; sums to 1."""
    fault: str
    anomaly_score: float
    ttf_hours: float | None
    """None when the model predicts normal or has no time-to-failure head."""
    confidence: float
    evidence: Evidence
    running: bool = True
    """False when the machine stood still in most of the window: no fault can show, the verdict is the model's prior."""
    rul_hours: float | None = None
    """The time-to-failure head's estimate whatever the verdict (remaining useful life); None without the head."""


class Bundle:
    """A verified model bundle: spec, labels, featurisation pieces and the ONNX graph's path."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest
        self.version: str = manifest["version"]
        config = read_json(path, "config.json")
        try:
            self.spec = WindowSpec.from_dict(config["spec"])
            self.features = FeatureSpec.from_dict(config["features"])
            self.model_config: dict[str, Any] = dict(config["model"])
            self.has_ttf = bool(config.get("has_ttf", True))
            modes = config.get("fault_modes")  # absent in bundles older than it: every fault for every type
            self.fault_modes: dict[str, frozenset[str]] | None = (
                None if modes is None else {str(t): frozenset(map(str, faults)) for t, faults in dict(modes).items()}
            )
            labels = read_json(path, "labels.json")["labels"]
            self.normaliser = Normaliser.from_dict(read_json(path, "normalisation.json"))
        except (KeyError, TypeError, ValueError, AssertionError) as exc:
            raise BundleError(f"model bundle {path}: config is incompatible with this Forewarn ({exc!r})") from exc
        if not labels or labels[0] != NORMAL or len(set(labels)) != len(labels):
            raise BundleError(f"model bundle {path}: labels.json must list unique labels, {NORMAL!r} first")
        self.labels: tuple[str, ...] = tuple(labels)
        self.tokenizer = LogTokenizer.from_file(path / "tokenizer.json")
        self.metrics: dict[str, Any] = read_json(path, "metrics.json")
        self.config: dict[str, Any] = config

    @classmethod
    def load(cls, path: Path) -> Bundle:
        """Verify the manifest's sha256 of every file, then read the bundle; raises BundleError."""
        path = Path(path)
        manifest = verify(path)
        return cls(path, manifest)

    @property
    def onnx_path(self) -> Path:
        return self.path / "model.onnx"

    def featuriser(self) -> Featuriser:
        try:
            return Featuriser(self.spec, self.features, self.normaliser, self.tokenizer)
        except AssertionError as exc:
            raise BundleError(f"model bundle {self.path}: {exc}") from exc

    def __repr__(self) -> str:
        return f"Bundle({str(self.path)!r}, version={self.version!r}, labels={len(self.labels)})"


def session(path: Path, threads: int = 1) -> ort.InferenceSession:
    """An ONNX Runtime CPU session pinned to ``threads`` intra-op threads, fully optimised."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own hierarchy
        raise BundleError(f"{path}: ONNX Runtime cannot load the graph ({exc})") from exc


class Predictor:
    """Scores windows with a bundle's ONNX graph; batched and deterministic."""

    def __init__(self, bundle: Bundle, threads: int = 1, max_batch: int | None = None, evidence_items: int = 5) -> None:
        self.bundle = bundle
        self.featuriser = bundle.featuriser()
        # Dynamic INT8 quantizes activations with one scale per call, so a window's scores would
        # shift with its batch-mates; one window per call keeps them batch invariant, and at this
        # model size a call of one costs about the same per window as a call of 64 (docs/models.md).
        # Static INT8 and FP32 graphs are batch invariant as they are.
        if max_batch is None:
            max_batch = 1 if bundle.config.get("quantization") == "dynamic" else 64
        self.max_batch = max_batch
        self.evidence_items = evidence_items
        self.session = session(bundle.onnx_path, threads)
        self._check_graph()
        self._modes: dict[str | None, np.ndarray] = {}

    def applicable(self, asset_type: str | None) -> np.ndarray:
        """(labels,) bool: normal and the faults the bundle's training showed on this asset type.

        Every label for a type the training data lacked (or a bundle without fault modes): the
        model's verdict stands where no one knows the type's failure modes.
        """
        mask = self._modes.get(asset_type)
        if mask is None:
            labels, modes = self.bundle.labels, self.bundle.fault_modes
            known = modes.get(asset_type) if modes is not None and asset_type else None
            mask = np.array([known is None or label == NORMAL or label in known for label in labels])
            self._modes[asset_type] = mask
        return mask

    def _check_graph(self) -> None:
        spec, features = self.bundle.spec, self.bundle.features
        expected = {
            "sensors": [spec.steps, features.sensor_features(len(spec.channels), spec.spectral_features)],
            "tokens": [features.log_tokens],
        }
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        if sorted(inputs) != sorted(INPUTS) or list(outputs) != list(OUTPUTS):
            raise BundleError(f"{self.bundle.onnx_path}: graph has inputs {sorted(inputs)} and outputs {outputs}")
        for name, dims in expected.items():
            if list(inputs[name][1:]) != dims:
                raise BundleError(f"{self.bundle.onnx_path}: input {name} is {inputs[name]}, config says [batch, {dims}]")

    # ------------------------------------------------------------------ raw

    def run(self, features: Features) -> dict[str, np.ndarray]:
        """Run the graph on featurised windows, in chunks of max_batch; outputs keyed by OUTPUTS."""
        n = features.sensors.shape[0]
        parts: dict[str, list[np.ndarray]] = {name: [] for name in OUTPUTS}
        for at in range(0, n, self.max_batch):
            feeds = {
                "sensors": np.ascontiguousarray(features.sensors[at : at + self.max_batch], dtype=np.float32),
                "tokens": np.ascontiguousarray(features.tokens[at : at + self.max_batch], dtype=np.int64),
            }
            for name, value in zip(OUTPUTS, self.session.run(list(OUTPUTS), feeds), strict=True):
                parts[name].append(np.asarray(value))
        if n == 0:
            k, logs = len(self.bundle.labels), self.bundle.features.log_tokens
            empty = {"probabilities": (0, k), "anomaly": (0,), "ttf_log_hours": (0,), "log_attention": (0, logs)}
            return {name: np.zeros(shape, dtype=np.float32) for name, shape in empty.items()}
        return {name: np.concatenate(chunks) for name, chunks in parts.items()}

    # ------------------------------------------------------------- verdicts

    def probabilities(self, features: Features, asset_types: Sequence[str | None]) -> np.ndarray:
        """(N, labels) the class probabilities ``predict`` reports for featurised windows, without their evidence."""
        return self._applicable_only(self.run(features)["probabilities"], asset_types)

    def _applicable_only(self, probabilities: np.ndarray, asset_types: Sequence[str | None]) -> np.ndarray:
        """The graph's probabilities renormalised over the faults each window's asset type can have."""
        probs = np.clip(probabilities.astype(np.float64), 0.0, None)
        probs = np.where(np.stack([self.applicable(t) for t in asset_types]), probs, 0.0)
        normalised: np.ndarray = probs / np.maximum(probs.sum(axis=1, keepdims=True), 1e-12)
        return normalised

    def predict(self, windows: Sequence[Window]) -> list[ModelOutput]:
        """One ModelOutput per window, in order."""
        if not windows:
            return []
        features = self.featuriser(windows)
        raw = self.run(features)
        stats = np.stack([w.stats for w in windows])
        counts = np.stack([w.counts for w in windows])
        types = self.featuriser.type_indices([w.asset_type for w in windows])
        z, value = self.featuriser.deviations(stats, counts, types)  # (N, C, 4) each
        ran = self.featuriser.running(stats, counts)  # (N,)
        labels = self.bundle.labels
        probs = self._applicable_only(raw["probabilities"], [w.asset_type for w in windows])
        best = np.argmax(probs, axis=1)
        ttfs = np.expm1(np.clip(raw["ttf_log_hours"], 0.0, 12.0))
        anomaly = np.clip(raw["anomaly"], 0.0, 1.0)
        evidence = self._channel_evidence(z, value, types)
        log_evidence = self._log_evidence(windows, features, best, probs)
        outputs = []
        for i in range(len(windows)):
            fault = labels[best[i]]
            ttf = float(ttfs[i]) if fault != NORMAL and self.bundle.has_ttf else None
            outputs.append(
                ModelOutput(
                    probabilities=dict(zip(labels, probs[i].tolist(), strict=True)),
                    fault=fault,
                    anomaly_score=float(anomaly[i]),
                    ttf_hours=ttf,
                    confidence=float(probs[i, best[i]]),
                    evidence=Evidence(
                        channels=evidence[i],
                        logs=log_evidence[i],
                    ),
                    running=bool(ran[i]),
                    rul_hours=float(ttfs[i]) if self.bundle.has_ttf else None,
                )
            )
        return outputs

    def _channel_evidence(self, z: np.ndarray, value: np.ndarray, types: np.ndarray) -> list[list[ChannelEvidence]]:
        """Per window, the channels whose statistics sit farthest from the healthy baseline; z, value (N, C, 4).

        One pass over the batch in numpy: only a window's few evidence items are Python objects.
        """
        norm = self.featuriser.normaliser
        absz = np.where(np.isfinite(z), np.abs(z), -1.0)
        stat = absz.argmax(axis=2)[..., None]  # (N, C, 1): the statistic that deviates most per channel
        top = np.take_along_axis(absz, stat, axis=2)[..., 0]  # (N, C)
        score = np.take_along_axis(z, stat, axis=2)[..., 0]
        val = np.take_along_axis(value, stat, axis=2)[..., 0]
        base = np.take_along_axis(norm.mean[types], stat, axis=2)[..., 0]
        order = np.argsort(-top, axis=1, kind="stable")[:, : self.evidence_items]
        out: list[list[ChannelEvidence]] = []
        for i, channels in enumerate(order.tolist()):
            items = []
            for c in channels:
                if top[i, c] < 1.0:  # within one standard deviation of healthy: not evidence
                    break
                numbers = float(score[i, c]), float(val[i, c]), float(base[i, c])
                if not all(math.isfinite(x) for x in numbers):
                    continue
                items.append(
                    ChannelEvidence(
                        channel=norm.channels[c],
                        score=round(numbers[0], 3),
                        value=round(numbers[1], 6),
                        baseline=round(numbers[2], 6),
                    )
                )
            out.append(items)
        return out

    def _log_evidence(
        self, windows: Sequence[Window], features: Features, best: np.ndarray, probs: np.ndarray
    ) -> list[list[LogEvidence]]:
        """Per window, the log lines whose removal changes its fault verdict, by how much the fault's probability falls.

        A line is evidence only if the model needs it: each line of a window called faulty is taken
        out in turn and the window scored again (one batch per call); a line whose removal leaves the
        verdict standing is not shown, however much attention it drew. Normal verdicts show no lines.
        Only the log tokens of a variant are featurised anew: its sensor tokens are its window's
        (``features``), which the logs do not enter.
        """
        out: list[list[LogEvidence]] = [[] for _ in windows]
        variants: list[tuple[LogRecord, ...]] = []
        owners: list[tuple[int, int]] = []
        for i, window in enumerate(windows):
            if best[i] != 0 and window.logs:
                for k in range(len(window.logs)):
                    variants.append(window.logs[:k] + window.logs[k + 1 :])
                    owners.append((i, k))
        if not variants:
            return out
        tokens, line_index = self.featuriser.log_tokens(variants)
        rows = np.array([i for i, _ in owners])
        raw = self.run(Features(features.sensors[rows], tokens, line_index))
        without = self._applicable_only(raw["probabilities"], [windows[i].asset_type for i, _ in owners])
        for (i, k), p in zip(owners, without, strict=True):
            fault = int(best[i])
            if int(np.argmax(p)) != fault:
                drop = float(probs[i, fault] - p[fault])
                out[i].append(
                    LogEvidence(ts=windows[i].logs[k].ts, text=windows[i].logs[k].text, weight=round(max(drop, 0.0), 4))
                )
        for items in out:
            items.sort(key=lambda e: -e.weight)
            del items[self.evidence_items :]
        return out


__all__ = ["Bundle", "BundleError", "ModelOutput", "Predictor", "default_bundle_path"]
