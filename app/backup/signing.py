"""Signed manifests: a snapshot proves it was written by a deployment holding the key.

The manifest carries every file's sha256, so signing the manifest (HMAC-SHA256 over
its canonical JSON, without the signature itself) covers the whole snapshot: a changed
file no longer matches its hash, and a hash changed to match no longer matches the
signature. The manifest records which key signed it by a key id (the first bytes of a
hash of the key, never the key).

Keys (docs/backup.md): `backup.signing_key` signs new snapshots; it and
`backup.signing_key_previous` (the key before a rotation) verify them, and so do keys
an operator hands to one command (`--signing-key-file`, a lost deployment's key).
Outside production a key is generated once into <data_dir>/secrets (mode 600), like
the API-key pepper; in production a missing key stops `backup create`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.backup.stores import BackupError, SnapshotRefused
from app.security.secrets import write_secret_file
from app.settings import Settings

ALGORITHM = "hmac-sha256"
KEY_FILE = "backup_signing_key"  # in <data_dir>/secrets, outside production only


class Unverifiable(SnapshotRefused):
    """A snapshot whose signature cannot be checked here: none (written before snapshots
    were signed) or by a key this deployment does not hold. `--trust-unsigned` accepts
    it; nothing else does."""


class Forged(SnapshotRefused):
    """A snapshot signed by a key held here whose signature does not match: changed
    after it was written. Never accepted."""


@dataclass(frozen=True)
class Keys:
    """The key that signs (None: this command only verifies) and those that verify."""

    signing: bytes | None
    verifying: tuple[bytes, ...]

    def by_id(self) -> dict[str, bytes]:
        """Each verifying key under its key id."""
        return {key_id(key): key for key in self.verifying}


def key_id(key: bytes) -> str:
    """A key's name in a manifest: 16 hex digits of a hash of it, never the key."""
    return hashlib.sha256(b"docchat-backup-key-id\x00" + key).hexdigest()[:16]


def canonical(body: dict[str, Any]) -> bytes:
    """The bytes that are signed: sorted keys, no spaces, UTF-8."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def sign(body: dict[str, Any], key: bytes) -> dict[str, str]:
    """The signature of a manifest body (everything but its signature)."""
    value = hmac.new(key, canonical(body), hashlib.sha256).hexdigest()
    return {"algorithm": ALGORITHM, "key_id": key_id(key), "value": value}


def check(name: str, body: dict[str, Any], signature: object, keys: Keys) -> str:
    """The id of the key that signed `body`; Unverifiable when no key held here can
    tell, Forged when one can and the signature does not match."""
    if signature is None:
        raise Unverifiable(
            f"{name} is not signed (written before docchat signed its snapshots, or its "
            "signature was removed): restore it only if you know where it has been, with "
            "--trust-unsigned"
        )
    if not (
        isinstance(signature, dict)
        and signature.get("algorithm") == ALGORITHM
        and isinstance(signature.get("key_id"), str)
        and isinstance(signature.get("value"), str)
    ):
        raise Forged(
            f"{name}: its manifest's signature is malformed: the snapshot was tampered with"
        )
    key = keys.by_id().get(signature["key_id"])
    if key is None:
        held = ", ".join(sorted(keys.by_id())) or "none"
        raise Unverifiable(
            f"{name} was signed with key {signature['key_id']}, which this deployment does not "
            f"hold (keys held: {held}): give that key with --signing-key-file (a lost "
            "deployment's backup.signing_key) or set it as backup.signing_key_previous; "
            "--trust-unsigned restores it unchecked"
        )
    expected = sign(body, key)["value"]
    if not hmac.compare_digest(expected, signature["value"]):
        raise Forged(
            f"{name}: the manifest's signature (key {signature['key_id']}) does not match: "
            "the manifest was changed after the snapshot was taken (tampered with); refused"
        )
    return str(signature["key_id"])


def key_file(settings: Settings) -> Path:
    """Where a generated development key is kept (never copied into a snapshot)."""
    return settings.data_dir / "secrets" / KEY_FILE


def resolve(settings: Settings, *, signing: bool, extra: Sequence[bytes] = ()) -> Keys:
    """The keys in force. `signing`: a key to sign with is needed (create); outside
    production one is generated if none is set, in production its absence is a
    BackupError. Verifying alone never writes anything."""
    backup = settings.backup
    current, previous = (
        s.get_secret_value().strip().encode() or None if s is not None else None
        for s in (backup.signing_key, backup.signing_key_previous)
    )
    configured = [k for k in (current, previous) if k]
    generated = key_file(settings)
    if current is None and signing:
        if settings.env == "production":
            raise BackupError(
                "backup.signing_key is required in production: every snapshot is signed "
                "with it (set DOCCHAT_BACKUP__SIGNING_KEY or the secret file "
                "backup__signing_key; docs/backup.md)"
            )
        if not generated.exists():
            # Another process may write it first; then its key is the one.
            with contextlib.suppress(FileExistsError):
                write_secret_file(generated, secrets.token_urlsafe(48))
    local = []
    if current is None and generated.is_file():
        local.append(generated.read_text().strip().encode())
    if current is None and local:
        current = local[0]
    verifying = tuple(dict.fromkeys([*configured, *local, *extra]))
    return Keys(current if signing else None, verifying)


def read_key_file(path: Path) -> bytes:
    """A key handed to one command (`--signing-key-file`): the file's text, trimmed."""
    try:
        key = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise BackupError(f"cannot read the signing key file {path}: {exc}") from None
    if not key:
        raise BackupError(f"the signing key file {path} is empty")
    return key.encode()
