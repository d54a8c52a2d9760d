"""A sink process: a Quix Streams application reading the topics its declaration names.

Run: ``shopstream sink NAME`` (``python -m sinks run NAME``). Offsets are committed by
Quix after each checkpoint, which is after the sink's ``write`` returned; the consumer
group is the one ``topology.processes`` declares, so ``topology lag`` sees it.
"""

from __future__ import annotations

import logging

from prometheus_client import start_http_server
from quixstreams import Application
from quixstreams.kafka.configuration import ConnectionConfig

from sinks.base import EventSink
from sinks.logs import LogSink
from sinks.mongo import MongoSink
from sinks.postgres import PostgresSink
from sinks.redis import RedisSink
from sinks.search import SearchSink
from topology import tracing
from topology.access import principal_name, principal_of
from topology.kafka_client import client_config
from topology.logs import setup_logging
from topology.runtime import tune_collector
from topology.settings import Settings

SINKS: dict[str, type[EventSink]] = {s.name: s for s in (PostgresSink, RedisSink, SearchSink, MongoSink, LogSink)}


def build_app(name: str, settings: Settings, sink: EventSink | None = None) -> tuple[Application, EventSink]:
    """The Quix application of one sink, and its sink (pass one to observe it in tests)."""
    sink = sink or SINKS[name](settings)
    prefix = settings.topic_prefix
    app = Application(
        broker_address=ConnectionConfig.from_librdkafka_dict(client_config(settings, principal_name(sink.process))),
        consumer_group=sink.process.group_for(prefix),
        auto_offset_reset="earliest",
        commit_interval=settings.sink_commit_interval_s,
        commit_every=settings.sink_commit_every,
        # Quix checks whether the checkpoint is due between polls, so the poll timeout bounds how
        # late past commit_interval the last records of a burst are written.
        consumer_poll_timeout=0.05,
        auto_create_topics=False,
        use_changelog_topics=False,
        state_dir=settings.stack_dir / "quix-state" / (prefix.rstrip(".") or "default") / name,
        # A crashed sink's partitions move to its restart (or a peer) after 10 s, not librdkafka's 45 s.
        consumer_extra_config={
            "isolation.level": "read_committed",
            "fetch.wait.max.ms": settings.kafka_fetch_wait_ms,
            "fetch.min.bytes": settings.kafka_fetch_min_bytes,
            "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 1_000,
        },
        loglevel=None,  # Quix logs through the process's handlers (topology/logs.py), from WARNING on
    )
    for topic in sink.process.consumes:
        stream = app.dataframe(app.topic(topic.name_for(prefix), value_deserializer="bytes", key_deserializer="bytes"))
        stream.sink(sink)
    return app, sink


def main(name: str) -> None:
    settings = Settings.from_env()
    tracing.configure(settings, f"sink-{name}")
    setup_logging(settings, f"sink-{name}", principal_of("sink", name))
    if settings.metrics_port and settings.metrics_enabled:
        try:
            start_http_server(settings.metrics_port, addr=settings.host)
        except OSError as err:  # telemetry only: the sink writes on without it
            logging.getLogger(__name__).warning(
                "no metrics: port %s is taken (%s); see SHOP_METRICS_PORTS", settings.metrics_port, err.strerror
            )
    app, sink = build_app(name, settings)
    tune_collector()
    try:
        app.run()
    finally:
        sink.close()
