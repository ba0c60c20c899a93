"""Training without fault labels: an anomaly bundle learned from a plant's normal history alone.

A plant has months of unlabelled running and few recorded failures. ``model train --unlabelled``
(or a dataset with no fault episodes) takes every training window as normal behaviour and trains
the student on two self-supervised objectives at once:

- masked modelling (models.ssl): 15 % of the sensor steps zeroed and regressed, 15 % of the log
  word pieces masked and predicted, so sensors and log text shape one representation;
- a bottleneck reconstruction: every sensor feature of the window decoded from the [CLS] vector
  alone. What the encoder has learnt to compress (this plant's normal patterns, each asset
  against its own running reference) comes back; what it has not (a fault) does not.

The anomaly score is the reconstruction error, calibrated on windows of assets held out of
training: the threshold is their (1 - false_alarm_rate) quantile, measured on the shipped INT8
graph itself. The graph outputs P(anomaly) = sigmoid(4 (log error - log threshold)), 0.5 at the
threshold, as the ``anomaly`` class of an ordinary bundle (labels ``normal``, ``anomaly``), so
the runtime, evidence (channels against the healthy baseline), gateway and alert path are the
labelled bundle's. Labels, where they exist, add fault classes with the labelled pipeline.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from models.bundle import assemble, write_manifest
from models.evaluate import evaluate
from models.export import export_onnx, quantize_dynamic_int8, run_onnx
from models.features import Features
from models.model import SLM
from models.prepare import Prepared, prepare
from models.profiles import Profile
from models.report import overrides
from models.runtime import Bundle
from models.ssl import PretrainHeads, ssl_loss
from models.train import FitConfig, fit

ANOMALY = "anomaly"
STEEPNESS = 4.0
"""P(anomaly) = sigmoid(STEEPNESS * (log error - log threshold)): 0.5 at the threshold, 0.94 at twice it."""


class Decoder(nn.Module):
    """Every sensor feature of the window from the [CLS] vector: the bottleneck the anomaly score reads."""

    def __init__(self, model: SLM) -> None:
        super().__init__()
        cfg = model.cfg
        self.out = nn.Linear(cfg.d_model, cfg.sensor_tokens * cfg.sensor_features)

    def error(self, model: SLM, sensors: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """(B,) mean squared reconstruction error of each window's sensor features."""
        cls = model(sensors, tokens).hidden[-1][:, 0]  # (B, d)
        recon = self.out(cls).view(sensors.shape)
        error: torch.Tensor = ((recon - sensors) ** 2).mean(dim=(1, 2))
        return error


