"""Logs: ECS fields, a record that cannot be shipped is counted (never waited for), the access log, the sink's days."""

from __future__ import annotations

import io
import json
import logging
import socket
import sys
import threading
import time
import types
from collections.abc import Iterator
from typing import Any

import pytest

from topology.logs import (
    ACCESS_LOGGER,
    CONSOLE,
    DROPPED,
    EcsFormatter,
    HumanFormatter,
    KafkaShipper,
    _ConsoleFilter,
    bound,
    kafka_producer,
    setup_logging,
)
from topology.settings import Settings


def dropped(reason: str) -> float:
    return float(DROPPED.labels(reason)._value.get())


def record(message: str = "hello %s", *args: object, name: str = "flows.orders", **extra: Any) -> logging.LogRecord:
    made = logging.LogRecord(name, logging.INFO, __file__, 10, message, args or ("world",), None)
    made.__dict__.update(extra)
    return made


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    def produce(self, topic: str, value: bytes, key: bytes, on_delivery: Any) -> None:
        self.sent.append((topic, value, key))
        on_delivery(None, None)

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        return 0


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    made = logging.getLogger("flows.test_logs")
    made.propagate = False
    made.setLevel(logging.INFO)
    yield made
    for handler in list(made.handlers):
        made.removeHandler(handler)
        handler.close()


