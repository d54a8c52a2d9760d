"""Kafka clients' settings and the principals' grants, as pure data (the broker's side: tests/contract)."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest
from pydantic import SecretStr

from tests.unit.test_settings import PROD_KAFKA, PROD_SECRETS, PROD_URLS
from topology.access import OPERATOR, PRINCIPALS, Grant, partner_principal, principal_of
from topology.kafka_client import client_config, security_record
from topology.processes import PROCESSES
from topology.settings import Settings


def test_production_refuses_to_start_without_kafka_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**PROD_URLS, **PROD_SECRETS}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SHOP_PROFILE", "prod")
    with pytest.raises(pydantic.ValidationError, match="SHOP_KAFKA_PASSWORD"):
        Settings.from_env()
    monkeypatch.setenv("SHOP_KAFKA_PASSWORD", PROD_KAFKA["SHOP_KAFKA_PASSWORD"])
    monkeypatch.setenv("SHOP_KAFKA_SECURITY", "plaintext")
    with pytest.raises(pydantic.ValidationError, match="SHOP_KAFKA_SECURITY"):
        Settings.from_env()


def test_the_embedded_broker_decides_plaintext_or_sasl_by_what_it_recorded(tmp_path: Path) -> None:
    settings = Settings(stack_dir=tmp_path)
    assert client_config(settings, OPERATOR) == {"bootstrap.servers": settings.bootstrap_servers}
    security_record(settings).parent.mkdir(parents=True)
    security_record(settings).write_text("sasl\n")
    config = client_config(settings, "flow-users")
    assert config["security.protocol"] == "SASL_PLAINTEXT" and config["sasl.mechanism"] == "SCRAM-SHA-512"
    assert config["sasl.username"] == "flow-users"
    assert config["sasl.password"] == client_config(settings, "flow-users")["sasl.password"], "derived, stable"
    assert config["sasl.password"] != client_config(settings, OPERATOR)["sasl.password"], "one per principal"
    other = settings.model_copy(update={"kafka_secret": SecretStr("another-secret")})
    assert client_config(other, "flow-users")["sasl.password"] != config["sasl.password"]


def test_explicit_credentials_and_a_managed_cluster_speak_sasl() -> None:
    settings = Settings(
        kafka_bootstrap="kafka-1.prod:9093",
        kafka_security="sasl_ssl",
        kafka_username="svc-orders",
        kafka_password=SecretStr("from-the-vault"),
        kafka_ca_file=Path("/etc/ssl/kafka-ca.pem"),
    )
    assert client_config(settings, principal_of("flow", "orders")) == {
        "bootstrap.servers": "kafka-1.prod:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "svc-orders",
        "sasl.password": "from-the-vault",
        "ssl.ca.location": "/etc/ssl/kafka-ca.pem",
    }
    assert client_config(Settings(kafka_bootstrap="k:9092"), OPERATOR)["security.protocol"] == "SASL_PLAINTEXT"


def test_every_process_has_a_principal_of_its_own() -> None:
    names = [p.name for p in PRINCIPALS]
    assert len(names) == len(set(names)) == len(PROCESSES)
    assert OPERATOR not in names, "the operator is a super user, with no grants to declare"


def test_the_ingress_only_writes_the_commands_of_its_routes() -> None:
    ingress = next(p for p in PRINCIPALS if p.name == principal_of("http", "ingress"))
    assert {g.operation for g in ingress.grants} == {"write"}
    assert {g.name for g in ingress.grants} == {
        "shop.orders.commands",
        "shop.users.commands",
        "shop.catalog.commands",
        "shop.inventory.commands",
        "shop.logs",
    }


def test_a_flow_reads_its_inputs_and_group_and_writes_its_outputs_and_its_inputs_dead_letters() -> None:
    users = next(p for p in PRINCIPALS if p.name == principal_of("flow", "users"))
    assert set(users.grants) == {
        Grant("read", "topic", "shop.users.commands"),
        Grant("read", "group", "shopstream.flow.users"),
        Grant("write", "topic", "shop.users.events"),
        Grant("write", "topic", "shop.users.commands.dlq"),
        Grant("write", "topic", "shop.logs"),
    }
    orders = next(p for p in PRINCIPALS if p.name == principal_of("flow", "orders"))
    assert Grant("read", "topic", "shop.partner.", "prefixed") in orders.grants, "every partner's topic"
    assert not any(
        g.operation == "write" and g.name.startswith("shop.partner.") and "dlq" not in g.name for g in orders.grants
    )


def test_a_sink_reads_and_describes_what_it_consumes_and_writes_only_dead_letters_and_logs() -> None:
    redis = next(p for p in PRINCIPALS if p.name == principal_of("sink", "redis"))
    writes = {g.name for g in redis.grants if g.operation == "write"}
    assert writes == {"shop.stock.levels.dlq", "shop.orders.events.dlq", "shop.catalog.events.dlq", "shop.logs"}
    assert {g.name for g in redis.grants if g.operation == "describe-configs"} == {
        "shop.stock.levels",
        "shop.orders.events",
        "shop.catalog.events",
    }


def test_every_process_may_ship_its_logs_and_only_the_logs_sink_reads_them() -> None:
    for principal in PRINCIPALS:
        assert Grant("write", "topic", "shop.logs") in principal.grants, principal.name
    readers = [p.name for p in PRINCIPALS if Grant("read", "topic", "shop.logs") in p.grants]
    assert readers == [principal_of("sink", "logs")]


def test_a_partner_may_write_its_own_topic_and_nothing_else() -> None:
    acme = partner_principal("acme")
    assert acme.name == "partner-acme"
    assert acme.grants == (Grant("write", "topic", "shop.partner.acme.commands"),)
    with pytest.raises(ValueError, match="partner id"):
        partner_principal("no/slashes")
