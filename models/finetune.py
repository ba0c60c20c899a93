"""`forewarn model train DIR... --from BUNDLE`: fine-tune a site's bundle on new labelled data.

A site that runs a bundle collects what training from scratch never had: its own machines'
history and its operators' verdicts on the alerts (`forewarn alerts export-labels`, stream.labels:
confirmed faults as fault episodes, false alarms as normal). Fine-tuning keeps everything that
makes the bundle's inputs mean what they meant:

- the window spec, the healthy baseline per asset type (feature normalisation) and the trimmed
  vocabulary are the bundle's, unchanged: the new data is featurised exactly as the gateway
  featurises it;
- the FP32 student (``student.npz``, written into every labelled bundle since fine-tuning
  exists) is restored and trained further, supervised, at a low learning rate, with the word
  embeddings frozen as in the teacher; a fault class the new labels add gets a new row of the
  class head (its bias starts at the lowest of the others: the class starts unlikely);
- then the usual path: FP32 export, INT8 (the base bundle's kind of quantization, static
  calibrated on the new windows), bundle, evaluation, report.

Fine-tuning cannot give the student new inputs: data that shares no channel with the bundle is
refused (train a new bundle instead), and a declared channel the bundle has no input for is named.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from forewarn.contracts import NORMAL
from models.bundle import bundle_bytes
from models.config import ModelConfig
from models.data import load_tables, window_channels
from models.derived import running
from models.errors import TrainingError
from models.export import quantize_dynamic_int8, quantize_static_int8
from models.features import Features
from models.model import SLM, STUDENT_WEIGHTS, load_weights
from models.pipeline import Pipeline
from models.prepare import (
    Prepared,
    _featurise,
    absorb_references,
    channel_coverage,
    fault_modes,
    label_map,
    limit_episodes,
    split,
    visible_against_type,
)
from models.profiles import Profile
from models.report import overrides
from models.runtime import Bundle
from models.train import FitConfig, class_weights, fit, supervised_loss

Echo = Callable[[str], None]


def load_base(path: Path) -> tuple[Bundle, SLM]:
    """The base bundle and its FP32 student; TrainingError when the bundle cannot be fine-tuned."""
    bundle = Bundle.load(path)
    if bundle.config.get("mode") == "unlabelled":
        raise TrainingError(
            f"bundle {path} ({bundle.version}) is an anomaly bundle trained without labels: --from needs a labelled "
            "bundle; train one on the labelled data with `forewarn model train DIR...`"
        )
    weights = bundle.path / STUDENT_WEIGHTS
    if not weights.is_file():
        raise TrainingError(
            f"bundle {path} ({bundle.version}) holds no FP32 student ({STUDENT_WEIGHTS}): it was written before "
            "fine-tuning existed and its INT8 graph cannot be trained further; retrain it with `forewarn model train` "
            "once, and fine-tune that bundle from then on"
        )
    try:
        return bundle, load_weights(ModelConfig.from_dict(bundle.model_config), weights)
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise TrainingError(f"bundle {path}: {STUDENT_WEIGHTS} does not fit the bundle's model config ({exc})") from exc


def check_channels(bundle: Bundle, directories: Sequence[Path], echo: Echo) -> None:
    """Refuse data whose channels the bundle does not read at all; name the ones it cannot read and the ones it lacks.

    A channel the data lacks is masked as absent, as the base already does for asset types without
    it (a pump has no gearbox mesh band). A channel the bundle has no input for cannot be added by
    fine-tuning: it is named, and a plant that shares no channel with the bundle is refused.
    """
    declared = window_channels(directories)
    needed = bundle.spec.channels
    known = [c for c in declared if c in needed]
    if not known:
        raise TrainingError(
            f"the datasets' channels ({', '.join(declared) or 'none'}) are none of the bundle's ({', '.join(needed)}): "
            "fine-tuning keeps the bundle's inputs and cannot learn new ones; train a new bundle for this channel set"
        )
    extra = [c for c in declared if c not in needed]
    if extra:
        echo(f"warning: the bundle has no input for {', '.join(extra)}: fine-tuning cannot add one (train a new bundle)")
    missing = [c for c in needed if c not in declared]
    if missing:
        echo(f"not declared by the datasets, read as absent: {', '.join(missing)}")


def grow_head(model: SLM, n_classes: int, seed: int) -> SLM:
    """The model with its class head widened to ``n_classes`` rows: old rows kept, new rows small and unlikely."""
    old = model.head_class
    if n_classes == old.out_features:
        return model
    grown = SLM(model.cfg.with_(n_classes=n_classes))
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("head_class.")}
    grown.load_state_dict(state, strict=False)
    torch.manual_seed(seed)
    with torch.no_grad():
        nn.init.normal_(grown.head_class.weight, std=0.02)
        grown.head_class.weight[: old.out_features] = old.weight
        grown.head_class.bias[: old.out_features] = old.bias
        grown.head_class.bias[old.out_features :] = old.bias.min()
    return grown.eval()


def prepare_from(bundle: Bundle, directories: Sequence[Path], prof: Profile, run_dir: Path, echo: Echo) -> Prepared:
    """Windows of the new data cut, split and featurised with the bundle's own spec, baseline and vocabulary."""
    check_channels(bundle, directories, echo)
    spec, normaliser = bundle.spec, bundle.normaliser
    table = load_tables(directories, spec, run_dir / "cache", every=prof.train_every)
    if len(table) == 0:
        raise TrainingError(f"no complete windows of {spec.length_s:g} s in {', '.join(map(str, directories))}")
    few_shot = None
    if prof.episodes_per_fault > 0:
        table, few_shot = limit_episodes(table, prof.episodes_per_fault, prof.seed)
    base = bundle.labels
    added = tuple(label for label in label_map(set(table.labels)) if label not in base)
    labels = (*base, *added)
    echo(
        f"fine-tuning {bundle.version}: {len(table):,} windows from {len(directories)} dataset(s)"
        + (f"; new classes: {', '.join(added)}" if added else "")
    )
    train_idx, val_idx, how = split(table, prof.val_fraction, prof.seed, spec.length_s)
    ran = running(spec.channels, table.stats, table.counts, spec.running_channel)
    normal = np.array([x == NORMAL for x in table.labels])
    train_idx = train_idx[ran[train_idx] | normal[train_idx]]
    rng = np.random.default_rng(prof.seed)
    if len(train_idx) > prof.max_windows:
        train_idx = np.sort(rng.choice(train_idx, prof.max_windows, replace=False))
    train_t, val_t = table.take(train_idx), table.take(val_idx)
    y_train = np.array([labels.index(x) for x in train_t.labels])
    visible = visible_against_type(train_t, spec, normaliser, prof.visible_z)
    train_t, _ = absorb_references(train_t, spec, prof.absorbed_reference, rng, visible)
    featuriser = bundle.featuriser()
    key = hashlib.sha256(json.dumps([bundle.version, table.sources, prof.to_dict(), labels]).encode()).hexdigest()[:16]
    train_a, train_f = _featurise(featuriser, train_t, labels, run_dir / f"finetune-train-{key}.npz")
    val_a, val_f = _featurise(featuriser, val_t, labels, run_dir / f"finetune-val-{key}.npz")
    echo(f"split {how}: {len(train_a):,} training, {len(val_a):,} validation windows")
    modes = fault_modes(table, labels)
    for asset_type, faults in (bundle.config.get("fault_modes") or {}).items():
        merged = set(faults) | set(modes.get(asset_type, []))
        modes[asset_type] = [label for label in labels if label in merged]
    facts: dict[str, object] = {
        "datasets": table.sources,
        "windows": len(table),
        "train_windows": len(train_a),
        "val_windows": len(val_a),
        "split": how,
        "class_counts": {label: int((y_train == i).sum()) for i, label in enumerate(labels)},
        "vocabulary": bundle.model_config["vocab_size"],
        "channel_coverage": channel_coverage(spec.channels, table.counts),
        "added_classes": list(added),
    }
    if few_shot is not None:
        facts["episodes_per_fault"] = few_shot
    return Prepared(
        spec=spec,
        features=bundle.features,
        labels=labels,
        normaliser=normaliser,
        tokenizer_json=(bundle.path / "tokenizer.json").read_text(),
        full_ids=np.zeros(0, dtype=np.int64),  # no teacher: nothing maps to MiniLM's vocabulary
        train=train_a,
        val=val_a,
        val_features=val_f,
        train_features=train_f,
        val_running=running(spec.channels, val_t.stats, val_t.counts, spec.running_channel),
        val_truths=[[labels.index(t) for t in ts if t in labels] for ts in val_t.truths],
        facts=facts,
        fault_modes=modes,
    )


