"""`forewarn model train-plant`: the plant tier's bigger model, trained on the inputs an edge bundle builds.

The cascade (models.cascade) sends the plant tier the model inputs the gateway already built,
so the plant model has to read exactly those: the edge bundle's window spec, features,
tokenizer, healthy baseline and labels (``models.cascade.inputs_id``). It cannot come out of
`forewarn model train`, which derives its own vocabulary and baseline from its data; it is
trained here instead, on windows featurised by the edge bundle's own ``Featuriser``:

    featurise   every ``every``-th window of the DIRECTORIES, cut by the edge bundle's spec
    fit         a wider and deeper SLM (models.model) with the supervised loss the teacher uses,
                from scratch: class-weighted cross-entropy, anomaly and time-to-failure heads
    export      ONNX (same inputs and outputs as every bundle), dynamic INT8 so that the bundle
                stays a few MB in the repository (the plant tier is not short of time, the
                repository is short of room)
    bundle      the edge bundle's tokenizer, baseline and labels copied byte for byte, its config
                with this model's shape; ``config.tier = "plant"``

The featurised windows are cached in the run directory, so several seeds share them.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.bundle import assemble, write_manifest
from models.cascade import INPUT_FILES, inputs_id
from models.config import ModelConfig
from models.data import labelled_windows
from models.errors import TrainingError
from models.export import export_onnx, quantize_dynamic_int8
from models.model import SLM
from models.runtime import Bundle
from models.train import Arrays, FitConfig, class_weights, fit, supervised_loss

Echo = Callable[[str], None]
CHUNK = 512


def featurise(edge: Bundle, directories: Sequence[Path], every: int, echo: Echo = print) -> Arrays:
    """The windows of ``directories`` as the edge bundle's model inputs, with their labels (unknown faults: skipped)."""
    featuriser = edge.featuriser()
    labels = {label: i for i, label in enumerate(edge.labels)}
    sensors: list[np.ndarray] = []
    tokens: list[np.ndarray] = []
    ys: list[int] = []
    ttfs: list[float] = []
    skipped = 0
    for directory in directories:
        chunk = []
        for window, label, hours, _ in labelled_windows(Path(directory), edge.spec, every=every):
            if label not in labels:
                skipped += 1
                continue
            chunk.append(window)
            ys.append(labels[label])
            ttfs.append(np.nan if hours is None else float(np.log1p(max(hours, 0.0))))
            if len(chunk) == CHUNK:
                _add(featuriser(chunk), sensors, tokens)
                chunk = []
        if chunk:
            _add(featuriser(chunk), sensors, tokens)
        echo(f"  {directory}: {len(ys):,} windows so far")
    if not ys:
        raise TrainingError(f"no labelled windows in {', '.join(map(str, directories))}")
    if skipped:
        echo(f"  {skipped:,} windows of faults the edge bundle does not know left out")
    return Arrays(
        np.concatenate(sensors).astype(np.float32),
        np.concatenate(tokens).astype(np.int64),
        np.asarray(ys, dtype=np.int64),
        np.asarray(ttfs, dtype=np.float32),
    )


def _add(features: Any, sensors: list[np.ndarray], tokens: list[np.ndarray]) -> None:
    sensors.append(features.sensors.astype(np.float32))
    tokens.append(features.tokens.astype(np.int64))


def plant_config(edge: Bundle, d_model: int, layers: int, ffn_mult: int, head_dim: int = 32) -> ModelConfig:
    """The plant model's shape: the edge bundle's inputs and classes, its own width and depth."""
    m = edge.model_config
    if d_model % head_dim:
        raise TrainingError(f"d_model {d_model} is not a multiple of head_dim {head_dim}")
    return ModelConfig(
        vocab_size=int(m["vocab_size"]),
        sensor_features=int(m["sensor_features"]),
        sensor_tokens=int(m["sensor_tokens"]),
        log_tokens=int(m["log_tokens"]),
        n_classes=len(edge.labels),
        d_model=d_model,
        head_dim=head_dim,
        heads=(d_model // head_dim,) * layers,
        ffn=(ffn_mult * d_model,) * layers,
        cls_id=int(m.get("cls_id", 2)),
    )


def _cached(edge: Bundle, directories: Sequence[Path], every: int, run_dir: Path, echo: Echo) -> Arrays:
    key = {"edge": edge.version, "datasets": [str(Path(d).resolve()) for d in directories], "every": every}
    path, meta = run_dir / "arrays.npz", run_dir / "arrays.json"
    if path.exists() and meta.exists() and json.loads(meta.read_text()) == key:
        with np.load(path) as z:
            return Arrays(z["sensors"], z["tokens"], z["y"], z["ttf"])
    echo(f"featurising with {edge.version}'s inputs (every {every} windows)")
    data = featurise(edge, directories, every, echo)
    run_dir.mkdir(parents=True, exist_ok=True)
    np.savez(path, sensors=data.sensors, tokens=data.tokens, y=data.y, ttf=data.ttf)
    meta.write_text(json.dumps(key))
    return data


def train_plant(
    edge_path: Path,
    directories: Sequence[Path],
    out: Path,
    run_dir: Path,
    seed: int = 0,
    d_model: int = 256,
    layers: int = 3,
    ffn_mult: int = 2,
    steps: int = 1500,
    every: int = 2,
    echo: Echo = print,
    progress: bool = True,
) -> dict[str, Any]:
    """Train, export and bundle a plant-tier model for the edge bundle at ``edge_path``; returns its metrics.json."""
    edge = Bundle.load(edge_path)
    data = _cached(edge, directories, every, run_dir, echo)
    cfg = plant_config(edge, d_model, layers, ffn_mult)
    torch.manual_seed(seed)
    model = SLM(cfg)
    echo(f"plant model: d_model {d_model}, {layers} layers, {model.num_params():,} parameters, {len(data):,} windows")
    loss = supervised_loss(model, data, class_weights(data.y, len(edge.labels)))
    seed_dir = run_dir / f"s{seed}"
    history = fit("plant", model, loss, len(data), FitConfig(steps=steps, batch=64, lr=1e-3), seed_dir, seed, progress=progress)
    fp32 = export_onnx(model.eval(), seed_dir / "plant_fp32.onnx")
    graph = quantize_dynamic_int8(fp32, seed_dir / "plant_int8.onnx")
    config = dict(edge.config)
    config.update(
        model=cfg.to_dict(),
        quantization="dynamic",
        tier="plant",
        plant={
            "edge_model_version": edge.version,
            "inputs_id": inputs_id(edge.manifest, edge.config),
            "datasets": [str(d) for d in directories],
            "every": every,
            "windows": len(data),
            "seed": seed,
            "steps": steps,
            "params": model.num_params(),
        },
    )
    config.pop("decisions", None)
    assemble(out, graph, (edge.path / "tokenizer.json").read_text(), {}, edge.labels, config)
    for name in INPUT_FILES:  # byte for byte: the inputs_id hashes these files
        shutil.copyfile(edge.path / name, out / name)
    metrics = {"tier": "plant", "training": config["plant"], "loss": history["loss"][-5:]}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    manifest = write_manifest(out)
    metrics["model_version"] = manifest["version"]
    return metrics


__all__ = ["featurise", "plant_config", "train_plant"]
