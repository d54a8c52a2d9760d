"""The gunicorn entry point: ``gunicorn -c ingress/gunicorn.conf.py "ingress.wsgi:app_from_env()"``.

Signing keys are PEM files in ``SHOP_JWT_KEYS_DIR`` (default: the stack folder's ``keys``);
the newest signs, the others still verify. The first worker to start on an empty folder
creates one key, under a file lock, so all workers share the same ring.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import falcon
import pymongo
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from elasticsearch import Elasticsearch

from ingress.app import Ports, create_app
from ingress.auth.tokens import KeyRing, SigningKey
from ingress.bus import KafkaBus
from ingress.readmodel import ReadModel
from topology.settings import Settings


def load_keys(settings: Settings, folder: Path) -> KeyRing:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not any(folder.glob("*.pem")):
            key = SigningKey.generate()
            pem = key.private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            path = folder / f"{key.kid}.pem"
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
                out.write(pem)
    keys = []
    for path in sorted(folder.glob("*.pem"), key=lambda p: p.stat().st_mtime, reverse=True):
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if isinstance(private, Ed25519PrivateKey):
            keys.append(SigningKey(path.stem, private))
    return KeyRing(settings.jwt_issuer, settings.jwt_audience, keys[0], keys[1:])


def app_from_env() -> falcon.App:  # type: ignore[type-arg]
    settings = Settings.from_env()
    ports = Ports(
        keys=load_keys(settings, settings.stack_dir / "keys"),
        bus=KafkaBus(settings),
        redis=redis.Redis.from_url(settings.redis_url, socket_timeout=2),
        reads=ReadModel(settings),
        search=Elasticsearch(settings.search_url, request_timeout=5),
        mongo=pymongo.MongoClient(settings.mongo_url, serverSelectionTimeoutMS=3000, tz_aware=True),
    )
    return create_app(settings, ports)