class AnomalyExported(nn.Module):
    """The ONNX graph of an anomaly bundle: the labelled bundle's outputs, scored by reconstruction error."""

    def __init__(self, model: SLM, decoder: Decoder, log_threshold: float) -> None:
        super().__init__()
        self.model, self.decoder = model, decoder
        self.register_buffer("log_threshold", torch.tensor(float(log_threshold)))

    def forward(
        self, sensors: torch.Tensor, tokens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.model(sensors, tokens)
        recon = self.decoder.out(out.hidden[-1][:, 0]).view(sensors.shape)
        error = ((recon - sensors) ** 2).mean(dim=(1, 2))  # (B,)
        threshold: torch.Tensor = self.log_threshold  # type: ignore[assignment]
        p = torch.sigmoid(STEEPNESS * (torch.log(error + 1e-12) - threshold))
        start = 1 + self.model.cfg.sensor_tokens
        log_attention = out.attention[:, :, 0, start:].mean(dim=1)  # (B, L)
        return torch.stack([1.0 - p, p], dim=1), p, torch.zeros_like(p), log_attention


def _loss(model: SLM, decoder: Decoder, heads: PretrainHeads, p: Prepared, seed: int) -> Callable[[np.ndarray], Any]:
    masked = ssl_loss(model, heads, p.train, seed)

    def loss(index: np.ndarray) -> tuple[torch.Tensor, dict[str, float]]:
        total, terms = masked(index)
        sensors, tokens, _, _ = p.train.batch(index)
        recon = decoder.error(model, sensors, tokens).mean()
        return total + recon, {**terms, "recon": float(recon.detach())}

    return loss


def _errors(model: SLM, decoder: Decoder, features: Features, batch: int = 256) -> np.ndarray:
    model.eval()
    out = []
    with torch.no_grad():
        for at in range(0, len(features.sensors), batch):
            sensors = torch.from_numpy(np.ascontiguousarray(features.sensors[at : at + batch], dtype=np.float32))
            tokens = torch.from_numpy(np.ascontiguousarray(features.tokens[at : at + batch], dtype=np.int64))
            out.append(decoder.error(model, sensors, tokens).numpy())
    return np.concatenate(out) if out else np.zeros(0)


def _graph_log_errors(path: Path, features: Features, log_threshold: float) -> np.ndarray:
    """The log reconstruction error a graph computes, read back from its P(anomaly)."""
    p = np.clip(run_onnx(path, features, batch=256)["anomaly"].astype(np.float64), 1e-7, 1 - 1e-7)
    result: np.ndarray = np.log(p / (1 - p)) / STEEPNESS + log_threshold
    return result


def _export(model: SLM, decoder: Decoder, log_threshold: float, run_dir: Path) -> tuple[Path, Path]:
    fp32, int8 = run_dir / "anomaly_fp32.onnx", run_dir / "anomaly_int8.onnx"
    for stale in (fp32, int8):
        stale.unlink(missing_ok=True)
    export_onnx(model.eval(), fp32, wrapper=AnomalyExported(model, decoder, log_threshold).eval())
    quantize_dynamic_int8(fp32, int8)
    return fp32, int8


def train_unlabelled(
    directories: Sequence[Path],
    out: Path,
    prof: Profile,
    run_dir: Path,
    holdout: Sequence[Path] = (),
    false_alarm_rate: float = 0.01,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train, calibrate and write an anomaly bundle from unlabelled windows; returns its metrics."""
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(prof.seed)
    p = prepare(directories, prof, run_dir, echo, unlabelled=True)
    cfg = _config(p, prof)
    model, decoder, heads = SLM(cfg), None, None
    decoder = Decoder(model)
    heads = PretrainHeads(model)
    echo(f"self-supervised: masked sensor steps and log pieces + [CLS] reconstruction, {prof.student_steps} steps")
    box = nn.ModuleDict({"student": model, "decoder": decoder, "heads": heads})
    fit_cfg = FitConfig(
        steps=prof.student_steps, batch=prof.student_batch, lr=prof.student_lr, ckpt_every=max(25, prof.student_steps // 10)
    )
    fit(
        "unlabelled",
        box,
        _loss(model, decoder, heads, p, prof.seed),
        len(p.train),
        fit_cfg,
        run_dir,
        prof.seed,
        progress=progress,
    )
    model.eval()
    # Calibrate on held-out assets' windows: first on the FP32 model, then exactly on the INT8 graph.
    val = p.val_features
    log_threshold = float(np.quantile(np.log(_errors(model, decoder, val) + 1e-12), 1.0 - false_alarm_rate))
    _, int8 = _export(model, decoder, log_threshold, run_dir)
    graph = _graph_log_errors(int8, val, log_threshold)
    log_threshold = float(np.quantile(graph, 1.0 - false_alarm_rate))
    fp32, int8 = _export(model, decoder, log_threshold, run_dir)
    flagged = float((_graph_log_errors(int8, val, log_threshold) > log_threshold).mean())
    echo(f"calibrated on {len(val.sensors):,} held-out normal windows: false-alarm rate {flagged:.4f} (asked {false_alarm_rate})")
    config = {
        "spec": p.spec.to_dict(),
        "features": p.features.to_dict(),
        "model": cfg.to_dict(),
        "has_ttf": False,
        "mode": "unlabelled",
        "anomaly": {"false_alarm_rate": false_alarm_rate, "log_threshold": log_threshold, "steepness": STEEPNESS},
        "profile": prof.to_dict(),
        "training": p.facts,
    }
    validation = {
        "windows": len(val.sensors),
        "false_alarm_rate": flagged,
        "params": model.num_params() + sum(x.numel() for x in decoder.parameters()),
        "onnx_bytes": int8.stat().st_size,
        "fp32_onnx_bytes": fp32.stat().st_size,
    }
    return _write(out, p, int8, config, validation, holdout, echo)


def _config(p: Prepared, prof: Profile) -> Any:
    from models.config import ModelConfig

    return ModelConfig(
        vocab_size=len(p.full_ids),
        sensor_features=p.train.sensors.shape[-1],
        sensor_tokens=p.spec.steps,
        log_tokens=p.features.log_tokens,
        n_classes=2,
        d_model=prof.d_model,
        head_dim=prof.head_dim,
        heads=(prof.d_model // prof.head_dim,) * prof.n_layer,
        ffn=(prof.ffn_mult * prof.d_model,) * prof.n_layer,
    )


def _write(
    out: Path,
    p: Prepared,
    graph: Path,
    config: dict[str, Any],
    validation: dict[str, Any],
    holdout: Sequence[Path],
    echo: Callable[[str], None],
) -> dict[str, Any]:
    out = Path(out)
    assemble(out, graph, p.tokenizer_json, p.normaliser.to_dict(), ("normal", ANOMALY), config)
    bundle = Bundle.load(out)
    metrics: dict[str, Any] = {"model_version": bundle.version, "mode": "unlabelled", "validation": validation}
    metrics["baselines"] = p.facts.get("baselines")
    if holdout:
        echo(f"evaluating the bundle on {len(holdout)} held-out dataset(s)")
        metrics["holdout"] = evaluate(bundle, holdout, baseline_dirs=[Path(d) for d in p.facts["datasets"]])  # type: ignore[attr-defined]
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out / "report.md").write_text(_report(bundle, metrics, config))
    write_manifest(out)
    return metrics


def _report(bundle: Bundle, metrics: dict[str, Any], config: dict[str, Any]) -> str:
    v, held = metrics["validation"], metrics.get("holdout") or {}
    facts, prof = config["training"], config["profile"]
    lines = [
        f"# Anomaly bundle: {bundle.version}",
        "",
        f"Trained without labels on {facts['train_windows']:,} windows of {len(facts['datasets'])} dataset(s); "
        f"calibrated on {v['windows']:,} windows of held-out assets to a false-alarm rate of "
        f"{config['anomaly']['false_alarm_rate']} (measured on the INT8 graph: {v['false_alarm_rate']:.4f}). "
        f"{v['params']:,} parameters, INT8 graph {v['onnx_bytes'] / 1e6:.2f} MB.",
        "",
    ]
    if held:
        lines += [
            "## Held-out datasets (through the runtime)",
            "",
            f"Every labelled fault counts as `anomaly`. F1 {held['per_class'].get(ANOMALY, {}).get('f1')}, "
            f"anomaly AUROC {held['anomaly_auroc']}, {held['windows']:,} windows.",
            "",
            "| detector | anomaly AUROC |",
            "|---|---:|",
            f"| SLM (reconstruction error) | {held['anomaly_auroc']} |",
            *[
                f"| {name.replace('_', ' ')} (same windows) | {row.get('anomaly_auroc')} |"
                for name, row in (held.get("baselines") or {}).items()
                if "anomaly_auroc" in row
            ],
            "",
        ]
    lines += [
        "## Reproduce",
        "",
        "```",
        f"forewarn model train {' '.join(Path(d).name for d in facts['datasets'])} --unlabelled --out BUNDLE "
        f"--profile {prof['name']} --seed {prof['seed']}{overrides(prof)} "
        f"--false-alarm-rate {config['anomaly']['false_alarm_rate']}",
        "```",
        "",
    ]
    return "\n".join(lines)
