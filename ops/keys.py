"""The signing keys' folder, written: the first key, a rotation, the listing (``shopstream keys``).

The layout and each key's state are ``topology.signing_keys``. Every change holds the folder's
lock; a key file is written whole under a temporary name (mode 0600) and renamed into place
before the manifest that names it, and the manifest is replaced the same way, so a reader
sees the old folder or the new one, never a key half written.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ops.exceptions import OpsError
from topology.settings import Settings
from topology.signing_keys import LOCK, MANIFEST, KeyEntry, KeyFolderError, KeyState, Manifest, encode_manifest
from topology.signing_keys import read_manifest as _read_manifest


class KeysError(OpsError):
    """The key folder cannot be read or written; the message names the fix."""


class NoKeysYet(KeysError):
    """The folder holds no signing key (``shopstream keys init`` makes the first)."""


@dataclass(frozen=True)
class KeyRow:
    kid: str
    created: datetime
    state: KeyState
    #: when the key stops verifying (None while it signs)
    retires: datetime | None


@dataclass(frozen=True)
class Rotation:
    signing: KeyEntry
    #: the keys whose files this rotation deleted (retired)
    deleted: tuple[str, ...]
    #: the key that signed until now, and when it retires
    previous: KeyEntry
    previous_retires: datetime


def token_ttl(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.access_token_ttl_s)


def read_manifest(folder: Path) -> Manifest:
    try:
        return _read_manifest(folder)
    except KeyFolderError as err:
        raise (NoKeysYet if not (folder / MANIFEST).exists() else KeysError)(str(err)) from None


def listing(settings: Settings, now: datetime) -> list[KeyRow]:
    """Every key of the manifest, newest first, with its state at ``now``."""
    ttl = token_ttl(settings)
    manifest = read_manifest(settings.signing_keys_dir)
    return [KeyRow(k.kid, k.created_at, k.state(now, ttl), k.retire_at(ttl)) for k in reversed(manifest.keys)]


def init(settings: Settings, now: datetime) -> tuple[bool, Manifest]:
    """The folder's first key, unless it has one; (whether one was made, the manifest).

    Key files a folder holds without a manifest are adopted: the newest (by file time) signs,
    the others verify for one token lifetime from now.
    """
    folder = settings.signing_keys_dir
    with _locked(folder):
        if (folder / MANIFEST).exists():
            return False, read_manifest(folder)
        adopted = sorted(folder.glob("*.pem"), key=lambda p: p.stat().st_mtime)
        entries = []
        for path in adopted:
            _check_key_file(path)
            created = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            entries.append(KeyEntry(kid=path.stem, created_at=created, superseded_at=now))
        if entries:
            entries[-1] = KeyEntry(kid=entries[-1].kid, created_at=entries[-1].created_at)
        else:
            entries.append(KeyEntry(kid=_new_key(folder), created_at=now))
        manifest = Manifest(keys=tuple(entries))
        _write(folder / MANIFEST, encode_manifest(manifest))
        return True, manifest


def rotate(settings: Settings, now: datetime) -> Rotation:
    """A new key signs from ``now``; the one before verifies until it retires; retired keys' files go."""
    folder, ttl = settings.signing_keys_dir, token_ttl(settings)
    with _locked(folder):
        manifest = read_manifest(folder)
        previous = manifest.signing
        assert previous is not None  # noqa: S101 - read_manifest refuses a manifest without one
        kept: list[KeyEntry] = []
        deleted: list[str] = []
        for key in manifest.keys:
            if key is previous:
                key = KeyEntry(kid=key.kid, created_at=key.created_at, superseded_at=now)
            elif key.deleted_at is None and key.state(now, ttl) == "retired":
                (folder / key.file).unlink(missing_ok=True)
                key = KeyEntry(kid=key.kid, created_at=key.created_at, superseded_at=key.superseded_at, deleted_at=now)
                deleted.append(key.kid)
            kept.append(key)
        signing = KeyEntry(kid=_new_key(folder), created_at=now)
        _write(folder / MANIFEST, encode_manifest(Manifest(keys=(*kept, signing))))
        retires = kept[-1].retire_at(ttl)
        assert retires is not None  # noqa: S101 - superseded just above
        return Rotation(signing, tuple(deleted), kept[-1], retires)


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = (folder / LOCK).open("a")
    except OSError as err:
        raise KeysError(f"cannot write the key folder {folder}: {err.strerror}\n  fix: set SHOP_KEYS_DIR") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        except OSError as err:
            raise KeysError(f"cannot write the key folder {folder}: {err.strerror}") from None


def _new_key(folder: Path) -> str:
    """A new Ed25519 key's file in ``folder``; its kid."""
    kid = uuid.uuid4().hex[:16]
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write(folder / f"{kid}.pem", pem)
    return kid


def _write(path: Path, data: bytes) -> None:
    """``data`` as ``path``, mode 0600: written whole under a temporary name, then renamed over it."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a crash
    finally:
        os.close(directory)


def _check_key_file(path: Path) -> None:
    """An adopted key file must hold an Ed25519 private key; it is made private to its owner."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError:
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeysError(f"{path} is not an Ed25519 private key in PEM\n  fix: move it out of {path.parent}")
    path.chmod(0o600)