def wait_for(check: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("not within the time given")
        time.sleep(0.02)


def test_ecs_document_has_the_ecs_fields_and_ours() -> None:
    with bound(**{"labels.correlation_id": "c-1"}):
        made = record(**{"shop.order_id": "o_1", "event.action": "order-placed"})
        from topology.logs import enrich

        enrich(made)
    text = EcsFormatter("orders").format(made)
    assert text.startswith('{"@timestamp":')
    doc = json.loads(text)
    assert list(doc)[:3] == ["@timestamp", "log.level", "message"]  # as ECS asks
    assert doc["@timestamp"].endswith("Z")
    assert doc["log.level"] == "info"
    assert doc["message"] == "hello world"
    assert doc["log.logger"] == "flows.orders"
    assert doc["service.name"] == "orders"
    assert isinstance(doc["process.pid"], int)
    assert doc["shop.order_id"] == "o_1"
    assert doc["event.action"] == "order-placed"
    assert doc["labels.correlation_id"] == "c-1"


def test_the_document_is_the_one_ecs_logging_makes() -> None:
    """ecs-logging is the reference: the same fields and values, nested as Elasticsearch stores them."""
    import ecs_logging

    from sinks.logs import nested

    try:
        raise KeyError("sku-1")
    except KeyError:
        made = logging.LogRecord("sinks.search", logging.ERROR, __file__, 7, "failed %s", ("x",), sys.exc_info())
    made.funcName = "write"
    made.__dict__.update({"shop.order_id": "o_1", "event.action": "write-failed"})
    ours = nested(json.loads(EcsFormatter("sink-search").format(made)))
    reference = json.loads(
        ecs_logging.StdlibFormatter(
            extra={"service.name": "sink-search"}, exclude_fields=("log.original", "process.name", "process.thread.id")
        ).format(made)
    )
    reference = nested(reference)
    assert ours == reference
    assert ours["error"]["type"] == "KeyError" and "raise KeyError" in ours["error"]["stack_trace"]


def test_a_flow_group_logs_each_flow_under_its_own_service_name() -> None:
    ecs = EcsFormatter("orders-inventory", {"flows.orders": "orders", "flows.inventory": "inventory"})
    assert json.loads(ecs.format(record(name="flows.orders.flow")))["service.name"] == "orders"
    assert json.loads(ecs.format(record(name="flows.kafka_input")))["service.name"] == "orders-inventory"
    assert json.loads(ecs.format(record(name="flows.ordersx")))["service.name"] == "orders-inventory"


def test_trace_ids_come_from_the_current_opentelemetry_span(monkeypatch: pytest.MonkeyPatch) -> None:
    context = types.SimpleNamespace(is_valid=True, trace_id=0xABC, span_id=0x12)
    fake = types.ModuleType("opentelemetry.trace")
    fake.get_current_span = lambda: types.SimpleNamespace(get_span_context=lambda: context)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", fake)
    shipper = KafkaShipper("shop.logs", "ingress", FakeProducer, queue_size=10)
    prepared = shipper.prepare(record())
    assert prepared.__dict__["trace.id"] == f"{0xABC:032x}"
    assert prepared.__dict__["span.id"] == f"{0x12:016x}"
    context.is_valid = False
    assert "trace.id" not in shipper.prepare(record()).__dict__
    shipper.close()


def test_records_are_shipped_as_ecs_json_keyed_by_service(logger: logging.Logger) -> None:
    producer = FakeProducer()
    shipper = KafkaShipper("t.shop.logs", "sink.search", lambda: producer, queue_size=100)
    logger.addHandler(shipper)
    args = {"n": 1}
    logger.info("batch %s", args, extra={"shop.order_id": "o_9"})
    args["n"] = 2  # the message is made when logged, not when shipped
    shipper.close()
    assert len(producer.sent) == 1
    topic, value, key = producer.sent[0]
    assert (topic, key) == ("t.shop.logs", b"sink.search")
    doc = json.loads(value)
    assert doc["message"] == "batch {'n': 1}"
    assert doc["shop.order_id"] == "o_9"


def test_a_full_queue_drops_and_counts_without_waiting(logger: logging.Logger) -> None:
    stuck = threading.Event()

    def never_ready() -> FakeProducer:
        stuck.wait(30)  # the shipper's thread is held here: nothing leaves the queue
        return FakeProducer()

    shipper = KafkaShipper("shop.logs", "ingress", never_ready, queue_size=3, close_timeout_s=0.1)
    logger.addHandler(shipper)
    before = dropped("queue_full")
    for n in range(20):
        logger.info("line %d", n)
    # The thread took at most one record before it got stuck; the queue holds 3; the rest are counted.
    assert dropped("queue_full") - before >= 20 - 1 - 3
    stuck.set()


def test_a_producer_that_cannot_be_made_costs_records_not_the_process(logger: logging.Logger) -> None:
    def broken() -> FakeProducer:
        raise RuntimeError("no brokers configured")

    shipper = KafkaShipper("shop.logs", "ingress", broken, queue_size=10, close_timeout_s=0.5)
    logger.addHandler(shipper)
    before = dropped("error")
    logger.warning("one")
    logger.warning("two")
    wait_for(lambda: dropped("error") - before >= 2)


def test_kafka_away_never_blocks_and_counts_what_it_could_not_deliver(logger: logging.Logger) -> None:
    with socket.socket() as closed:  # a port nothing listens on: the broker is away
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings = Settings(kafka_bootstrap=f"127.0.0.1:{port}", kafka_security="plaintext")
    shipper = KafkaShipper(
        "shop.logs", "ingress", kafka_producer(settings, "ingress", message_timeout_ms=300), 100, close_timeout_s=0.5
    )
    logger.addHandler(shipper)
    before = dropped("undelivered")
    for n in range(50):
        logger.error("kafka is away %d", n)
    wait_for(lambda: dropped("undelivered") - before >= 50)
    shipper.close()  # bounded: close_timeout_s, Kafka or not


def test_the_human_line_is_no_json_and_shows_the_ids() -> None:
    line = HumanFormatter(with_time=False).format(record(**{"shop.order_id": "o_5"}))
    assert line == "INFO    flows.orders: hello world  order_id=o_5"


def test_the_console_hides_the_access_log_and_shipped_only_records() -> None:
    shown = _ConsoleFilter(access=False)
    assert not shown.filter(record(name=ACCESS_LOGGER))
    assert shown.filter(logging.LogRecord(ACCESS_LOGGER, logging.ERROR, "", 0, "GET / 500", None, None))
    shipped_only = record()
    shipped_only.__dict__[CONSOLE] = False
    assert not shown.filter(shipped_only)
    assert _ConsoleFilter(access=True).filter(record(name=ACCESS_LOGGER))


def test_setup_quiets_the_chatty_libraries_and_prints_human_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    console = io.StringIO()
    monkeypatch.setattr(sys, "stderr", console)
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        shipper = setup_logging(Settings(log_ship=False), "sink.search", "sink-search")
        assert shipper is None
        logging.getLogger("elastic_transport.transport").info("POST http://127.0.0.1:19200/_bulk [status:200]")
        logging.getLogger("sinks.search").info("indexed")
        logging.getLogger("quixstreams.app").info("chatter")
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    assert console.getvalue() == "INFO    sinks.search: indexed\n"


# -- the ingress's access log ------------------------------------------------------------------


class _Order:
    def on_get(self, req: Any, resp: Any, order_id: str) -> None:
        resp.media = {"order_id": order_id, "status": "confirmed"}


def test_the_access_log_names_the_route_not_the_id_and_the_client_the_proxy_vouches_for(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import falcon
    import falcon.testing

    from ingress.access_log import AccessLog
    from ingress.addresses import ClientAddress, networks

    app = falcon.App(middleware=[AccessLog(ClientAddress(networks("10.0.0.0/8")))])
    app.add_route("/v1/orders/{order_id}", _Order())
    client = falcon.testing.TestClient(app)
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        answer = client.simulate_get(
            "/v1/orders/o_42",
            remote_addr="10.1.2.3",
            headers={"X-Forwarded-For": "198.51.100.7", "User-Agent": "curl/8"},
        )
        client.simulate_get("/nowhere/o_43", remote_addr="10.1.2.3")
    found, missing = caplog.records
    fields = found.__dict__
    assert found.levelno == logging.INFO
    assert fields["http.request.method"] == "GET"
    assert fields["url.path"] == "/v1/orders/{order_id}"
    assert fields["http.response.status_code"] == 200
    assert fields["http.response.body.bytes"] == len(answer.content)
    assert isinstance(fields["event.duration"], int) and fields["event.duration"] > 0
    assert fields["client.ip"] == "198.51.100.7"
    assert fields["user_agent.original"] == "curl/8"
    assert fields["shop.order_id"] == "o_42"
    assert "o_42" not in found.getMessage()
    assert missing.__dict__["http.response.status_code"] == 404
    assert missing.__dict__["url.path"] == "/nowhere/o_43"  # no route: the raw path, cut short


# -- the logs sink's documents and retention ---------------------------------------------------


def test_a_shipped_record_becomes_a_nested_document_of_its_utc_day() -> None:
    from datetime import date

    from sinks.logs import parse

    made = record(**{"shop.order_id": "o_1"})
    value = EcsFormatter("ingress").format(made).encode()
    document, day = parse(value)
    assert document["log"]["level"] == "info"  # "log.level" is a dotted key in the JSON line
    assert document["log"]["logger"] == "flows.orders"
    assert document["shop"]["order_id"] == "o_1"
    assert "@timestamp" in document
    assert day == date.fromisoformat(document["@timestamp"][:10])
    assert parse(b'{"@timestamp": "2026-12-01T23:30:00-02:00", "message": "x"}')[1] == date(2026, 12, 2)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "empty"),
        (b"not json", "not JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"message": "x"}', "no @timestamp"),
        (b'{"@timestamp": "yesterday"}', "no ISO 8601"),
        (b'{"@timestamp": "2026-12-01T10:00:00"}', "no time zone"),
    ],
)
def test_a_record_that_is_no_log_document_is_refused_with_the_reason(value: bytes, reason: str) -> None:
    from sinks.logs import parse

    with pytest.raises(ValueError, match=reason):
        parse(value)


