"""The signing keys' folder, read: the keys that sign and verify now (layout: ``topology.signing_keys``).

The ingress never writes the folder: ``shopstream keys init`` makes the first key and
``shopstream keys rotate`` the next ones. An instance whose folder holds no key refuses to
start. A running one reads the folder again when its manifest changes (``KeyRing`` looks
every ``RELOAD_EVERY_S``, and at once for a token of a ``kid`` it does not know), so a
rotated key is picked up without a restart.
"""

from __future__ import annotations

import stat
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ingress.auth.tokens import KeyRing, SigningKey
from topology.settings import Settings
from topology.signing_keys import MANIFEST, KeyFolderError, read_manifest


class KeyFolder:
    """The keys of one folder, as ``KeyRing`` asks for them (a ``KeySource``)."""

    def __init__(self, folder: Path, token_ttl: timedelta) -> None:
        self.folder = folder
        self.token_ttl = token_ttl

    def stamp(self) -> object:
        """What changes whenever the manifest is replaced (None while there is none)."""
        try:
            info = (self.folder / MANIFEST).stat()
        except OSError:
            return None
        return (info.st_ino, info.st_mtime_ns, info.st_size)

    def load(self, now: datetime) -> list[SigningKey]:
        """The keys that sign or verify at ``now``, the signing one first; KeyFolderError when there is none."""
        manifest = read_manifest(self.folder)
        keys = []
        for entry in manifest.live(now, self.token_ttl):
            path = self.folder / entry.file
            try:
                if stat.S_IMODE(path.stat().st_mode) & 0o077:
                    raise KeyFolderError(f"{path} may be read by others than its owner\n  fix: chmod 600 {path}")
                private = serialization.load_pem_private_key(path.read_bytes(), password=None)
            except (OSError, ValueError) as err:
                raise KeyFolderError(f"cannot load signing key {path}: {err}") from None
            if not isinstance(private, Ed25519PrivateKey):
                raise KeyFolderError(f"{path} is not an Ed25519 private key")
            keys.append(SigningKey(entry.kid, private, entry.retire_at(self.token_ttl)))
        if not keys or keys[0].retire_at is not None:
            raise KeyFolderError(f"{self.folder} has no signing key\n  fix: `shopstream keys rotate`")
        return keys


def load_keys(settings: Settings, folder: Path | None = None) -> KeyRing:
    """The ring of the settings' key folder (or ``folder``), following it; KeyFolderError when it has no key."""
    source = KeyFolder(folder or settings.signing_keys_dir, timedelta(seconds=settings.access_token_ttl_s))
    return KeyRing.following(settings.jwt_issuer, settings.jwt_audience, source)
