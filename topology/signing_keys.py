"""The folder of JWT signing keys every ingress instance shares: its layout, and each key's state.

The folder (``Settings.signing_keys_dir``) holds one PKCS#8 PEM file per key, ``{kid}.pem``,
and a manifest, ``keys.json``, listing every key oldest first with when it was created and
when a newer key took over signing from it. ``ops/keys.py`` (``shopstream keys``) is the only
writer: each file is written whole under a temporary name and renamed into place, with mode
0600, under the folder's lock. The ingress only reads it, and reads it again when the
manifest changes.

A key's state follows from the manifest and the time alone, so every instance agrees:

- the newest key **signs** (and verifies);
- an older key **verifies** until ``retire_at``: the access-token lifetime after a newer key
  took over, plus ``RETIRE_GRACE``, by when every token it signed has expired;
- after that it is **retired**: it verifies nothing, and the next rotation deletes its file.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from topology.exceptions import TopologyError

MANIFEST = "keys.json"
LOCK = ".lock"
KeyState = Literal["signing", "verifying", "retired"]
Instant = Annotated[datetime, msgspec.Meta(tz=True)]
#: How often an ingress instance looks at the manifest for a change (an unknown ``kid`` looks sooner).
RELOAD_EVERY_S = 1.0
#: Beyond the token lifetime before an old key retires: the verifier's clock leeway and the
#: instances still signing with it until they see the manifest change.
RETIRE_GRACE = timedelta(seconds=30)


class KeyFolderError(TopologyError):
    """The key folder is missing, empty or unreadable; the message names the fix."""


class KeyEntry(msgspec.Struct, frozen=True, kw_only=True):
    kid: str
    created_at: Instant
    #: when a newer key took over signing (None: this key signs)
    superseded_at: Instant | None = None
    #: when its file was deleted (retired keys only)
    deleted_at: Instant | None = None

    @property
    def file(self) -> str:
        return f"{self.kid}.pem"

    def retire_at(self, token_ttl: timedelta) -> datetime | None:
        """When the key stops verifying (None while it signs)."""
        return None if self.superseded_at is None else self.superseded_at + token_ttl + RETIRE_GRACE

    def state(self, now: datetime, token_ttl: timedelta) -> KeyState:
        retire_at = self.retire_at(token_ttl)
        if retire_at is None:
            return "signing"
        return "verifying" if now < retire_at and self.deleted_at is None else "retired"


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    #: oldest first; the last one signs
    keys: tuple[KeyEntry, ...] = ()

    @property
    def signing(self) -> KeyEntry | None:
        return self.keys[-1] if self.keys and self.keys[-1].superseded_at is None else None

    def live(self, now: datetime, token_ttl: timedelta) -> list[KeyEntry]:
        """The keys that sign or still verify at ``now``, newest first."""
        return [k for k in reversed(self.keys) if k.state(now, token_ttl) != "retired"]


def read_manifest(folder: Path) -> Manifest:
    """The folder's manifest; KeyFolderError when the folder or the manifest is missing or unreadable."""
    path = folder / MANIFEST
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        legacy = " (it holds key files but no manifest)" if folder.is_dir() and any(folder.glob("*.pem")) else ""
        raise KeyFolderError(
            f"no signing keys in {folder}{legacy}\n"
            "  fix: `shopstream keys init` creates the first key (`shopstream stack up` does it for the"
            " local stack), or set SHOP_KEYS_DIR to the folder the other instances use"
        ) from None
    except OSError as err:
        raise KeyFolderError(f"cannot read {path}: {err.strerror}") from None
    try:
        manifest = msgspec.json.decode(data, type=Manifest)
    except msgspec.DecodeError as err:
        raise KeyFolderError(f"{path} is not a key manifest: {err}") from None
    if manifest.signing is None:
        raise KeyFolderError(f"{path} names no signing key\n  fix: `shopstream keys rotate` adds one")
    return manifest


def encode_manifest(manifest: Manifest) -> bytes:
    return msgspec.json.format(msgspec.json.encode(manifest), indent=2) + b"\n"
