"""Training: one resumable loop, and the losses of each stage (supervised, distillation).

``fit`` trains any module against any loss over an index range, saving a checkpoint every
``ckpt_every`` steps (model, optimiser, step) and a final one; a rerun resumes from the last
partial checkpoint or returns the final one untouched. Batches are drawn from
``default_rng((seed, step))``, so a resumed run draws the same batches it would have.

Losses (Output from model.SLM):
    supervised   CE(class, weighted, smoothed) + 0.5 BCE(anomaly) + 0.5 SmoothL1(log1p ttf hours, wherever a failure is known)
    distill      (1 - alpha) CE + alpha KL(teacher_T || student_T) T^2 + beta MSE(proj(student), teacher)
                 on the [CLS] and mean-pooled hidden states of matched layers, + the anomaly/ttf terms
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from models.model import SLM, Output

LossFn = Callable[[np.ndarray], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class Arrays:
    """Featurised windows with their targets, student vocabulary ids."""

    sensors: np.ndarray  # (N, S, F) float32
    tokens: np.ndarray  # (N, L) int64
    y: np.ndarray  # (N,) int64, 0 = normal
    ttf: np.ndarray  # (N,) float32 log1p(hours), NaN when unknown

    def __len__(self) -> int:
        return len(self.y)

    def take(self, index: np.ndarray) -> Arrays:
        return Arrays(self.sensors[index], self.tokens[index], self.y[index], self.ttf[index])

    def batch(self, index: np.ndarray, vocab_map: np.ndarray | None = None) -> tuple[torch.Tensor, ...]:
        tokens = self.tokens[index] if vocab_map is None else vocab_map[self.tokens[index]]
        return (
            torch.from_numpy(np.ascontiguousarray(self.sensors[index], dtype=np.float32)),
            torch.from_numpy(np.ascontiguousarray(tokens, dtype=np.int64)),
            torch.from_numpy(self.y[index].astype(np.int64)),
            torch.from_numpy(self.ttf[index].astype(np.float32)),
        )


@dataclass(frozen=True)
class FitConfig:
    steps: int
    batch: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.06
    """Fraction of steps with a linear warm-up; cosine decay to 10% after."""
    ckpt_every: int = 100
    clip: float = 1.0
    fast: tuple[str, ...] = ()
    """Parameter name prefixes trained at fast_mult x lr (new layers on a pretrained body)."""
    fast_mult: float = 10.0


def class_weights(y: np.ndarray, k: int, power: float = 0.5) -> torch.Tensor:
    """Inverse-frequency^power class weights, mean 1 over present classes (macro-F1 cares about rare faults)."""
    counts = np.bincount(y, minlength=k).astype(np.float64)
    w = np.where(counts > 0, (counts.sum() / np.maximum(counts, 1)) ** power, 0.0)
    w = w / w[counts > 0].mean()
    return torch.tensor(w, dtype=torch.float32)


def supervised_terms(
    out: Output, y: torch.Tensor, ttf: torch.Tensor, weight: torch.Tensor, smoothing: float = 0.05
) -> dict[str, torch.Tensor]:
    known = torch.isfinite(ttf)  # every window whose asset's failure is known, healthy ones included
    terms = {
        "ce": F.cross_entropy(out.logits, y, weight=weight, label_smoothing=smoothing),
        "anomaly": 0.5 * F.binary_cross_entropy_with_logits(out.anomaly, (y != 0).float()),
    }
    if known.any():
        terms["ttf"] = 0.5 * F.smooth_l1_loss(out.ttf[known], ttf[known])
    return terms


def pooled(hidden: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """(B, T, d) -> (B, 2, d): the [CLS] state and the mean over valid tokens."""
    v = valid.unsqueeze(-1).float()
    mean = (hidden * v).sum(1) / v.sum(1).clamp(min=1)
    return torch.stack([hidden[:, 0], mean], dim=1)


def layer_map(student_layers: int, teacher_layers: int) -> list[int]:
    """Teacher layer matched by each student layer (1-based hidden index): evenly spaced, last to last."""
    return [round((i + 1) * teacher_layers / student_layers) for i in range(student_layers)]


@dataclass
class TeacherTargets:
    """What the student learns from, computed once: teacher logits and pooled hidden states of matched layers."""

    logits: np.ndarray  # (N, K) float32
    hidden: np.ndarray  # (N, layers, 2, d_teacher) float16


def distill_loss(
    student: SLM,
    proj: nn.ModuleList,
    data: Arrays,
    targets: TeacherTargets,
    weight: torch.Tensor,
    alpha: float,
    beta: float,
    temperature: float,
) -> LossFn:
    def loss(index: np.ndarray) -> tuple[torch.Tensor, dict[str, float]]:
        sensors, tokens, y, ttf = data.batch(index)
        out = student(sensors, tokens)
        terms = supervised_terms(out, y, ttf, weight)
        terms["ce"] = (1 - alpha) * terms["ce"]
        t_logits = torch.from_numpy(targets.logits[index])
        t = temperature
        kl = F.kl_div(F.log_softmax(out.logits / t, -1), F.log_softmax(t_logits / t, -1), log_target=True, reduction="batchmean")
        terms["kd"] = alpha * kl * t * t
        if beta > 0:
            t_hidden = torch.from_numpy(targets.hidden[index].astype(np.float32))  # (B, layers, 2, d_t)
            mse = torch.stack([F.mse_loss(p(pooled(out.hidden[i + 1], out.valid)), t_hidden[:, i]) for i, p in enumerate(proj)])
            terms["hidden"] = beta * mse.mean()
        total = sum(terms.values())
        return total, {k: float(v.detach()) for k, v in terms.items()}  # type: ignore[return-value]

    return loss


def supervised_loss(model: SLM, data: Arrays, weight: torch.Tensor, vocab_map: np.ndarray | None = None) -> LossFn:
    def loss(index: np.ndarray) -> tuple[torch.Tensor, dict[str, float]]:
        sensors, tokens, y, ttf = data.batch(index, vocab_map)
        terms = supervised_terms(model(sensors, tokens), y, ttf, weight)
        total = sum(terms.values())
        return total, {k: float(v.detach()) for k, v in terms.items()}  # type: ignore[return-value]

    return loss


def fit(
    name: str,
    module: nn.Module,
    loss_fn: LossFn,
    n: int,
    cfg: FitConfig,
    run_dir: Path,
    seed: int,
    frozen: tuple[str, ...] = (),
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``module`` for cfg.steps batches of indices into range(n); resumable. Returns the history."""
    run_dir.mkdir(parents=True, exist_ok=True)
    final, partial = run_dir / f"{name}.pt", run_dir / f"{name}.partial.pt"
    if final.exists():
        ckpt = torch.load(final, weights_only=False)
        module.load_state_dict(ckpt["state"])
        return dict(ckpt["history"])
    params = [p for k, p in module.named_parameters() if not any(k.startswith(f) for f in frozen)]
    for k, p in module.named_parameters():
        p.requires_grad_(not any(k.startswith(f) for f in frozen))
    named = [(k, p) for k, p in module.named_parameters() if p.requires_grad]
    groups = []
    for fast in (False, True):
        chosen = [(k, p) for k, p in named if any(k.startswith(f) for f in cfg.fast) == fast]
        mult = cfg.fast_mult if fast else 1.0
        groups += [
            {"params": [p for _, p in chosen if p.dim() >= 2], "weight_decay": cfg.weight_decay, "mult": mult},
            {"params": [p for _, p in chosen if p.dim() < 2], "weight_decay": 0.0, "mult": mult},
        ]
    opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr)
    warm = max(1, int(cfg.warmup * cfg.steps))

    def lr_at(step: int) -> float:
        if step < warm:
            return cfg.lr * (step + 1) / warm
        progress_ = (step - warm) / max(1, cfg.steps - warm)
        return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress_)))

    step = 0
    history: dict[str, Any] = {"loss": [], "fit": asdict(cfg)}
    if partial.exists():
        ckpt = torch.load(partial, weights_only=False)
        module.load_state_dict(ckpt["state"])
        opt.load_state_dict(ckpt["optim"])
        step, history = ckpt["step"], ckpt["history"]
        torch.set_rng_state(ckpt["rng"])
    module.train()
    bar = tqdm(total=cfg.steps, initial=step, desc=name, unit="step", disable=not progress, leave=False, dynamic_ncols=True)
    running: dict[str, float] = {}
    while step < cfg.steps:
        rng = np.random.default_rng((seed, step))
        index = np.sort(rng.choice(n, size=min(cfg.batch, n), replace=False))
        for group in opt.param_groups:
            group["lr"] = lr_at(step) * group["mult"]
        loss, parts = loss_fn(index)
        assert torch.isfinite(loss), f"{name}: loss is {float(loss)} at step {step}"
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        nn.utils.clip_grad_norm_(params, cfg.clip)
        opt.step()
        step += 1
        running = {k: 0.9 * running.get(k, v) + 0.1 * v for k, v in parts.items()}
        bar.update(1)
        bar.set_postfix({k: f"{v:.3f}" for k, v in running.items()}, refresh=False)
        if step % 10 == 0:
            history["loss"].append([step, float(loss.detach())])
        if step % cfg.ckpt_every == 0 and step < cfg.steps:
            torch.save(
                {
                    "state": module.state_dict(),
                    "optim": opt.state_dict(),
                    "step": step,
                    "history": history,
                    "rng": torch.get_rng_state(),
                },
                partial,
            )
    bar.close()
    module.eval()
    torch.save({"state": module.state_dict(), "history": history}, final)
    partial.unlink(missing_ok=True)
    return history


