"""Fixtures of the edge agent's tests: the shipped model bundle (there is no stand-in model) and its window spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.windowing import WindowSpec


@pytest.fixture(scope="session")
def bundle() -> Path:
    """The bundle shipped in models/bundles/default: everything that needs inference runs the real model."""
    from models.runtime import default_bundle_path

    path = default_bundle_path()
    if not (path / "manifest.json").is_file():
        pytest.fail(f"the shipped model bundle is missing at {path}: the edge agent's inference tests need it")
    return path


@pytest.fixture(scope="session")
def spec(bundle: Path) -> WindowSpec:
    from models.runtime import Bundle

    window_spec: WindowSpec = Bundle.load(bundle).spec
    return window_spec