def test_retention_names_the_days_past_it_and_nothing_else() -> None:
    from datetime import date

    from sinks.logs import expired

    class Indices:
        def get(self, index: str, **_: object) -> dict[str, object]:
            assert index == "p-logs-*"
            names = ["p-logs-2026.11.24", "p-logs-2026.11.25", "p-logs-2026.12.01", "p-logs-junk", "p-logs-2026.13.01"]
            return {name: {} for name in names}

    es = types.SimpleNamespace(indices=Indices())
    # 7 days kept: 2026-11-25 .. 2026-12-01.
    assert expired(es, "p-", 7, date(2026, 12, 1)) == ["p-logs-2026.11.24"]  # type: ignore[arg-type]


# -- shopstream logs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "reason"), [(["--since", "5x"], "bad time '5x'"), (["--level", "loud"], "unknown level 'loud'")]
)
def test_bad_input_to_shopstream_logs_is_exit_2_with_the_reason(argv: list[str], reason: str) -> None:
    from typer.testing import CliRunner

    from ops.cli import app

    done = CliRunner().invoke(app, ["logs", *argv])
    assert done.exit_code == 2
    assert reason in done.output


def test_a_printed_line_is_time_level_service_logger_message_and_the_ids() -> None:
    from ops.logs import flat, line, query

    row = flat(
        {
            "@timestamp": "2026-12-02T10:00:00.123Z",
            "log": {"level": "warning", "logger": "flows.orders.flow"},
            "service": {"name": "orders"},
            "message": "order o_1 reserving -> cancelled",
            "shop": {"order_id": "o_1"},
        }
    )
    text = line(row)
    assert text.endswith("WARNING  orders  flows.orders.flow: order o_1 reserving -> cancelled  order=o_1")
    assert query(level="warn")["bool"]["filter"] == [{"terms": {"log.level": ["warning", "error", "critical"]}}]


def test_a_record_logged_under_a_real_opentelemetry_span_carries_its_ids() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("test")
    shipper = KafkaShipper("shop.logs", "ingress", FakeProducer, queue_size=10)
    with tracer.start_as_current_span("GET /v1/orders/{order_id}") as span:
        prepared = shipper.prepare(record())
    context = span.get_span_context()
    assert prepared.__dict__["trace.id"] == f"{context.trace_id:032x}"
    assert prepared.__dict__["span.id"] == f"{context.span_id:016x}"
    assert "trace.id" not in shipper.prepare(record()).__dict__  # no span current any more
    shipper.close()
