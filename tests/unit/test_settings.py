"""The settings object: typed, frozen, from SHOP_* variables, strict in production."""

from __future__ import annotations

import pydantic
import pytest

from topology.settings import DEV_JWT_SECRET, Profile, Settings

PROD_URLS = {
    "SHOP_KAFKA_BOOTSTRAP": "kafka-1.prod:9092",
    "SHOP_PG_PRIMARY_URL": "postgresql://app@pg-primary.prod/shop",
    "SHOP_PG_REPLICA_URL": "postgresql://app@pg-replica.prod/shop",
    "SHOP_REDIS_URL": "rediss://cache.prod:6380/0",
    "SHOP_SEARCH_URL": "https://search.prod:9200",
    "SHOP_MONGO_URL": "mongodb://mongo.prod/?replicaSet=rs0",
    "SHOP_GATEWAY_URL": "https://api.payments.example",
    "SHOP_SMTP_HOST": "smtp-relay.prod",
    "SHOP_MESSAGING_URL": "https://api.messaging.example",
}
PROD_SECRETS = {"SHOP_JWT_SECRET": "s" * 40, "SHOP_PARTNER_SECRET": "p" * 40, "SHOP_GATEWAY_KEY": "g" * 40}
PROD_KAFKA = {"SHOP_KAFKA_SECURITY": "sasl_ssl", "SHOP_KAFKA_PASSWORD": "k" * 40}


def test_reads_shop_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_KAFKA_PORT", "29092")
    monkeypatch.setenv("SHOP_REDIS_URL", "redis://cache:6379/1")
    settings = Settings.from_env()
    assert settings.bootstrap_servers == "127.0.0.1:29092"
    assert settings.redis_url == "redis://cache:6379/1"


def test_is_frozen() -> None:
    settings = Settings()
    with pytest.raises(pydantic.ValidationError):
        settings.kafka_port = 1  # type: ignore[misc]


def test_rejects_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_KAFKA_PORT", "not-a-port")
    with pytest.raises(pydantic.ValidationError):
        Settings.from_env()
    monkeypatch.setenv("SHOP_KAFKA_PORT", "70000")
    with pytest.raises(pydantic.ValidationError):
        Settings.from_env()


def test_secrets_do_not_print() -> None:
    assert DEV_JWT_SECRET not in repr(Settings())


def test_production_refuses_dev_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PROD_URLS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SHOP_PROFILE", "prod")
    with pytest.raises(pydantic.ValidationError, match="SHOP_JWT_SECRET"):
        Settings.from_env()


def test_production_needs_managed_service_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PROD_SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SHOP_PROFILE", "prod")
    with pytest.raises(pydantic.ValidationError, match="SHOP_KAFKA_BOOTSTRAP"):
        Settings.from_env()


def test_production_with_real_values_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**PROD_URLS, **PROD_SECRETS, **PROD_KAFKA}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SHOP_PROFILE", "prod")
    settings = Settings.from_env()
    assert settings.profile is Profile.PROD
    assert settings.bootstrap_servers == "kafka-1.prod:9092"
    assert settings.pg_read_url == PROD_URLS["SHOP_PG_REPLICA_URL"]
