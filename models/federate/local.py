"""What a site's training node does each round, and the bundle a federation ends in; no Flower here.

A site reads its own datasets with the base bundle's window spec, healthy baseline and
vocabulary (so its windows mean what the gateways' windows mean), and holds some of its assets
out as a *canary*: windows no training step ever sees. Each round it

- trains the global model it was sent on its training windows for a few steps (FedProx adds
  mu/2 |w - w_global|^2, which keeps a site with unusual data from pulling the model far), and
  sends the weights back;
- scores the aggregated model on its canary against the model it runs now, and adopts it only
  if the canary loss is not worse: a round that would make the site worse leaves it as it was.

The class set is the base bundle's: a federation shares one head, so a label the bundle does
not know is left out of the site's windows (and counted).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.bundle import assemble, write_manifest
from models.config import ModelConfig
from models.data import load_tables
from models.errors import TrainingError
from models.export import export_onnx, quantize_dynamic_int8
from models.model import SLM, STUDENT_WEIGHTS, load_weights, save_weights
from models.prepare import _featurise, split
from models.runtime import Bundle
from models.train import Arrays, class_weights, supervised_loss, supervised_terms

Echo = Callable[[str], None]
Weights = list[np.ndarray]


def load_student(path: Path) -> tuple[Bundle, SLM]:
    """The base bundle and its FP32 student (TrainingError when it keeps none to train)."""
    bundle = Bundle.load(path)
    weights = bundle.path / STUDENT_WEIGHTS
    if not weights.is_file():
        raise TrainingError(
            f"bundle {path} ({bundle.version}) holds no FP32 student ({STUDENT_WEIGHTS}); federated fine-tuning "
            "starts from one: retrain the bundle with `forewarn model train` first"
        )
    return bundle, load_weights(ModelConfig.from_dict(bundle.model_config), weights)


def get_weights(model: SLM) -> Weights:
    """The model's state as a list of float32 arrays, in state-dict order (what goes over the wire)."""
    return [v.detach().cpu().float().numpy().copy() for v in model.state_dict().values()]


def set_weights(model: SLM, weights: Sequence[np.ndarray]) -> SLM:
    """Load ``weights`` (state-dict order) into ``model``; TrainingError when they do not fit it."""
    keys = list(model.state_dict())
    shapes = [tuple(v.shape) for v in model.state_dict().values()]
    if len(weights) != len(keys) or any(tuple(w.shape) != s for w, s in zip(weights, shapes, strict=True)):
        raise TrainingError("the weights received do not fit this site's student: is every party on the same base bundle?")
    model.load_state_dict({k: torch.from_numpy(np.asarray(w, dtype=np.float32)) for k, w in zip(keys, weights, strict=True)})
    return model.eval()


def weights_bytes(weights: Sequence[np.ndarray]) -> int:
    return int(sum(w.nbytes for w in weights))


@dataclass
class SiteData:
    """A site's windows, featurised as the base bundle featurises them: training and canary."""

    train: Arrays
    canary: Arrays
    facts: dict[str, Any] = field(default_factory=dict)


def site_data(
    bundle: Bundle, directories: Sequence[Path], cache: Path, seed: int, canary_fraction: float = 0.2, every: int = 2
) -> SiteData:
    """Cut the site's datasets with the bundle's spec, hold whole assets out as the canary, featurise."""
    spec = bundle.spec
    table = load_tables(directories, spec, cache / "windows", every=every)
    known = np.array([label in bundle.labels for label in table.labels], dtype=bool)
    unknown = sorted({label for label in table.labels if label not in bundle.labels})
    table = table.take(np.flatnonzero(known))
    if len(table) < 4:
        raise TrainingError(f"too few windows with the bundle's labels in {', '.join(map(str, directories))}")
    train_idx, canary_idx, how = split(table, canary_fraction, seed, spec.length_s)
    if len(canary_idx) == 0 or len(train_idx) == 0:
        raise TrainingError("the site's data cannot be split into training and canary windows: add assets or time")
    featuriser = bundle.featuriser()
    cache.mkdir(parents=True, exist_ok=True)
    key = f"{bundle.version}-{seed}-{canary_fraction}-{every}"
    train, _ = _featurise(featuriser, table.take(train_idx), bundle.labels, cache / f"federate-train-{key}.npz")
    canary, _ = _featurise(featuriser, table.take(canary_idx), bundle.labels, cache / f"federate-canary-{key}.npz")
    facts = {
        "datasets": table.sources,
        "train_windows": len(train),
        "canary_windows": len(canary),
        "canary_split": how,
        "left_out_labels": {label: int(sum(x == label for x in table.labels)) for label in unknown},
    }
    return SiteData(train, canary, facts)


@torch.no_grad()
def canary_loss(model: SLM, data: Arrays, batch: int = 256) -> float:
    """The supervised loss (class, anomaly, time to failure) over the canary windows, unweighted: lower is better."""
    model.eval()
    weight = torch.ones(model.cfg.n_classes)
    total, n = 0.0, 0
    for at in range(0, len(data), batch):
        index = np.arange(at, min(at + batch, len(data)))
        sensors, tokens, y, ttf = data.batch(index)
        terms = supervised_terms(model(sensors, tokens), y, ttf, weight, smoothing=0.0)
        total += float(sum(terms.values())) * len(index)
        n += len(index)
    return total / max(n, 1)