def finetune(
    directories: Sequence[Path],
    base_path: Path,
    out: Path,
    prof: Profile,
    run_dir: Path,
    holdout: Sequence[Path] = (),
    progress: bool = True,
    echo: Echo = print,
) -> dict[str, Any]:
    """Fine-tune ``base_path``'s student on ``directories`` into a new bundle at ``out``; returns its metrics."""
    base, student = load_base(base_path)
    pipe = Pipeline(prof, run_dir, progress, echo)
    pipe.claim(directories)
    claimed = run_dir / "base.json"
    if claimed.exists() and json.loads(claimed.read_text()).get("version") != base.version:
        raise TrainingError(f"run directory {run_dir} holds a fine-tuning of another bundle: pass a fresh --run-dir")
    claimed.write_text(json.dumps({"version": base.version, "path": str(base.path.resolve())}))
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    p = prepare_from(base, directories, prof, run_dir, echo)
    model = grow_head(student, len(p.labels), prof.seed)
    start = pipe.measure("base", p, pipe.export("base", model), model.num_params())
    echo(f"fine-tuning the student: {prof.finetune_steps} steps at lr {prof.finetune_lr:g}, word embeddings frozen")
    data = p.train
    loss = supervised_loss(model, data, class_weights(data.y, len(p.labels)))
    cfg = FitConfig(
        steps=prof.finetune_steps, batch=prof.student_batch, lr=prof.finetune_lr, ckpt_every=max(25, prof.finetune_steps // 5)
    )
    fit("finetune", model, loss, len(data), cfg, run_dir, prof.seed, frozen=("tok.",), progress=progress)
    model.eval()
    fp32 = pipe.export("final_fp32", model)
    fp32_rec = pipe.measure("final_fp32", p, fp32, model.num_params())
    static = base.config.get("quantization") == "static"
    graph = run_dir / ("int8_static.onnx" if static else "int8_dynamic.onnx")
    if not graph.exists():
        if static:
            calib = np.random.default_rng(prof.seed).choice(len(data), size=min(512, len(data)), replace=False)
            f = p.train_features
            quantize_static_int8(fp32, graph, Features(f.sensors[calib], f.tokens[calib], f.line_index[calib]))
        else:
            quantize_dynamic_int8(fp32, graph)
    name = graph.stem
    rec = pipe.measure(name, p, graph, model.num_params())
    decisions = {
        "quantization": f"{'static' if static else 'dynamic'}, as the base bundle",
        "fine_tuning": f"validation macro-F1 {rec['macro_f1']:.4f} (INT8) vs {start['macro_f1']:.4f} before fine-tuning",
    }
    config = copy.deepcopy(base.config)
    config.update(
        model=model.cfg.to_dict(),
        fault_modes=p.fault_modes,
        quantization="static" if static else "dynamic",
        profile=prof.to_dict(),
        training=p.facts,
        decisions=decisions,
        finetuned_from={"version": base.version, "labels": list(base.labels), "datasets": p.facts["datasets"]},
    )
    return pipe.write(out, p, graph, config, [start, fp32_rec, rec], holdout, student=model, report=write_finetune_report)


def write_finetune_report(out: Path, bundle: Bundle, metrics: dict[str, Any], config: dict[str, Any]) -> None:
    """A short report: what was fine-tuned from what, on what, and how validation moved."""
    facts, prof, base = config["training"], config["profile"], config["finetuned_from"]
    held = metrics.get("holdout") or {}
    stages = {s["name"]: s for s in metrics["stages"]}
    lines = [
        f"# Fine-tuned bundle: {bundle.version}",
        "",
        f"Fine-tuned from `{base['version']}` on {len(facts['datasets'])} dataset(s): {facts['train_windows']:,} training "
        f"and {facts['val_windows']:,} validation windows (split {facts['split']}), {prof['finetune_steps']} steps at "
        f"lr {prof['finetune_lr']:g}. The window, healthy baseline and vocabulary are the base bundle's"
        + (f"; classes added: {', '.join(facts['added_classes'])}." if facts["added_classes"] else "."),
        "",
        "| stage | macro-F1 (validation) | anomaly AUROC | ms/window b1 |",
        "|---|---:|---:|---:|",
        *[f"| {s['name']} | {s['macro_f1']:.4f} | {s['anomaly_auroc']} | {s['latency_ms_b1']:.3f} |" for s in stages.values()],
        "",
        f"Bundle size {bundle_bytes(out) / 1e6:.2f} MB.",
        "",
    ]
    if held:
        lines += [f"Held-out datasets: macro-F1 {held['macro_f1']:.4f}, anomaly AUROC {held['anomaly_auroc']}.", ""]
    lines += [
        "## Reproduce",
        "",
        "```",
        f"forewarn model train {' '.join(Path(d).name for d in facts['datasets'])} --from BASE --out BUNDLE "
        f"--profile {prof['name']} --seed {prof['seed']}{overrides(prof)}",
        "```",
        "",
    ]
    (out / "report.md").write_text("\n".join(lines))
