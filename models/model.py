"""The SLM: a BERT-style (post-LayerNorm) encoder over [CLS] + sensor tokens + log word pieces.

One class serves the teacher (MiniLM-L6's shape, 6 x 384, loaded by ``pretrained.py``) and
the student (a few layers, 128-256 wide). Attention is written with nn.Linear projections,
nanoGPT style, so ONNX dynamic quantization reaches every projection; per-layer head counts
and FFN widths let structured pruning shrink layers unevenly; an FFN matrix may be factorised
to low rank; sensor tokens may attend locally.

Shapes: B batch, S sensor tokens, L log tokens, T = 1 + S + L, d d_model, h heads, k head_dim.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.config import ModelConfig


class SelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig, n_head: int) -> None:
        super().__init__()
        self.n_head, self.head_dim = n_head, cfg.head_dim
        inner = n_head * cfg.head_dim
        self.qkv = nn.Linear(cfg.d_model, 3 * inner)  # q, k, v of every head, in that order
        self.proj = nn.Linear(inner, cfg.d_model)
        self.gate: torch.Tensor | None = None  # (h,) set only while measuring head importance

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, T, _ = x.shape
        h, k = self.n_head, self.head_dim
        q, key, v = self.qkv(x).split(h * k, dim=2)  # (B, T, h*k) each
        q = q.view(B, T, h, k).transpose(1, 2)  # (B, h, T, k)
        key = key.view(B, T, h, k).transpose(1, 2)
        v = v.view(B, T, h, k).transpose(1, 2)
        att = (q @ key.transpose(-2, -1)) * (1.0 / math.sqrt(k)) + bias  # (B, h, T, T)
        att = F.softmax(att, dim=-1)
        y = att @ v  # (B, h, T, k)
        if self.gate is not None:
            y = y * self.gate.view(1, h, 1, 1)
        y = y.transpose(1, 2).reshape(B, T, h * k)
        return self.proj(y), att


def linear(n_in: int, n_out: int, rank: int) -> nn.Module:
    """A dense layer, or its rank-r factorisation when that is smaller."""
    if rank and rank * (n_in + n_out) < n_in * n_out:
        return nn.Sequential(nn.Linear(n_in, rank, bias=False), nn.Linear(rank, n_out))
    return nn.Linear(n_in, n_out)


class FeedForward(nn.Module):
    def __init__(self, cfg: ModelConfig, width: int) -> None:
        super().__init__()
        self.up = linear(cfg.d_model, width, cfg.ffn_rank)
        self.down = linear(width, cfg.d_model, cfg.ffn_rank)
        self.gate: torch.Tensor | None = None  # (width,) set only while measuring unit importance

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = F.gelu(self.up(x))  # (B, T, width)
        if self.gate is not None:
            a = a * self.gate
        out: torch.Tensor = self.down(a)
        return out


class Block(nn.Module):
    """Post-LN transformer layer, as in BERT/MiniLM: x = LN(x + attn(x)); x = LN(x + ffn(x))."""

    def __init__(self, cfg: ModelConfig, n_head: int, width: int) -> None:
        super().__init__()
        self.attn = SelfAttention(cfg, n_head)
        self.ln1 = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps)
        self.ffn = FeedForward(cfg, width)
        self.ln2 = nn.LayerNorm(cfg.d_model, eps=cfg.ln_eps)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, att = self.attn(x, bias)
        x = self.ln1(x + self.drop(a))
        x = self.ln2(x + self.drop(self.ffn(x)))
        return x, att


@dataclass
class Output:
    logits: torch.Tensor  # (B, K)
    anomaly: torch.Tensor  # (B,) logit of "some fault"
    ttf: torch.Tensor  # (B,) log1p(hours to failure)
    hidden: list[torch.Tensor]  # n_layer + 1 of (B, T, d): embeddings, then each layer
    attention: torch.Tensor  # (B, h, T, T) of the last layer
    valid: torch.Tensor  # (B, T) bool: tokens that are not padding


class SLM(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.tok = nn.Embedding(cfg.vocab_size, d)
        self.sensor = nn.Linear(cfg.sensor_features, d)
        self.pos = nn.Embedding(cfg.positions, d)
        self.segment = nn.Embedding(cfg.type_vocab, d)
        self.ln_emb = nn.LayerNorm(d, eps=cfg.ln_eps)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg, h, f) for h, f in zip(cfg.heads, cfg.ffn, strict=True))
        self.head_class = nn.Linear(d, cfg.n_classes)
        self.head_anomaly = nn.Linear(d, 1)
        self.head_ttf = nn.Linear(d, 1)
        S, T = cfg.sensor_tokens, cfg.tokens
        types = torch.zeros(T, dtype=torch.long)
        types[1 : 1 + S] = 1  # sensor tokens are "segment B"; [CLS] and log pieces segment A
        self.register_buffer("segments", types, persistent=False)
        self.register_buffer("local_bias", self._local_bias(cfg), persistent=False)
        self.apply(self._init)

    @staticmethod
    def _local_bias(cfg: ModelConfig) -> torch.Tensor:
        """(T, T) additive mask: with local_window w, sensor token i sees sensor token j only if |i-j| <= w."""
        T, S = cfg.tokens, cfg.sensor_tokens
        bias = torch.zeros(T, T)
        if cfg.local_window > 0:
            i = torch.arange(S)
            far = (i[:, None] - i[None, :]).abs() > cfg.local_window  # (S, S)
            bias[1 : 1 + S, 1 : 1 + S][far] = -1e4
        return bias

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)

    def layers(self) -> list[Block]:
        return [b for b in self.blocks if isinstance(b, Block)]

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def embed(self, sensors: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """sensors (B, S, F), tokens (B, L) -> (B, T, d)."""
        B = tokens.shape[0]
        cls = self.tok.weight[self.cfg.cls_id].view(1, 1, -1).expand(B, 1, -1)  # (B, 1, d)
        x = torch.cat([cls, self.sensor(sensors), self.tok(tokens)], dim=1)  # (B, T, d)
        T = x.shape[1]
        segments: torch.Tensor = self.segments  # type: ignore[assignment]
        x = x + self.pos.weight[:T] + self.segment(segments)
        out: torch.Tensor = self.drop(self.ln_emb(x))
        return out

    def forward(self, sensors: torch.Tensor, tokens: torch.Tensor) -> Output:
        cfg = self.cfg
        assert sensors.shape[1:] == (cfg.sensor_tokens, cfg.sensor_features), f"sensors {tuple(sensors.shape)}"
        assert tokens.shape[1:] == (cfg.log_tokens,), f"tokens {tuple(tokens.shape)}"
        B = tokens.shape[0]
        valid = torch.cat([torch.ones(B, 1 + cfg.sensor_tokens, dtype=torch.bool, device=tokens.device), tokens != 0], 1)
        local: torch.Tensor = self.local_bias  # type: ignore[assignment]
        bias = (~valid).float().view(B, 1, 1, -1) * -1e4 + local  # (B, 1, T, T)
        x = self.embed(sensors, tokens)
        hidden = [x]
        att = torch.empty(0)
        for block in self.layers():
            x, att = block(x, bias)
            hidden.append(x)
        cls = x[:, 0]  # (B, d)
        return Output(
            logits=self.head_class(cls),
            anomaly=self.head_anomaly(cls).squeeze(-1),
            ttf=self.head_ttf(cls).squeeze(-1),
            hidden=hidden,
            attention=att,
            valid=valid,
        )


STUDENT_WEIGHTS = "student.npz"
"""The FP32 student's state dict, written into every labelled bundle so `model train --from` can fine-tune it
(the INT8 graph alone cannot be trained further). Plain numpy arrays: loading it runs no pickle."""


def save_weights(model: SLM, path: Path) -> None:
    """The model's FP32 state dict as an uncompressed .npz of named arrays."""
    np.savez(path, **{k: v.detach().cpu().float().numpy() for k, v in model.state_dict().items()})


def load_weights(cfg: ModelConfig, path: Path) -> SLM:
    """The model that ``save_weights`` wrote, rebuilt from its config; every array must fit exactly."""
    model = SLM(cfg)
    with np.load(path, allow_pickle=False) as z:
        state = {k: torch.from_numpy(z[k]) for k in z.files}
    model.load_state_dict(state, strict=True)
    return model.eval()


class Exported(nn.Module):
    """What goes into ONNX: probabilities, anomaly score, log1p(ttf hours), [CLS] attention over log tokens."""

    def __init__(self, model: SLM) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, sensors: torch.Tensor, tokens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.model(sensors, tokens)
        start = 1 + self.model.cfg.sensor_tokens
        log_attention = out.attention[:, :, 0, start:].mean(dim=1)  # (B, L)
        return F.softmax(out.logits, dim=-1), torch.sigmoid(out.anomaly), F.relu(out.ttf), log_attention
