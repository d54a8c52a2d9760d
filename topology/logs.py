"""The logs of every process: ECS JSON shipped through Kafka, readable lines on the console.

Each entry point (gunicorn's config, the flows' and sinks' runners, the supervisor, the CLI)
calls ``setup_logging(settings, service, principal)`` once. The root logger then has two
handlers:

- the console (stderr): one human line per record (``SHOP_LOG_CONSOLE=json`` prints the
  ECS document instead, ``off`` nothing). Under ``shopstream run`` the supervisor stamps
  each line with the time and the process, so the line carries its time only on a terminal.
  The HTTP access log stays off the console unless ``SHOP_LOG_CONSOLE_ACCESS`` is set.
- the shipper (``SHOP_LOG_SHIP``): a ``QueueHandler`` whose bounded queue a background thread
  drains into a Kafka producer, to ``shop.logs``, one ECS document per record, which the
  logs sink indexes into ``{search_prefix}logs-YYYY.MM.DD``. Logging never waits for Kafka:
  a record that finds the queue full, that the producer's buffer cannot take, or that Kafka
  never acknowledges is dropped and counted in ``shop_log_records_dropped_total{reason}``.

Fields follow ECS, with the names ``ecs-logging`` (Elastic's formatter) writes, dotted:
``@timestamp``, ``log.level``, ``log.logger``, ``message``, ``service.name`` (the names
traces use), ``process.pid``, ``trace.id`` and ``span.id`` when an OpenTelemetry span is
current, and whatever a call passes as ``extra`` with dotted names (``event.action``,
``shop.order_id``, ``labels.correlation_id``). ``bound(...)`` adds fields to every record
logged in its context.

Libraries log from WARNING on (the Elasticsearch client's line per request, Kafka and Quix
chatter); the system's own loggers from ``SHOP_LOG_LEVEL``.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import logging
import logging.handlers
import os
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, cast

import ecs_logging
import msgspec
from prometheus_client import Counter

from topology.kafka_client import client_config
from topology.settings import Settings
from topology.topics import LOGS

#: The loggers of the system itself; everything else is a library's.
OWN_LOGGERS = ("ingress", "flows", "sinks", "ops", "topology", "shop", "gunicorn.error")
#: Libraries that say too much at INFO: the Elasticsearch client logs every request.
QUIET_LOGGERS = (
    "elastic_transport",
    "elasticsearch",
    "quixstreams",
    "confluent_kafka",
    "kafka",
    "bytewax",
    "urllib3",
    "httpx",
    "httpcore",
    "pymongo",
    "opentelemetry",
)
#: The HTTP access log's logger (``ingress/access_log.py``).
ACCESS_LOGGER = "shop.access"
#: A record with ``extra={CONSOLE: False}`` is shipped but not printed (the supervisor prints its own lines).
CONSOLE = "shop_console"

DROPPED = Counter(
    "shop_log_records_dropped",
    "Log records not shipped to Kafka, by reason: queue_full (the process logs faster than it ships), "
    "buffer_full (Kafka is away and the producer's buffer is full), undelivered (Kafka did not take it), error",
    ["reason"],
)
for _reason in ("queue_full", "buffer_full", "undelivered", "error"):
    DROPPED.labels(_reason)

_BOUND: contextvars.ContextVar[Mapping[str, object] | None] = contextvars.ContextVar("shop_log_fields", default=None)


@contextlib.contextmanager
def bound(**fields: object) -> Iterator[None]:
    """Add fields to every record logged in this context: ``bound(**{"shop.order_id": oid})``."""
    token = _BOUND.set({**(_BOUND.get() or {}), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _BOUND.reset(token)


def _current_span_ids() -> tuple[str, str] | None:
    """The current OpenTelemetry span's trace and span ids in hex, when one is recording."""
    trace = sys.modules.get("opentelemetry.trace")  # only when something (tracing) loaded it: never imported here
    if trace is None:
        return None
    tracing = sys.modules.get("topology.tracing")
    passed = tracing.passed_traceparent() if tracing is not None else None
    if passed is not None:  # an unsampled record or request, handled without a span: its context still names it
        return passed[3:35], passed[36:52]
    try:
        context = trace.get_current_span().get_span_context()
    except Exception:  # noqa: BLE001 - telemetry must never break a log call
        return None
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def enrich(record: logging.LogRecord) -> None:
    """Put the context's fields (bound ones, the current span) on ``record``; call in the logging thread."""
    for key, value in (_BOUND.get() or {}).items():
        record.__dict__.setdefault(key, value)
    ids = _current_span_ids()
    if ids is not None:
        record.__dict__.setdefault("trace.id", ids[0])
        record.__dict__.setdefault("span.id", ids[1])


#: A LogRecord's own attributes: everything else on a record came as ``extra`` (or from ``enrich``).
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", CONSOLE}
_encode = msgspec.json.Encoder(enc_hook=str).encode