@torch.no_grad()
def infer(model: SLM, data: Arrays, batch: int = 256, vocab_map: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Probabilities (N, K), anomaly (N,), ttf hours (N,) of a torch model, for validation."""
    model.eval()
    probs, anomaly, ttf = [], [], []
    for at in range(0, len(data), batch):
        index = np.arange(at, min(at + batch, len(data)))
        sensors, tokens, _, _ = data.batch(index, vocab_map)
        out = model(sensors, tokens)
        probs.append(F.softmax(out.logits, -1).numpy())
        anomaly.append(torch.sigmoid(out.anomaly).numpy())
        ttf.append(torch.expm1(F.relu(out.ttf)).numpy())
    return {"probabilities": np.concatenate(probs), "anomaly": np.concatenate(anomaly), "ttf_hours": np.concatenate(ttf)}


@torch.no_grad()
def teacher_targets(
    teacher: SLM, data: Arrays, layers: list[int], vocab_map: np.ndarray, batch: int = 128, progress: bool = True
) -> TeacherTargets:
    """Run the teacher once over the training windows: logits and pooled hidden states of ``layers``."""
    teacher.eval()
    logits, hidden = [], []
    for at in tqdm(range(0, len(data), batch), desc="teacher targets", unit="batch", disable=not progress, leave=False):
        index = np.arange(at, min(at + batch, len(data)))
        sensors, tokens, _, _ = data.batch(index, vocab_map)
        out = teacher(sensors, tokens)
        logits.append(out.logits.numpy())
        hidden.append(torch.stack([pooled(out.hidden[i], out.valid) for i in layers], 1).half().numpy())
    return TeacherTargets(np.concatenate(logits), np.concatenate(hidden))
