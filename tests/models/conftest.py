"""Fixtures of the models tests: a tiny synthetic dataset and a small bundle honestly trained on it (once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.models.synthetic import write_dataset


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("synthetic") / "train", seconds=7200, seed=0)


@pytest.fixture(scope="session")
def synthetic_holdout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("synthetic") / "holdout", seconds=5400, seed=3)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory, synthetic_dir: Path) -> Path:
    """A bundle from the quick profile with fewer steps: the real pipeline, on synthetic data, in seconds."""
    from models.pipeline import train
    from models.profiles import profile

    root = tmp_path_factory.mktemp("tiny_bundle")
    prof = profile("quick", teacher_steps=10, student_steps=60, recover_steps=20, latency_runs=20)
    train([synthetic_dir], root / "bundle", prof, root / "run", progress=False, echo=lambda _: None)
    return root / "bundle"
