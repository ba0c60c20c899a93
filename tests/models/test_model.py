"""The SLM matches MiniLM where it should, compresses without changing what it keeps, and exports to ONNX faithfully."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.compress import factorise, importance, prune
from models.config import ModelConfig
from models.export import export_onnx, quantize_dynamic_int8, quantize_static_int8, run_onnx
from models.features import Features
from models.model import SLM
from models.pretrained import load_minilm, minilm_dir, teacher_config
from models.train import Arrays, FitConfig, fit, supervised_loss

CFG = ModelConfig(
    vocab_size=50,
    sensor_features=10,
    sensor_tokens=6,
    log_tokens=8,
    n_classes=3,
    d_model=32,
    head_dim=8,
    heads=(4, 4),
    ffn=(64, 64),
    dropout=0.0,
)


def _inputs(n: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sensors = torch.randn(n, 6, 10, generator=g)
    tokens = torch.randint(5, 50, (n, 8), generator=g)
    tokens[:, 5:] = 0  # padding
    return sensors, tokens


def _arrays(n: int = 40) -> Arrays:
    sensors, tokens = _inputs(n)
    y = np.arange(n) % 3
    return Arrays(sensors.numpy(), tokens.numpy(), y, np.where(y > 0, 1.0, np.nan).astype(np.float32))


def test_our_bert_reproduces_minilm_hidden_states() -> None:
    transformers = pytest.importorskip("transformers")
    cfg = teacher_config(sensor_features=4, sensor_tokens=0, log_tokens=7, n_classes=2, dropout=0.0)
    ours = load_minilm(SLM(cfg)).eval()
    hf = transformers.BertModel.from_pretrained(str(minilm_dir()), add_pooling_layer=False).eval()
    tokens = torch.tensor([[7592, 2088, 2003, 2152, 0, 0, 0], [3329, 4860, 1999, 1996, 3067, 102, 0]])
    ids = torch.cat([torch.full((2, 1), 101), tokens], 1)
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=(ids != 0).long()).last_hidden_state
        got = ours(torch.zeros(2, 0, 4), tokens).hidden[-1]
    valid = ids != 0
    torch.testing.assert_close(got[valid], expected[valid], atol=2e-4, rtol=1e-4)


def test_pruning_everything_kept_changes_nothing() -> None:
    torch.manual_seed(0)
    model = SLM(CFG).eval()
    heads = [np.arange(4.0), np.arange(4.0)]
    units = [np.arange(64.0), np.arange(64.0)]
    same = prune(model, heads, units, 1.0, 1.0)
    sensors, tokens = _inputs()
    torch.testing.assert_close(same(sensors, tokens).logits, model(sensors, tokens).logits)
    small = prune(model, heads, units, 0.5, 0.25)
    assert small.cfg.heads == (2, 2) and small.cfg.ffn == (16, 16) and small.num_params() < model.num_params()
    assert small(sensors, tokens).logits.shape == (5, 3)


def test_importance_scores_every_head_and_unit() -> None:
    torch.manual_seed(0)
    model = SLM(CFG)
    data = _arrays()
    loss = supervised_loss(model, data, torch.ones(3))
    heads, units = importance(model, loss, [np.arange(16), np.arange(16, 32)])
    assert [h.shape for h in heads] == [(4,), (4,)] and [u.shape for u in units] == [(64,), (64,)]
    assert all((h > 0).any() for h in heads) and model.blocks[0].attn.gate is None


def test_factorising_a_low_rank_ffn_is_exact() -> None:
    torch.manual_seed(0)
    model = SLM(CFG).eval()
    with torch.no_grad():
        for block in model.blocks:
            block.ffn.up.weight.copy_(torch.randn(64, 4) @ torch.randn(4, 32) * 0.05)
            block.ffn.down.weight.copy_(torch.randn(32, 4) @ torch.randn(4, 64) * 0.05)
    low = factorise(model, 4)
    assert isinstance(low.blocks[0].ffn.up, torch.nn.Sequential) and low.num_params() < model.num_params()
    sensors, tokens = _inputs()
    torch.testing.assert_close(low(sensors, tokens).logits, model(sensors, tokens).logits, atol=1e-5, rtol=1e-4)


def test_local_attention_masks_far_sensor_steps() -> None:
    bias = SLM(CFG.with_(local_window=1)).local_bias
    assert bias[1, 2] == 0 and bias[1, 4] < -1e3, "sensor step 0 sees step 1, not step 3"
    assert (bias[0] == 0).all() and (bias[:, 0] == 0).all(), "[CLS] sees and is seen by everything"


def test_onnx_export_matches_torch_and_int8_stays_close(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = SLM(CFG).eval()
    sensors, tokens = _inputs(9)
    path = export_onnx(model, tmp_path / "m.onnx")
    feats = Features(sensors.numpy(), tokens.numpy(), np.zeros(tokens.shape, np.int32))
    got = run_onnx(path, feats, batch=4)  # batches of 4 then 1: the batch axis is dynamic
    with torch.no_grad():
        want = torch.softmax(model(sensors, tokens).logits, -1).numpy()
    np.testing.assert_allclose(got["probabilities"], want, atol=1e-5)
    assert got["log_attention"].shape == (9, 8) and np.allclose(got["log_attention"][:, 5:], 0, atol=1e-6)
    for q in (quantize_dynamic_int8(path, tmp_path / "d.onnx"), quantize_static_int8(path, tmp_path / "s.onnx", feats)):
        np.testing.assert_allclose(run_onnx(q, feats)["probabilities"], want, atol=0.1)


def test_fit_resumes_where_it_stopped(tmp_path: Path) -> None:
    data = _arrays()
    cfg = FitConfig(steps=12, batch=8, ckpt_every=4)

    def trained(run: Path, crash_at: int | None) -> SLM:
        torch.manual_seed(0)
        model = SLM(CFG.with_(dropout=0.1))
        inner = supervised_loss(model, data, torch.ones(3))
        calls = {"n": 0}

        def loss(index: np.ndarray) -> tuple[torch.Tensor, dict[str, float]]:
            calls["n"] += 1
            if crash_at is not None and calls["n"] == crash_at:
                raise KeyboardInterrupt
            return inner(index)

        fit("m", model, loss, len(data), cfg, run, seed=1, progress=False)
        return model

    straight = trained(tmp_path / "a", None)
    with pytest.raises(KeyboardInterrupt):
        trained(tmp_path / "b", crash_at=7)
    assert (tmp_path / "b" / "m.partial.pt").exists()
    resumed = trained(tmp_path / "b", None)
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=k)
