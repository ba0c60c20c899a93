"""Structured compression of a trained SLM: head and FFN-unit pruning, low-rank FFN factorisation.

Pruning scores every attention head and FFN unit by first-order Taylor importance
(|d loss / d gate| summed over batches, with a gate of ones multiplying the head's output or
the unit's activation; Michel et al. 2019, Molchanov et al. 2017), keeps the top fraction of
each layer, and copies the surviving rows/columns into a smaller model: nothing is masked,
the matrices shrink, so the ONNX graph is smaller and faster. Recovery fine-tuning follows
(in the pipeline).

Low-rank factorisation replaces each FFN matrix W (out x in) by its truncated SVD
(U_r S_r^1/2)(S_r^1/2 V_r^T): two thin layers, fewer multiply-adds when r(in+out) < in*out.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from models.model import SLM, Block
from models.train import LossFn


def importance(model: SLM, loss_fn: LossFn, batches: Iterable[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Taylor importance of each head (per layer, (h,)) and each FFN unit (per layer, (width,))."""
    model.eval()  # no dropout: scores of the deterministic model
    for block in model.layers():
        block.attn.gate = torch.ones(block.attn.n_head, requires_grad=True)
        block.ffn.gate = torch.ones(_width(block), requires_grad=True)
    heads = [np.zeros(b.attn.n_head) for b in model.layers()]
    units = [np.zeros(_width(b)) for b in model.layers()]
    try:
        for index in batches:
            loss, _ = loss_fn(index)
            model.zero_grad(set_to_none=True)
            gates = [g for b in model.layers() for g in (b.attn.gate, b.ffn.gate) if g is not None]
            grads = torch.autograd.grad(loss, gates)
            for i in range(len(model.blocks)):
                heads[i] += grads[2 * i].abs().numpy()
                units[i] += grads[2 * i + 1].abs().numpy()
    finally:
        for block in model.layers():
            block.attn.gate = None
            block.ffn.gate = None
    return heads, units


def _width(block: Block) -> int:
    up = block.ffn.up
    last = up[-1] if isinstance(up, nn.Sequential) else up
    assert isinstance(last, nn.Linear), "an FFN ends in a Linear"
    return last.out_features


def prune(model: SLM, head_scores: list[np.ndarray], unit_scores: list[np.ndarray], head_keep: float, ffn_keep: float) -> SLM:
    """A smaller SLM keeping, per layer, the top head_keep of heads and ffn_keep of FFN units (at least one each)."""
    assert model.cfg.ffn_rank == 0, "prune before low-rank factorisation"
    cfg = model.cfg
    keep_heads = [np.sort(np.argsort(-s)[: max(1, round(head_keep * len(s)))]) for s in head_scores]
    keep_units = [np.sort(np.argsort(-s)[: max(1, round(ffn_keep * len(s)))]) for s in unit_scores]
    small = SLM(cfg.with_(heads=tuple(len(h) for h in keep_heads), ffn=tuple(len(u) for u in keep_units)))
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("blocks.")}
    k = cfg.head_dim
    for i, (block, heads, units) in enumerate(zip(model.layers(), keep_heads, keep_units, strict=True)):
        inner = block.attn.n_head * k
        cols = np.concatenate([np.arange(h * k, (h + 1) * k) for h in heads])  # within one of q, k, v
        rows = torch.as_tensor(np.concatenate([cols, cols + inner, cols + 2 * inner]))
        cols_t, units_t = torch.as_tensor(cols), torch.as_tensor(units)
        p = f"blocks.{i}."
        sd = block.state_dict()
        state[p + "attn.qkv.weight"] = sd["attn.qkv.weight"][rows]
        state[p + "attn.qkv.bias"] = sd["attn.qkv.bias"][rows]
        state[p + "attn.proj.weight"] = sd["attn.proj.weight"][:, cols_t]
        state[p + "attn.proj.bias"] = sd["attn.proj.bias"]
        state[p + "ffn.up.weight"] = sd["ffn.up.weight"][units_t]
        state[p + "ffn.up.bias"] = sd["ffn.up.bias"][units_t]
        state[p + "ffn.down.weight"] = sd["ffn.down.weight"][:, units_t]
        state[p + "ffn.down.bias"] = sd["ffn.down.bias"]
        for ln in ("ln1", "ln2"):
            state[p + f"{ln}.weight"], state[p + f"{ln}.bias"] = sd[f"{ln}.weight"], sd[f"{ln}.bias"]
    small.load_state_dict(state)
    return small.eval()


def factorise(model: SLM, rank: int) -> SLM:
    """The same model with every FFN matrix replaced by its rank-``rank`` SVD (where that is smaller)."""
    assert model.cfg.ffn_rank == 0, "already factorised"
    low = SLM(model.cfg.with_(ffn_rank=rank))
    state = {k: v for k, v in model.state_dict().items() if ".ffn." not in k}
    for i, block in enumerate(model.layers()):
        for name in ("up", "down"):
            dense: nn.Linear = getattr(block.ffn, name)
            target = getattr(low.layers()[i].ffn, name)
            p = f"blocks.{i}.ffn.{name}"
            if isinstance(target, nn.Linear):  # rank too high to save anything: stays dense
                state[p + ".weight"], state[p + ".bias"] = dense.weight.data, dense.bias.data
                continue
            u, s, vh = torch.linalg.svd(dense.weight.data, full_matrices=False)  # (out, r) (r,) (r, in)
            root = s[:rank].sqrt()
            state[p + ".0.weight"] = root[:, None] * vh[:rank]  # (r, in)
            state[p + ".1.weight"] = u[:, :rank] * root[None, :]  # (out, r)
            state[p + ".1.bias"] = dense.bias.data
    low.load_state_dict(state)
    return low.eval()
