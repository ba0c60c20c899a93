"""Signed bundle packages: how a model bundle travels to the gateways and how a gateway knows it is ours.

One package is one MQTT payload (retained on the site's bundle topic):

    {"format": "forewarn-signed-bundle", "statement": {...}, "signature": "<base64>"}\\n
    <tar.gz of the bundle directory's plain files>

The statement names the site, the bundle version, the sha256 of the bundle's
``manifest.json``, when it was published and which key signed it; the signature is Ed25519
over the statement's canonical JSON. The manifest holds the sha256 of every file
(``models.bundle``), so the signature covers every byte of the bundle without covering the
tar's own bytes (gzip output is not reproducible). A gateway checks, in order, and refuses
with the first reason that applies:

    malformed           not a package (no header, bad JSON, not a tar.gz, a non-plain member)
    too_large           over the configured size, packed or unpacked
    bad_signature       not signed by the configured public key (another key, or an altered statement)
    wrong_site          signed for another site
    manifest_mismatch   the manifest in the tar is not the one the statement names
    file_mismatch       a file differs from the manifest (its sha256 or size), or is missing
    version_mismatch    the manifest's version is not the statement's

The signature is verified before anything in the tar is read.

Model commands (``forewarn.contracts.ModelCommand``: roll back to N-1) are signed by the same key,
over the command and the site it is for, and refused as ``unsigned``, ``bad_signature`` or
``stale`` (issued more than ``COMMAND_MAX_AGE_S`` ago, or from the future: a replayed command
must not roll a later bundle back). No torch: the gateway imports this.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import os
import re
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from forewarn.contracts import ModelCommand
from models.bundle import MANIFEST, verify
from models.errors import BundleError

FORMAT = "forewarn-signed-bundle"
PRIVATE_KEY = "forewarn-bundle.key"
PUBLIC_KEY = "forewarn-bundle.pub"
MAX_PACKAGE_BYTES = 64 * 1024 * 1024
"""Default bound of a package, packed and unpacked (the shipped bundle is about 1 MiB)."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


