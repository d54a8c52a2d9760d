"""The sinks' spans, when tracing is on (``topology.tracing``); off, ``batch`` is a shared no-op.

A batch written to the store is one ``<sink> write`` span whose links name the records it
wrote (the spans their ``traceparent`` headers name, up to the link limit). So that each
order's trace ends in the store too, every record whose trace is sampled also gets a
``<topic> store`` span, a child of its header's span, linked to the batch span and lasting
as long as the write.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from quixstreams.sinks import SinkBatch

from topology import tracing

_OFF: AbstractContextManager[None] = nullcontext()


def batch(sink: str, batches: Sequence[SinkBatch], records: Sequence[Any]) -> AbstractContextManager[Any]:
    """The span of one write of ``records`` (``sinks.base.Record``, decoded from ``batches``)."""
    if tracing.TRACER is None:
        return _OFF
    return _batch(sink, batches, records)


@contextmanager
def _batch(sink: str, batches: Sequence[SinkBatch], records: Sequence[Any]) -> Iterator[None]:
    tracer = tracing.tracer(f"sink-{sink}")
    topic_of = {id(item): b.topic for b in batches for item in b}
    parents = []
    for record in records:
        parent = tracing.span_context_of(tracing.header_of(record.item.headers))
        if parent is not None:
            parents.append((record, parent))
    started = time.time_ns()
    span = tracing.start_span(
        f"{sink} write",
        "CONSUMER",
        links=tracing.links_to(parent for _, parent in parents),
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.batch.message_count": len(records),
            "db.system.name": sink,
        },
        start_time=started,
        tracer=tracer,
    )
    failure: str | None = None
    try:
        yield
    except Exception as err:
        failure = f"{type(err).__name__}: {err}"
        raise
    finally:
        if failure is not None:
            tracing.fail(span, failure)
        batch_link = tracing.links_to([span.get_span_context()])
        for record, parent in parents:
            if not parent.trace_flags.sampled:
                continue
            envelope = record.envelope
            topic = topic_of.get(id(record.item), "")
            child = tracing.start_span(
                f"{topic} store",
                "CONSUMER",
                parent=parent,
                links=batch_link,
                attributes={
                    **tracing.messaging_attributes(topic, "process", record.item.key),
                    **tracing.message_attributes(envelope.type, envelope.id, envelope.payload),
                    "messaging.kafka.offset": record.item.offset,
                    "db.system.name": sink,
                },
                start_time=started,
                tracer=tracer,
            )
            if failure is not None:
                tracing.fail(child, failure)
            child.end()
        span.end()
