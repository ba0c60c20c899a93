"""A bundle is loaded only when every file matches its manifest; a tampered, missing or foreign bundle is refused by name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from models.bundle import MANIFEST, verify, write_manifest
from models.runtime import Bundle, BundleError, default_bundle_path

# The session's tiny bundle is trained in the first test that asks for it: a loaded machine needs more
# than the suite's default 300 s for that one test (the training itself is seconds on an idle one).
pytestmark = pytest.mark.timeout(900)


@pytest.fixture
def copy(tiny_bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_bundle, tmp_path / "bundle"))


def test_a_bundle_loads_with_a_content_version(copy: Path) -> None:
    bundle = Bundle.load(copy)
    assert bundle.version.startswith("slm-") and len(bundle.version) == 16
    assert bundle.labels[0] == "normal" and bundle.spec.channels


def test_the_version_is_the_content(copy: Path) -> None:
    before = Bundle.load(copy).version
    (copy / "report.md").write_text("rewritten report")
    write_manifest(copy)
    assert Bundle.load(copy).version == before, "the report does not change what the model predicts"


@pytest.mark.parametrize(
    "name", ["model.onnx", "tokenizer.json", "normalisation.json", "labels.json", "config.json", "metrics.json"]
)
def test_a_tampered_file_is_refused_by_name(copy: Path, name: str) -> None:
    path = copy / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=name.replace(".", r"\.") + ".*does not match its manifest"):
        Bundle.load(copy)


def test_a_missing_file_is_refused_by_name(copy: Path) -> None:
    (copy / "tokenizer.json").unlink()
    with pytest.raises(BundleError, match=r"tokenizer\.json is missing"):
        Bundle.load(copy)


def test_no_manifest_or_no_directory(copy: Path, tmp_path: Path) -> None:
    (copy / MANIFEST).unlink()
    with pytest.raises(BundleError, match="no manifest.json"):
        Bundle.load(copy)
    with pytest.raises(BundleError, match="does not exist"):
        Bundle.load(tmp_path / "nowhere")


def test_a_forged_manifest_version_or_format_is_refused(copy: Path) -> None:
    manifest = json.loads((copy / MANIFEST).read_text())
    (copy / MANIFEST).write_text(json.dumps({**manifest, "version": "slm-000000000000"}))
    with pytest.raises(BundleError, match="manifest version"):
        verify(copy)
    (copy / MANIFEST).write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(BundleError, match="format version 99"):
        verify(copy)


def test_a_path_outside_the_bundle_is_refused(copy: Path) -> None:
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["files"]["../etc/passwd"] = {"sha256": "0" * 64, "bytes": 1}
    (copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="not a plain file"):
        verify(copy)


def test_the_shipped_bundle_verifies() -> None:
    path = default_bundle_path()
    if not (path / MANIFEST).exists():
        pytest.fail(f"no shipped bundle at {path}: train one with `forewarn model train ... --out {path}`")
    bundle = Bundle.load(path)
    assert sum(f["bytes"] for f in bundle.manifest["files"].values()) <= 5_000_000
