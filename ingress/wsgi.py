"""The gunicorn entry point: ``gunicorn -c ingress/gunicorn.conf.py "ingress.wsgi:app_from_env()"``.

Signing keys come from the folder every instance shares (``SHOP_KEYS_DIR``, default the
stack folder's ``keys``; ``ingress.auth.keys``). A worker whose folder holds no key exits
with gunicorn's "app failed to load" code, which stops gunicorn, after saying how to make one.
"""

from __future__ import annotations

import sys

import falcon
import pymongo
import redis
from elasticsearch import Elasticsearch

from ingress.app import Ports, create_app
from ingress.auth.keys import load_keys
from ingress.bus import KafkaBus
from ingress.readmodel import ReadModel
from ingress.vault import HttpVault
from topology import tracing
from topology.settings import Settings
from topology.signing_keys import KeyFolderError

#: gunicorn's exit code for an app that cannot load: the master stops instead of forking again.
APP_LOAD_ERROR = 4

__all__ = ["app_from_env", "load_keys"]


def app_from_env() -> falcon.App:  # type: ignore[type-arg]
    settings = Settings.from_env()
    tracing.configure(settings, "ingress")  # in each worker: gunicorn loads the app after forking
    try:
        keys = load_keys(settings)
    except KeyFolderError as err:
        print(f"error: the ingress cannot start: {err}", file=sys.stderr, flush=True)
        raise SystemExit(APP_LOAD_ERROR) from None
    ports = Ports(
        keys=keys,
        bus=KafkaBus(settings),
        redis=redis.Redis.from_url(settings.redis_url, socket_timeout=2),
        reads=ReadModel(settings),
        search=Elasticsearch(settings.search_url, request_timeout=5),
        mongo=pymongo.MongoClient(settings.mongo_url, serverSelectionTimeoutMS=3000, tz_aware=True),
        vault=HttpVault(settings),
    )
    return create_app(settings, ports)
