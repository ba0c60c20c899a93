"""Trimming MiniLM's vocabulary to the words logs use keeps training text's pieces identical and unseen words readable."""

from __future__ import annotations

import json

import numpy as np
from tokenizers import Tokenizer

from models.tokenizer import CLS, MASK, PAD, SEP, SPECIALS, UNK, LogTokenizer, base_tokenizer_path, log_text, trim_vocabulary

TEXTS = [log_text("WARNING", "Bearing temperature high on P-101 (DE)"), log_text("INFO", "pump started, flow 120 m3/h")]


def _trimmed() -> tuple[Tokenizer, np.ndarray, Tokenizer]:
    base_json = base_tokenizer_path().read_text()
    trimmed_json, full_ids = trim_vocabulary(base_json, TEXTS)
    base = Tokenizer.from_str(base_json)
    base.no_padding()
    return Tokenizer.from_str(trimmed_json), full_ids, base


def test_specials_come_first() -> None:
    trimmed, full_ids, base = _trimmed()
    vocab = trimmed.get_vocab()
    assert [vocab[t] for t in SPECIALS] == [PAD, UNK, CLS, SEP, MASK]
    assert [base.token_to_id(t) for t in SPECIALS] == full_ids[: len(SPECIALS)].tolist()


def test_training_text_tokenises_identically_through_the_id_map() -> None:
    trimmed, full_ids, base = _trimmed()
    for text in TEXTS:
        small = trimmed.encode(text, add_special_tokens=False).ids
        full = base.encode(text, add_special_tokens=False).ids
        assert full_ids[small].tolist() == full


def test_unseen_words_split_into_known_pieces_not_unk() -> None:
    trimmed, _, _ = _trimmed()
    ids = trimmed.encode("cavitation noise xyz", add_special_tokens=False).ids
    assert UNK not in ids and len(ids) > 3


def test_vocabulary_is_small_and_json_is_plain() -> None:
    trimmed, full_ids, _ = _trimmed()
    assert trimmed.get_vocab_size() == len(full_ids) < 400
    data = json.loads(trim_vocabulary(base_tokenizer_path().read_text(), TEXTS)[0])
    assert data["post_processor"] is None and data["padding"] is None


def test_log_tokenizer_caches_and_is_bounded() -> None:
    tok = LogTokenizer(Tokenizer.from_file(str(base_tokenizer_path())), cache_size=2)
    first = tok.encode(["a b", "c d", "a b"])
    assert first[0] == first[2]
    tok.encode(["e", "f", "g"])
    assert len(tok._cache) <= 2
