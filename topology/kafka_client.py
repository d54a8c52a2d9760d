"""The one place a Kafka client's connection settings are made: where the brokers are, and who is asking.

Every producer, consumer and admin client of the system starts from ``client_config(settings,
principal)``. The principal is the process's own (``topology/access.py``): each flow, sink and the
ingress has one, the operator commands use ``OPERATOR``. Locally a principal's password is derived
from ``SHOP_KAFKA_SECRET`` and its name, so the stack creates every principal and each process
finds its own without a file; production gives each process its own ``SHOP_KAFKA_PASSWORD``
(and ``SHOP_KAFKA_USERNAME`` when it differs from the principal's name).
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Literal

from topology.settings import Settings

#: The SASL mechanism of every client (and of the local broker's client listener).
SCRAM_MECHANISM = "SCRAM-SHA-512"
Protocol = Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"]
_PROTOCOLS: dict[str, Protocol] = {"plaintext": "PLAINTEXT", "sasl": "SASL_PLAINTEXT", "sasl_ssl": "SASL_SSL"}


def security_record(settings: Settings) -> Path:
    """Where the embedded stack's broker records the security it was started with (``auto`` reads it)."""
    return settings.stack_dir / "run" / "kafka-security"


def security_protocol(settings: Settings) -> Protocol:
    """The protocol clients speak to the brokers.

    ``auto``: a managed cluster (``SHOP_KAFKA_BOOTSTRAP``) speaks SASL; the embedded broker
    speaks what it recorded when it started, and one that recorded nothing predates SASL and
    is plaintext.
    """
    if settings.kafka_security != "auto":
        return _PROTOCOLS[settings.kafka_security]
    if settings.kafka_bootstrap:
        return "SASL_PLAINTEXT"
    try:
        recorded = security_record(settings).read_text().strip()
    except FileNotFoundError:
        return "PLAINTEXT"
    return _PROTOCOLS.get(recorded, "SASL_PLAINTEXT")


def username_for(settings: Settings, principal: str) -> str:
    return settings.kafka_username or principal


def password_for(settings: Settings, principal: str) -> str:
    """The principal's password: the one set for this process, else derived from the Kafka secret."""
    explicit = settings.kafka_password.get_secret_value()
    if explicit:
        return explicit
    secret = settings.kafka_secret.get_secret_value().encode()
    return hmac.new(secret, principal.encode(), hashlib.sha256).hexdigest()


def client_config(settings: Settings, principal: str) -> dict[str, str]:
    """bootstrap.servers and, unless the broker is plaintext, the SASL login of ``principal``."""
    config = {"bootstrap.servers": settings.bootstrap_servers}
    protocol = security_protocol(settings)
    if protocol == "PLAINTEXT":
        return config
    config |= {
        "security.protocol": protocol,
        "sasl.mechanism": SCRAM_MECHANISM,
        "sasl.username": username_for(settings, principal),
        "sasl.password": password_for(settings, principal),
    }
    if protocol == "SASL_SSL" and settings.kafka_ca_file is not None:
        config["ssl.ca.location"] = str(settings.kafka_ca_file)
    return config