@dataclass(frozen=True)
class LocalConfig:
    """One round of local training."""

    steps: int = 20
    batch: int = 32
    lr: float = 3e-4
    proximal_mu: float = 0.0
    """FedProx: weight of mu/2 |w - w_global|^2; 0 is FedAvg's plain local training."""
    clip: float = 1.0


def local_fit(model: SLM, data: Arrays, cfg: LocalConfig, seed: int) -> float:
    """Train ``model`` in place from the global weights it holds; returns the mean loss of the steps.

    Word embeddings stay frozen, as in every fine-tuning of the student (unseen log phrasings keep
    their meaning); batches are drawn from ``default_rng((seed, step))``, so a round is reproducible.
    """
    anchor = [p.detach().clone() for p in model.parameters()]
    for name, p in model.named_parameters():
        p.requires_grad_(not name.startswith("tok."))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    loss_fn = supervised_loss(model, data, class_weights(data.y, model.cfg.n_classes))
    model.train()
    losses = []
    for step in range(cfg.steps):
        index = np.sort(np.random.default_rng((seed, step)).choice(len(data), size=min(cfg.batch, len(data)), replace=False))
        loss, _ = loss_fn(index)
        if cfg.proximal_mu > 0:
            drift = sum(((p - a) ** 2).sum() for p, a in zip(model.parameters(), anchor, strict=True) if p.requires_grad)
            loss = loss + 0.5 * cfg.proximal_mu * drift
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(params, cfg.clip)
        opt.step()
        losses.append(float(loss.detach()))
    model.eval()
    return float(np.mean(losses)) if losses else 0.0


@dataclass
class Decision:
    """What a site did with an aggregated model: adopted it, or kept its own because the canary got worse."""

    adopted: bool
    canary_before: float
    canary_global: float

    def describe(self, site: str, round_: int) -> str:
        verb = "adopts the global model" if self.adopted else "keeps its current model: the global model is worse on its canary"
        return f"site {site} round {round_}: {verb} (canary loss {self.canary_global:.4f} vs {self.canary_before:.4f} now)"


class SiteState:
    """A site's current model and its data: what the Flower client delegates to."""

    def __init__(self, name: str, base: Path, directories: Sequence[Path], work: Path, seed: int = 0, echo: Echo = print) -> None:
        self.name, self.seed, self.echo = name, seed, echo
        torch.manual_seed(seed)
        self.bundle, self.current = load_student(base)
        self.data = site_data(self.bundle, directories, work, seed)
        self.current_loss = canary_loss(self.current, self.data.canary)
        self.decisions: list[Decision] = []
        echo(
            f"site {name}: {self.data.facts['train_windows']} training and {self.data.facts['canary_windows']} canary windows "
            f"({self.data.facts['canary_split']}); base {self.bundle.version}, canary loss {self.current_loss:.4f}"
        )

    def train(self, weights: Sequence[np.ndarray], cfg: LocalConfig, round_: int) -> tuple[Weights, float]:
        """The global weights trained on this site's windows: what the site sends back."""
        model = set_weights(copy.deepcopy(self.current), weights)
        loss = local_fit(model, self.data.train, cfg, seed=self.seed * 100_003 + round_)
        return get_weights(model), loss

    def consider(self, weights: Sequence[np.ndarray], round_: int) -> Decision:
        """Adopt the aggregated model if the canary says it is not worse than the current one; say which."""
        candidate = set_weights(copy.deepcopy(self.current), weights)
        loss = canary_loss(candidate, self.data.canary)
        decision = Decision(adopted=loss <= self.current_loss, canary_before=self.current_loss, canary_global=loss)
        if decision.adopted:
            self.current, self.current_loss = candidate, loss
        self.decisions.append(decision)
        self.echo(decision.describe(self.name, round_))
        return decision


def write_bundle(base: Bundle, model: SLM, out: Path, work: Path, federation: dict[str, Any]) -> Bundle:
    """The federated student as an ordinary bundle: FP32 export, dynamic INT8, the base's tokenizer,
    baseline, labels and config, plus ``student.npz`` so it can be fine-tuned or federated again.

    Dynamic INT8, not static: static quantization calibrates on windows, and the server holds none.
    """
    work.mkdir(parents=True, exist_ok=True)
    fp32 = export_onnx(model.eval(), work / "federated_fp32.onnx")
    graph = quantize_dynamic_int8(fp32, work / "federated_int8.onnx")
    config = copy.deepcopy(base.config)
    config["model"] = model.cfg.to_dict()
    config["quantization"] = "dynamic"
    config["federated"] = {"from": base.version, **federation}
    decisions = dict(config.get("decisions") or {})
    decisions["quantization"] = "dynamic: the federation server holds no windows to calibrate static INT8 on"
    config["decisions"] = decisions
    out = Path(out)
    assemble(out, graph, (base.path / "tokenizer.json").read_text(), base.normaliser.to_dict(), base.labels, config)
    save_weights(model, out / STUDENT_WEIGHTS)
    bundle = Bundle.load(out)
    metrics = {"model_version": bundle.version, "federated": federation}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    write_manifest(out)
    return Bundle.load(out)
