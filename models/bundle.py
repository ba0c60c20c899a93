"""The model bundle on disk: a directory of plain files and a manifest with the sha256 of each.

    BUNDLE/manifest.json        format, version, and {file: {sha256, bytes}} for every file below
    BUNDLE/model.onnx           the INT8 student (inputs sensors, tokens; dynamic batch axis)
    BUNDLE/tokenizer.json       the trimmed word-piece tokenizer
    BUNDLE/normalisation.json   healthy baseline per asset type, channel and statistic
    BUNDLE/labels.json          the label map: output index -> fault name ("normal" first)
    BUNDLE/config.json          WindowSpec, FeatureSpec, ModelConfig, training facts
    BUNDLE/metrics.json         what evaluation measured
    BUNDLE/report.md, *.png     the compression report (optional)

The version is ``slm-`` and 12 hex digits of a hash over the files that decide predictions
(model, tokenizer, baseline, labels, config), so the same weights always carry the same
version and a retrained model a new one. Reading verifies every hash first and refuses a
bundle that differs from its manifest in any way, naming the file.

No torch: the edge runtime imports this module.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from models.errors import BundleError

FORMAT = "forewarn-slm-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MODEL_FILES = ("model.onnx", "tokenizer.json", "normalisation.json", "labels.json", "config.json")
"""Files that decide what the model predicts: they make up the version hash."""
REQUIRED = (*MODEL_FILES, "metrics.json")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def content_version(hashes: dict[str, str]) -> str:
    """The bundle's version: a hash of the model-deciding files' hashes."""
    lines = "".join(f"{name}:{hashes[name]}\n" for name in MODEL_FILES)
    return "slm-" + hashlib.sha256(lines.encode()).hexdigest()[:12]


def assemble(
    out: Path, onnx_path: Path, tokenizer_json: str, normalisation: dict[str, Any], labels: Sequence[str], config: dict[str, Any]
) -> None:
    """Write a new bundle directory (replacing ``out``) with empty metrics and its manifest; the
    trainer adds metrics and a report, then writes the manifest again."""
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copyfile(onnx_path, out / "model.onnx")
    (out / "tokenizer.json").write_text(tokenizer_json)
    (out / "normalisation.json").write_text(json.dumps(normalisation) + "\n")
    (out / "labels.json").write_text(json.dumps({"labels": list(labels)}, indent=2) + "\n")
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out / "metrics.json").write_text("{}\n")
    write_manifest(out)


def write_manifest(directory: Path) -> dict[str, Any]:
    """Hash every plain file of a finished bundle directory into its manifest; returns the manifest."""
    directory = Path(directory)
    files: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.iterdir()):
        if path.name == MANIFEST or not path.is_file():
            continue
        if not _NAME.match(path.name):
            raise BundleError(f"bundle file name {path.name!r} is not a plain file name")
        files[path.name] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    missing = [name for name in REQUIRED if name not in files]
    if missing:
        raise BundleError(f"bundle {directory} lacks {', '.join(missing)}")
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "version": content_version({n: f["sha256"] for n, f in files.items()}),
        "files": files,
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def verify(directory: Path) -> dict[str, Any]:
    """Check a bundle against its manifest before anything in it is parsed; returns the manifest.

    Raises BundleError naming the first file that is missing, resized or modified.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise BundleError(f"model bundle {directory} does not exist or is not a directory")
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except FileNotFoundError as exc:
        raise BundleError(f"model bundle {directory} has no {MANIFEST}: not a bundle, or an incomplete copy") from exc
    except (OSError, ValueError) as exc:
        raise BundleError(f"model bundle {directory}: {MANIFEST} is unreadable ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"model bundle {directory}: {MANIFEST} is not a {FORMAT} manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"model bundle {directory} has format version {manifest.get('format_version')!r}; "
            f"this Forewarn reads version {FORMAT_VERSION}"
        )
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise BundleError(f"model bundle {directory}: {MANIFEST} lists no files")
    missing = [name for name in REQUIRED if name not in files]
    if missing:
        raise BundleError(f"model bundle {directory}: manifest lacks {', '.join(missing)}")
    hashes = {}
    for name, entry in files.items():
        if not isinstance(name, str) or not _NAME.match(name) or not isinstance(entry, dict):
            raise BundleError(f"model bundle {directory}: manifest entry {name!r} is not a plain file")
        path = directory / name
        if not path.is_file():
            raise BundleError(f"model bundle {directory}: {name} is missing (listed in the manifest)")
        actual = sha256_file(path)
        if actual != entry.get("sha256") or path.stat().st_size != entry.get("bytes"):
            raise BundleError(
                f"model bundle {directory}: {name} does not match its manifest "
                f"(sha256 {actual[:16]}... expected {str(entry.get('sha256'))[:16]}...): "
                "the file was modified or corrupted; refusing to load"
            )
        hashes[name] = actual
    version = content_version(hashes)
    if manifest.get("version") != version:
        raise BundleError(f"model bundle {directory}: manifest version {manifest.get('version')!r} is not {version!r}")
    return manifest


def read_json(directory: Path, name: str) -> Any:
    """A verified bundle's JSON file; a parse error is a BundleError naming the file."""
    path = Path(directory) / name
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BundleError(f"model bundle {directory}: {name} is unreadable ({exc})") from exc


def bundle_bytes(directory: Path) -> int:
    """Size on disk of every file the manifest lists, plus the manifest."""
    manifest = read_json(directory, MANIFEST)
    return int(sum(f["bytes"] for f in manifest["files"].values())) + (Path(directory) / MANIFEST).stat().st_size
