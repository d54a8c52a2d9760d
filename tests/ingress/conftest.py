"""The ingress fixtures: an app on the real stack under the test's private names, shared by its test modules.

The app's payment provider is a stand-in built from ``ops/gateway`` as it is now
(``tests.support.gateway``): the stack's, or, while the stack runs an older one, a private one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ingress.auth.tokens import KeyRing
from ingress.bus import KafkaBus
from tests.support.api import Api
from tests.support.gateway import current_gateway
from tests.support.scope import Scope
from topology.settings import Settings

#: Rate limits low enough for a few calls to reach them, and how long a fresh read waits for the replica.
LIMITS = {"rate_burst": 5, "rate_writes_per_s": 0.5, "replica_wait_ms": 2000}


@pytest.fixture(scope="session")
def gateway_url(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Where a stand-in of the payment provider built from the current source answers."""
    with current_gateway(settings, tmp_path_factory.mktemp("gateway")) as url:
        yield url


@pytest.fixture
def private(ns: Scope, gateway_url: str) -> Settings:
    """The scope's settings with the topology applied and the schema migrated (removed with the scope)."""
    ns.apply_topology()
    ns.migrate()
    return ns.settings.model_copy(update={**LIMITS, "gateway_url_override": gateway_url})


@pytest.fixture
def api(private: Settings) -> Iterator[Api]:
    bus = KafkaBus(private)
    api = Api(private, KeyRing(private.jwt_issuer, private.jwt_audience), bus)
    api.sql(
        "INSERT INTO products (sku, title, description, brand, category, tags, price_amount, currency,"
        " updated_at, version) VALUES ('mug', 'Mug', '', '', '', '{}', 900, 'EUR', now(), 1)"
    )
    yield api
    bus.close()
    api.reads.close()