class PackageError(BundleError):
    """A signed package refused; ``reason`` is one of the short labels in the module docstring."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Statement:
    """What the publisher signs: which bundle, for which site, when, with which key."""

    site: str
    version: str
    manifest_sha256: str
    published_at: float
    key_id: str

    def canonical(self) -> bytes:
        """The bytes the signature covers: sorted keys, no spaces, so signer and verifier agree."""
        return json.dumps(self.__dict__, sort_keys=True, separators=(",", ":")).encode()


COMMAND_MAX_AGE_S = 300.0
"""How long a signed command stays valid: the rollout promise is a rollback within 5 minutes."""
COMMAND_SKEW_S = 60.0
"""How far ahead of the gateway's clock a command's time may be."""


def _command_bytes(command: ModelCommand, site: str) -> bytes:
    fields = command.model_dump(mode="json", exclude={"signature"})
    return json.dumps({**fields, "site": site}, sort_keys=True, separators=(",", ":")).encode()


def sign_command(command: ModelCommand, site: str, key: Ed25519PrivateKey) -> ModelCommand:
    """The command with its signature for ``site``."""
    signature = base64.b64encode(key.sign(_command_bytes(command, site))).decode()
    return command.model_copy(update={"signature": signature})


def verify_command(command: ModelCommand, site: str, public: Ed25519PublicKey, now: float | None = None) -> None:
    """Raise PackageError (unsigned, bad_signature, stale) unless ``command`` was signed for ``site`` by ``public`` lately."""
    if command.signature is None:
        raise PackageError("unsigned", f"command {command.id} carries no signature")
    try:
        public.verify(base64.b64decode(command.signature, validate=True), _command_bytes(command, site))
    except (InvalidSignature, binascii.Error, ValueError) as exc:
        raise PackageError(
            "bad_signature", f"command {command.id} is not signed by the configured key {key_id(public)} for site {site!r}"
        ) from exc
    age = (time.time() if now is None else now) - command.ts
    if age > COMMAND_MAX_AGE_S or age < -COMMAND_SKEW_S:
        raise PackageError("stale", f"command {command.id} was issued {age:.0f} s ago (valid {COMMAND_MAX_AGE_S:.0f} s)")


# ------------------------------------------------------------------ keys


def key_id(public: Ed25519PublicKey) -> str:
    """16 hex digits naming a public key, so a refusal can say which key signed and which was expected."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def keygen(out: Path) -> tuple[Path, Path]:
    """Write a new Ed25519 key pair (PEM) into ``out``: the private key readable by its owner only.

    Refuses to overwrite an existing key: losing the private key means re-keying every gateway.
    """
    out.mkdir(parents=True, exist_ok=True)
    private_path, public_path = out / PRIVATE_KEY, out / PUBLIC_KEY
    for path in (private_path, public_path):
        if path.exists():
            raise BundleError(f"{path} exists: refusing to overwrite a signing key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    public_path.write_bytes(public)
    return private_path, public_path


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise BundleError(f"cannot read the signing key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError(f"{path} is not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise BundleError(f"cannot read the public key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise BundleError(f"{path} is not an Ed25519 public key")
    return key


# ------------------------------------------------------------------ the publisher's side


def pack(bundle: Path, site: str, key: Ed25519PrivateKey, published_at: float | None = None) -> tuple[bytes, Statement]:
    """A signed package of a verified bundle directory for one site; returns (payload, statement)."""
    manifest = verify(bundle)
    statement = Statement(
        site=site,
        version=str(manifest["version"]),
        manifest_sha256=hashlib.sha256((bundle / MANIFEST).read_bytes()).hexdigest(),
        published_at=time.time() if published_at is None else published_at,
        key_id=key_id(key.public_key()),
    )
    header = {
        "format": FORMAT,
        "statement": statement.__dict__,
        "signature": base64.b64encode(key.sign(statement.canonical())).decode(),
    }
    body = io.BytesIO()
    with tarfile.open(fileobj=body, mode="w:gz") as tar:
        for name in [MANIFEST, *sorted(manifest["files"])]:
            tar.add(bundle / name, arcname=name, recursive=False)
    return json.dumps(header, sort_keys=True).encode() + b"\n" + body.getvalue(), statement


# ------------------------------------------------------------------ the gateway's side


def open_package(payload: bytes, public: Ed25519PublicKey, site: str, max_bytes: int = MAX_PACKAGE_BYTES) -> Statement:
    """Check a package's header and signature (nothing of the tar is read yet); returns its statement."""
    if len(payload) > max_bytes:
        raise PackageError("too_large", f"package is {len(payload):,} bytes, over {max_bytes:,}")
    head, sep, _ = payload.partition(b"\n")
    try:
        header = json.loads(head) if sep else None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} header")
        statement = Statement(**header["statement"])
        signature = base64.b64decode(header["signature"], validate=True)
        canonical = statement.canonical()
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise PackageError("malformed", f"not a signed bundle package ({exc})") from exc
    try:
        public.verify(signature, canonical)
    except InvalidSignature as exc:
        raise PackageError(
            "bad_signature", f"bundle {statement.version} is not signed by the configured key {key_id(public)} "
            f"(it says key {statement.key_id})"
        ) from exc  # fmt: skip
    if statement.site != site:
        raise PackageError("wrong_site", f"bundle {statement.version} is signed for site {statement.site!r}, not {site!r}")
    return statement


def unpack(payload: bytes, statement: Statement, dest: Path, max_bytes: int = MAX_PACKAGE_BYTES) -> dict[str, Any]:
    """Write a package's files into the empty directory ``dest`` and verify them; returns the manifest.

    Only plain members with plain names are written (no paths, links or devices), and no more
    than ``max_bytes`` in all, so a hostile tar can neither escape ``dest`` nor fill the disk.
    """
    _, _, body = payload.partition(b"\n")
    dest.mkdir(parents=True, exist_ok=False)
    total = 0
    written: set[str] = set()
    try:
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
            for member in tar:
                if not member.isfile() or not _NAME.match(member.name):
                    raise PackageError("malformed", f"tar member {member.name!r} is not a plain file")
                total += member.size
                if total > max_bytes:
                    raise PackageError("too_large", f"the bundle unpacks to over {max_bytes:,} bytes")
                source = tar.extractfile(member)
                assert source is not None, "a regular member has content"
                (dest / member.name).write_bytes(source.read())
                written.add(member.name)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise PackageError("malformed", f"the bundle's tar.gz cannot be read ({exc})") from exc
    manifest_path = dest / MANIFEST
    if not manifest_path.is_file() or hashlib.sha256(manifest_path.read_bytes()).hexdigest() != statement.manifest_sha256:
        raise PackageError("manifest_mismatch", f"the manifest of bundle {statement.version} is not the signed one")
    try:
        manifest = verify(dest)
    except BundleError as exc:
        raise PackageError("file_mismatch", str(exc)) from exc
    extra = written - {MANIFEST, *manifest["files"]}
    if extra:
        raise PackageError("file_mismatch", f"bundle {statement.version} carries files its manifest lacks: {sorted(extra)}")
    if manifest.get("version") != statement.version:
        raise PackageError("version_mismatch", f"manifest version {manifest.get('version')!r} is not {statement.version!r}")
    return manifest


__all__ = [
    "MAX_PACKAGE_BYTES",
    "PRIVATE_KEY",
    "PUBLIC_KEY",
    "PackageError",
    "Statement",
    "key_id",
    "keygen",
    "load_private_key",
    "load_public_key",
    "open_package",
    "pack",
    "unpack",
]