class EcsFormatter(logging.Formatter):
    """One ECS document per record, as ``ecs-logging``'s ``StdlibFormatter`` makes it, ten times cheaper.

    The same fields and values (``tests/unit/test_logs.py`` holds the two side by side), without
    the library's nested merge of every field, which cost ~0.4 ms a record here: the names stay
    dotted (``log.level``), as Elasticsearch takes them and the logs sink nests them.
    ``service.name`` is the record's own, else ``services``' name for its logger (a flow group:
    ``flows.orders`` logs as ``orders``, the names traces use), else ``service``.
    """

    def __init__(self, service: str, services: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.service = service
        self.services = dict(services or {})
        self._second, self._stamp = -1, ""

    def service_of(self, logger: str) -> str:
        for prefix, service in self.services.items():
            if logger == prefix or logger.startswith(prefix + "."):
                return service
        return self.service

    def format(self, record: logging.LogRecord) -> str:
        return self.document(record).decode()

    def document(self, record: logging.LogRecord) -> bytes:
        """The record's ECS document as JSON bytes: ``@timestamp``, ``log.level`` and ``message`` first."""
        second = int(record.created)
        if second != self._second:  # one time format per second, not per record
            self._second, self._stamp = second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        doc: dict[str, object] = {
            "@timestamp": f"{self._stamp}.{int(record.msecs):03d}Z",
            "log.level": record.levelname.lower(),
            "message": record.getMessage(),
            "ecs.version": ecs_logging.ECS_VERSION,
            "log.logger": record.name,
            "log.origin.file.line": record.lineno,
            "log.origin.file.name": record.filename,
            "log.origin.function": record.funcName,
            "process.pid": record.process,
            "process.thread.name": record.threadName,
            "service.name": self.service_of(record.name),
        }
        if record.exc_info and record.exc_info[0] is not None:
            kind, error, trace = record.exc_info
            doc["error.type"] = kind.__name__
            doc["error.message"] = str(error)
            if trace is not None:
                doc["error.stack_trace"] = "".join(traceback.format_tb(trace))
        elif record.stack_info:
            doc["error.stack_trace"] = record.stack_info
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and value is not None:
                doc[key] = value
        return _encode(doc)


class HumanFormatter(logging.Formatter):
    """``LEVEL logger: message  key=value ...``: the record and the ids a person looks for."""

    SHOWN = ("shop.order_id", "labels.correlation_id", "trace.id")

    def __init__(self, with_time: bool) -> None:
        super().__init__(("%(asctime)s " if with_time else "") + "%(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        shown = [f"{key.rsplit('.', 1)[-1]}={record.__dict__[key]}" for key in self.SHOWN if key in record.__dict__]
        return f"{line}  {' '.join(shown)}" if shown else line


class _ConsoleFilter(logging.Filter):
    def __init__(self, access: bool) -> None:
        super().__init__()
        self.access = access

    def filter(self, record: logging.LogRecord) -> bool:
        if record.__dict__.get(CONSOLE) is False:
            return False
        if record.name == ACCESS_LOGGER and record.levelno < logging.WARNING:
            return self.access
        enrich(record)
        return True


class LogProducer(Protocol):
    """What the shipper needs of ``confluent_kafka.Producer`` (a fake in unit tests)."""

    def produce(self, topic: str, value: bytes, key: bytes, on_delivery: Callable[[Any, Any], None]) -> None: ...

    def poll(self, timeout: float) -> int: ...

    def flush(self, timeout: float) -> int: ...


_STOP = logging.LogRecord("stop", logging.INFO, "", 0, "", None, None)
#: The most records the shipper takes from its queue at once.
_DRAIN = 5_000


class KafkaShipper(logging.handlers.QueueHandler):
    """Queues records without waiting; a background thread formats them as ECS JSON and produces them.

    ``producer_factory`` builds the producer in the thread, at the first record: a process that
    logs nothing opens no connection. After a fork (gunicorn's workers) the child starts with an
    empty queue and its own thread and producer.
    """

    def __init__(
        self,
        topic: str,
        service: str,
        producer_factory: Callable[[], LogProducer],
        queue_size: int,
        close_timeout_s: float = 2.0,
        services: Mapping[str, str] | None = None,
        linger_s: float = 0.05,
    ) -> None:
        self._queue_size = queue_size
        self._queue: queue.Queue[logging.LogRecord] = queue.Queue(maxsize=queue_size)
        super().__init__(self._queue)
        self.topic = topic
        self.key = service.encode()
        self.ecs = EcsFormatter(service, services)
        self.producer_factory = producer_factory
        self.close_timeout_s = close_timeout_s
        self.linger_s = linger_s
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        self._queue = queue.Queue(maxsize=self._queue_size)
        self.queue = self._queue
        self._thread = None
        self._start_lock = threading.Lock()

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        """A copy with its message made now and the context's fields on it (it is formatted later, elsewhere)."""
        prepared = copy.copy(record)
        prepared.msg = record.getMessage()
        prepared.args = None
        enrich(prepared)
        return prepared

    def enqueue(self, record: logging.LogRecord) -> None:
        if self._thread is None:
            self._start()
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            DROPPED.labels("queue_full").inc()

    def handleError(self, record: logging.LogRecord) -> None:
        DROPPED.labels("error").inc()  # never a traceback on stderr, never an exception to the caller

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="log-shipper", daemon=True)
                thread.start()
                self._thread = thread

    def _delivered(self, err: object, _msg: object) -> None:
        if err is not None:
            DROPPED.labels("undelivered").inc()

    def _run(self) -> None:
        producer: LogProducer | None = None
        source = self._queue
        stopping = False
        while not stopping:
            try:
                records = [source.get(timeout=0.25)]
            except queue.Empty:
                records = []
            if records and records[0] is not _STOP and self.linger_s:
                # Records logged meanwhile are queued without waking this thread: one wake-up (and
                # one GIL hand-over) per ``linger_s``, not one per record.
                time.sleep(self.linger_s)
            with contextlib.suppress(queue.Empty):
                while len(records) < _DRAIN:
                    records.append(source.get_nowait())
            for index, record in enumerate(records):
                if record is _STOP:
                    records, stopping = records[:index], True
                    break
            if producer is None and records:
                try:
                    producer = self.producer_factory()
                except Exception:  # noqa: BLE001 - a producer that cannot be made costs the records, not the process
                    DROPPED.labels("error").inc(len(records))
                    continue
            if producer is None:
                continue
            for record in records:
                self._produce(producer, record)
            with contextlib.suppress(Exception):  # the delivery callbacks count what is lost
                producer.poll(0)
        if producer is not None:
            with contextlib.suppress(Exception):
                DROPPED.labels("undelivered").inc(producer.flush(self.close_timeout_s))  # what is left is lost

    def _produce(self, producer: LogProducer, record: logging.LogRecord) -> None:
        try:
            value = self.ecs.document(record)
        except Exception:  # noqa: BLE001 - a record that cannot be formatted is counted, not raised
            DROPPED.labels("error").inc()
            return
        try:
            producer.produce(self.topic, value=value, key=self.key, on_delivery=self._delivered)
        except BufferError:
            DROPPED.labels("buffer_full").inc()
        except Exception:  # noqa: BLE001 - KafkaException and the like: counted
            DROPPED.labels("error").inc()

    def close(self) -> None:
        """Ship what is queued, waiting at most ``close_timeout_s`` (at exit, ``logging.shutdown`` calls it)."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            stop = 1
            try:
                self._queue.put(_STOP, timeout=self.close_timeout_s)
            except queue.Full:
                stop = 0
            thread.join(self.close_timeout_s * 2)
            if thread.is_alive():  # still busy: what it has not taken is lost
                DROPPED.labels("undelivered").inc(max(0, self._queue.qsize() - stop))
        self._thread = None
        super().close()


def kafka_producer(settings: Settings, principal: str, message_timeout_ms: int = 30_000) -> Callable[[], LogProducer]:
    """A factory of the shipper's producer: batched, compressed, quiet, bounded in memory.

    A record Kafka has not acknowledged within ``message_timeout_ms`` is given up (and counted).
    """

    def make() -> LogProducer:
        from confluent_kafka import Producer  # only in a process that ships

        config: dict[str, str | int | float | bool] = {
            **client_config(settings, principal),
            "client.id": f"logs-{principal}",
            "linger.ms": 200,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 20_000,
            "queue.buffering.max.kbytes": 16_384,
            "message.timeout.ms": message_timeout_ms,
            "acks": 1,
            # librdkafka's own complaints would go to stderr (the console) on every reconnect: what
            # the shipper loses is counted in shop_log_records_dropped_total instead.
            "log_level": 0,
        }
        return cast(LogProducer, Producer(config))

    return make


def setup_logging(
    settings: Settings, service: str, principal: str | None, services: Mapping[str, str] | None = None
) -> KafkaShipper | None:
    """Configure this process's logging (once, at its entry point); the shipper, when shipping.

    ``service`` becomes ``service.name`` (``ingress``, ``sink-search``, ``supervisor``, ``cli``,
    a flow group's flows joined by ``-``), unless ``services`` names another for the record's
    logger (each flow of a group: ``{"flows.orders": "orders"}``); ``principal`` is the Kafka
    principal the shipper logs in as (None: no shipping).
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        with contextlib.suppress(Exception):
            handler.close()
    root.setLevel(logging.WARNING)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(settings.log_level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    if settings.log_console != "off":
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(
            EcsFormatter(service, services) if settings.log_console == "json" else HumanFormatter(sys.stderr.isatty())
        )
        console.addFilter(_ConsoleFilter(settings.log_console_access))
        root.addHandler(console)
    shipper = None
    if settings.log_ship and principal is not None:
        shipper = KafkaShipper(
            LOGS.name_for(settings.topic_prefix),
            service,
            kafka_producer(settings, principal),
            settings.log_queue_size,
            services=services,
        )
        root.addHandler(shipper)
    logging.captureWarnings(True)
    return shipper
