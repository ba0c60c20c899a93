"""Errors of the SLM package.

    ForewarnError                 (forewarn.errors)
    └── ModelError                anything the models package raises on purpose
        ├── BundleError           a bundle that is missing, tampered with, or incompatible
        └── TrainingError         training cannot proceed (no data, no labels, a bad profile)

Library errors (onnxruntime, tokenizers, json) are translated into these at the boundary
with ``raise ... from exc``, so the CLI prints one clear line and the edge agent handles
one family.
"""

from __future__ import annotations

from forewarn.errors import ForewarnError


class ModelError(ForewarnError):
    """Base of every error the models package raises on purpose."""


class BundleError(ModelError):
    """A model bundle is missing, tampered with (a sha256 mismatch) or incompatible with this code."""


class TrainingError(ModelError):
    """Training cannot proceed: no windows, a single class, an unknown profile."""
