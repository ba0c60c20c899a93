"""A signed package of the shipped bundle is accepted with its key; another key or an altered part is refused by reason."""

from __future__ import annotations

import io
import json
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from forewarn.contracts import ModelCommand
from models.bundle import MANIFEST
from models.errors import BundleError
from models.runtime import default_bundle_path
from models.signing import (
    PRIVATE_KEY,
    PUBLIC_KEY,
    PackageError,
    keygen,
    load_private_key,
    load_public_key,
    open_package,
    pack,
    sign_command,
    unpack,
    verify_command,
)

SITE = "plant7"


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def package(key: Ed25519PrivateKey) -> bytes:
    payload, _ = pack(default_bundle_path(), SITE, key, published_at=1_767_225_600.0)
    return payload


def _members(payload: bytes) -> tuple[bytes, dict[str, bytes]]:
    head, _, body = payload.partition(b"\n")
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]
    return head, files


def _repack(head: bytes, files: dict[str, bytes]) -> bytes:
    body = io.BytesIO()
    with tarfile.open(fileobj=body, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return head + b"\n" + body.getvalue()


def _install(payload: bytes, key: Ed25519PrivateKey, dest: Path, site: str = SITE) -> str:
    statement = open_package(payload, key.public_key(), site)
    return str(unpack(payload, statement, dest)["version"])


def test_a_package_signed_with_the_configured_key_unpacks_to_the_same_bundle(
    package: bytes, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    version = _install(package, key, tmp_path / "b")
    shipped = json.loads((default_bundle_path() / MANIFEST).read_text())
    assert version == shipped["version"]
    assert (tmp_path / "b" / "model.onnx").read_bytes() == (default_bundle_path() / "model.onnx").read_bytes()


def _altered_statement(package: bytes) -> bytes:
    head, body = package.split(b"\n", 1)
    header = json.loads(head)
    header["statement"]["version"] = "slm-000000000000"
    return json.dumps(header).encode() + b"\n" + body


def _altered_manifest(package: bytes) -> bytes:
    head, files = _members(package)
    files[MANIFEST] = files[MANIFEST] + b"\n"
    return _repack(head, files)


def _altered_file(package: bytes) -> bytes:
    head, files = _members(package)
    files["labels.json"] = files["labels.json"].replace(b"normal", b"nermal")
    return _repack(head, files)


def _extra_file(package: bytes) -> bytes:
    head, files = _members(package)
    return _repack(head, {**files, "extra.py": b"print('hi')\n"})


def _escaping_member(package: bytes) -> bytes:
    head, files = _members(package)
    return _repack(head, {**files, "../escape.txt": b"x"})


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (_altered_statement, "bad_signature"),
        (_altered_manifest, "manifest_mismatch"),
        (_altered_file, "file_mismatch"),
        (_extra_file, "file_mismatch"),
        (_escaping_member, "malformed"),
        (lambda p: p.split(b"\n", 1)[1], "malformed"),
    ],
)
def test_a_tampered_package_is_refused_with_its_reason(
    package: bytes, key: Ed25519PrivateKey, tmp_path: Path, tamper: Callable[[bytes], bytes], reason: str
) -> None:
    with pytest.raises(PackageError) as refused:
        _install(tamper(package), key, tmp_path / "b")
    assert refused.value.reason == reason
    assert not (tmp_path / "escape.txt").exists()


def test_another_key_or_another_site_is_refused(package: bytes, key: Ed25519PrivateKey, tmp_path: Path) -> None:
    with pytest.raises(PackageError) as refused:
        _install(package, Ed25519PrivateKey.generate(), tmp_path / "b")
    assert refused.value.reason == "bad_signature"
    with pytest.raises(PackageError) as refused:
        _install(package, key, tmp_path / "c", site="plant8")
    assert refused.value.reason == "wrong_site"
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists(), "nothing unpacked before the signature holds"


def test_an_oversized_package_is_refused_before_its_signature_is_checked(package: bytes, key: Ed25519PrivateKey) -> None:
    with pytest.raises(PackageError) as refused:
        open_package(package, key.public_key(), SITE, max_bytes=len(package) - 1)
    assert refused.value.reason == "too_large"


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(tmp_path: Path) -> None:
    private, public = keygen(tmp_path / "keys")
    assert (private.name, public.name) == (PRIVATE_KEY, PUBLIC_KEY)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    payload, _ = pack(default_bundle_path(), SITE, load_private_key(private))
    assert open_package(payload, load_public_key(public), SITE).site == SITE
    with pytest.raises(BundleError, match="refusing to overwrite"):
        keygen(tmp_path / "keys")


def test_a_rollback_command_is_obeyed_only_signed_by_the_key_for_the_site_and_fresh(key: Ed25519PrivateKey) -> None:
    now = 1_800_000_000.0
    public = key.public_key()
    command = sign_command(ModelCommand(id="c1", action="rollback", by="ana", ts=now), "plant1", key)
    verify_command(command, "plant1", public, now=now + 10)  # accepted: no exception

    def reason(cmd: ModelCommand, site: str = "plant1", at: float = now + 10, pub: object = public) -> str:
        with pytest.raises(PackageError) as refused:
            verify_command(cmd, site, pub, now=at)  # type: ignore[arg-type]
        return refused.value.reason

    assert reason(command.model_copy(update={"signature": None})) == "unsigned"
    assert reason(command.model_copy(update={"gateway_id": "gw9"})) == "bad_signature"  # a field changed after signing
    assert reason(command, site="plant2") == "bad_signature"  # signed for another site
    assert reason(command, pub=Ed25519PrivateKey.generate().public_key()) == "bad_signature"
    assert reason(command.model_copy(update={"signature": "%%%"})) == "bad_signature"
    assert reason(command, at=now + 301) == "stale"  # a replay after the 5 minutes
    assert reason(command, at=now - 120) == "stale"  # from the future
