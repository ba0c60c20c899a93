"""Self-supervised pretraining of the student on unlabeled windows: masked log pieces, masked sensor steps.

15% of the log word pieces become [MASK] and are predicted through the tied token embedding
(BERT's masked language modelling); 15% of the sensor steps are zeroed and their features
regressed from the step's final hidden state. Labels are never read, so any window of a
plant's history can teach the student what normal sensor/log structure looks like before
fine-tuning and distillation. The pipeline measures whether it helps and says so in the report.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.model import SLM
from models.tokenizer import MASK, PAD, SEP
from models.train import Arrays, LossFn


class PretrainHeads(nn.Module):
    """Training-only heads: sensor reconstruction and the MLM output bias (weights tied to the embedding)."""

    def __init__(self, model: SLM) -> None:
        super().__init__()
        self.sensor_out = nn.Linear(model.cfg.d_model, model.cfg.sensor_features)
        self.mlm_bias = nn.Parameter(torch.zeros(model.cfg.vocab_size))


def ssl_loss(model: SLM, heads: PretrainHeads, data: Arrays, seed: int, mask_p: float = 0.15) -> LossFn:
    S = model.cfg.sensor_tokens

    def loss(index: np.ndarray) -> tuple[torch.Tensor, dict[str, float]]:
        sensors, tokens, _, _ = data.batch(index)
        g = torch.Generator().manual_seed(seed * 1_000_003 + int(index.sum()))
        steps = torch.rand(sensors.shape[:2], generator=g) < mask_p  # (B, S)
        maskable = (tokens != PAD) & (tokens != SEP)
        pieces = (torch.rand(tokens.shape, generator=g) < mask_p) & maskable  # (B, L)
        out = model(sensors.masked_fill(steps[..., None], 0.0), torch.where(pieces, torch.full_like(tokens, MASK), tokens))
        h = out.hidden[-1]  # (B, T, d)
        terms: dict[str, torch.Tensor] = {}
        if steps.any():
            terms["sensor"] = F.mse_loss(heads.sensor_out(h[:, 1 : 1 + S])[steps], sensors[steps])
        if pieces.any():
            logits = h[:, 1 + S :][pieces] @ model.tok.weight.T + heads.mlm_bias  # (masked, V)
            terms["mlm"] = F.cross_entropy(logits, tokens[pieces])
        total = sum(terms.values()) if terms else (h.sum() * 0.0)
        return total, {k: float(v.detach()) for k, v in terms.items()}  # type: ignore[return-value]

    return loss
