"""Model hyperparameters: one frozen dataclass, saved in every checkpoint and bundle.

A model is rebuilt from its checkpoint alone: ``SLM(ModelConfig.from_dict(ckpt["config"]))``.
Per-layer head counts and FFN widths are tuples because structured pruning makes layers differ.
No torch here: the runtime reads a bundle's config too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    sensor_features: int
    """Width of one sensor token (channels x 5)."""
    sensor_tokens: int
    """Sensor tokens per window (= WindowSpec.steps)."""
    log_tokens: int
    """Word-piece budget of the log section (= FeatureSpec.log_tokens)."""
    n_classes: int
    d_model: int = 128
    head_dim: int = 32
    heads: tuple[int, ...] = (4, 4)
    """Attention heads of each layer."""
    ffn: tuple[int, ...] = (512, 512)
    """FFN width of each layer."""
    ffn_rank: int = 0
    """0: full FFN matrices; r > 0: each FFN matrix is factorised as (out x r)(r x in)."""
    local_window: int = 0
    """0: global attention; w > 0: a sensor token sees only sensor tokens within w steps (plus [CLS] and logs)."""
    max_positions: int = 0
    """Rows of the position table; 0 means exactly the tokens of a window."""
    type_vocab: int = 2
    cls_id: int = 2
    """Vocabulary id whose embedding starts every sequence ([CLS])."""
    dropout: float = 0.1
    ln_eps: float = 1e-12

    def __post_init__(self) -> None:
        assert len(self.heads) == len(self.ffn) >= 1, "heads and ffn need one entry per layer"
        assert all(h >= 1 for h in self.heads), "every layer keeps at least one head"
        assert all(f >= 1 for f in self.ffn), "every layer keeps at least one FFN unit"
        assert self.max_positions == 0 or self.max_positions >= self.tokens, "position table shorter than a window"
        assert 0 <= self.cls_id < self.vocab_size, "cls_id outside the vocabulary"

    @property
    def n_layer(self) -> int:
        return len(self.heads)

    @property
    def tokens(self) -> int:
        """T: [CLS] + sensor tokens + log tokens."""
        return 1 + self.sensor_tokens + self.log_tokens

    @property
    def positions(self) -> int:
        return self.max_positions or self.tokens

    def with_(self, **changes: Any) -> ModelConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["heads"], data["ffn"] = list(self.heads), list(self.ffn)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        values = dict(data)
        values["heads"], values["ffn"] = tuple(values["heads"]), tuple(values["ffn"])
        return cls(**values)
