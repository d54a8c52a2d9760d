"""Dead letter queues for operators: list, show, replay (once), purge.

A record's id is ``DLQ_TOPIC/PARTITION/OFFSET``. Replays are recorded in the compacted
``shop.dlq.replays`` topic, keyed by that id, after the record is back on its original
topic; a record already recorded there is not sent again (``--force`` overrides), and
downstream stages deduplicate by envelope id, so a replay never doubles an effect.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from confluent_kafka import Message, Producer, TopicPartition
from confluent_kafka.admin import OffsetSpec

from ops.exceptions import OpsError
from ops.kafka_admin import admin_client, end_offsets, list_offsets, read_to_end
from topology.access import OPERATOR
from topology.dlq import H_REPLAYED_FROM, DeadLetter
from topology.exceptions import DecodeError
from topology.kafka_client import client_config
from topology.settings import PROJECT_ROOT, Settings
from topology.topics import DLQ_REPLAYS, DLQ_SUFFIX, all_topics

ID_PATTERN = re.compile(r"^(?P<topic>[A-Za-z0-9._-]+)/(?P<partition>\d+)/(?P<offset>\d+)$")
DURATION = re.compile(r"^(?P<n>\d+)(?P<unit>[smhd])$")


class DlqError(OpsError):
    pass


@dataclass(frozen=True)
class DlqRecord:
    id: str
    dlq_topic: str
    partition: int
    offset: int
    timestamp: datetime
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    letter: DeadLetter | None
    problem: str | None  # set when the DLQ record itself is undecodable
    replayed: dict[str, object] | None = None

    def summary(self) -> dict[str, object]:
        letter = self.letter
        return {
            "id": self.id,
            "original_topic": letter.topic if letter else None,
            "original_partition": letter.partition if letter else None,
            "original_offset": letter.offset if letter else None,
            "stage": letter.stage if letter else None,
            "attempts": letter.attempts if letter else None,
            "failed_at": (letter.failed_at if letter else self.timestamp).isoformat(),
            "error": letter.error if letter else self.problem,
            "replayed": self.replayed,
        }


def parse_since(text: str, now: datetime) -> datetime:
    """An aware ISO-8601 time, or a duration back from now such as ``90s``, ``15m``, ``2h``, ``7d``."""
    match = DURATION.match(text)
    if match:
        seconds = int(match["n"]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match["unit"]]
        return now - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise DlqError(
            f"bad time {text!r}: give an ISO-8601 time with a zone (2026-11-25T10:00:00Z) "
            "or a duration such as 15m, 2h, 7d"
        ) from None
    if moment.tzinfo is None:
        raise DlqError(f"bad time {text!r}: it has no time zone; add Z or +00:00")
    return moment


def dlq_topics(settings: Settings, topic: str | None = None) -> list[str]:
    """Broker names of the dead letter topics, all or the one for ``topic`` (original or DLQ name)."""
    prefix = settings.topic_prefix
    names = [t.name_for(prefix) for t in all_topics() if t.name.endswith(DLQ_SUFFIX)]
    if topic is None:
        return names
    for candidate in (topic, topic + DLQ_SUFFIX, prefix + topic, prefix + topic + DLQ_SUFFIX):
        if candidate in names:
            return [candidate]
    raise DlqError(
        f"unknown topic {topic!r}: it has no dead letter topic\n  fix: pick from "
        + ", ".join(n.removesuffix(DLQ_SUFFIX) for n in names)
    )


def _replays(settings: Settings) -> dict[str, dict[str, object]]:
    log: dict[str, dict[str, object]] = {}
    for msg in read_to_end(settings, [DLQ_REPLAYS.name_for(settings.topic_prefix)]):
        if msg.key() is not None and msg.value() is not None:
            log[msg.key().decode()] = json.loads(msg.value())
    return log


def _record(msg: Message, replays: dict[str, dict[str, object]]) -> DlqRecord:
    record_id = f"{msg.topic()}/{msg.partition()}/{msg.offset()}"
    headers = [(k, v) for k, v in (msg.headers() or []) if v is not None]
    letter: DeadLetter | None = None
    problem: str | None = None
    try:
        letter = DeadLetter.from_headers(headers)
    except DecodeError as err:
        problem = str(err)
    _, ts = msg.timestamp()
    return DlqRecord(
        record_id,
        msg.topic(),
        msg.partition(),
        msg.offset(),
        datetime.fromtimestamp(ts / 1000, UTC),
        msg.key(),
        msg.value(),
        headers,
        letter,
        problem,
        replays.get(record_id),
    )


def list_records(
    settings: Settings, topic: str | None = None, since: datetime | None = None, ids: list[str] | None = None
) -> list[DlqRecord]:
    wanted = set(ids or [])
    topics = dlq_topics(settings, topic)
    if wanted:
        for record_id in wanted:
            match = ID_PATTERN.match(record_id)
            if match is None:
                raise DlqError(f"bad DLQ id {record_id!r}: expected DLQ_TOPIC/PARTITION/OFFSET, as `dlq list` shows")
        topics = sorted({ID_PATTERN.match(i)["topic"] for i in wanted})  # type: ignore[index]
        known = set(dlq_topics(settings))
        stray = [t for t in topics if t not in known]
        if stray:
            raise DlqError(f"{', '.join(stray)} is not a dead letter topic")
    replays = _replays(settings)
    records = [_record(msg, replays) for msg in read_to_end(settings, topics)]
    if wanted:
        records = [r for r in records if r.id in wanted]
        missing = wanted - {r.id for r in records}
        if missing:
            raise DlqError(f"no DLQ record {', '.join(sorted(missing))} (purged, or never there)")
    if since is not None:
        records = [r for r in records if (r.letter.failed_at if r.letter else r.timestamp) >= since]
    return sorted(records, key=lambda r: (r.letter.failed_at if r.letter else r.timestamp, r.id))


@dataclass(frozen=True)
class ReplayResult:
    id: str
    outcome: str  # "replayed", "already replayed", "skipped"
    detail: str


def replay(settings: Settings, records: list[DlqRecord], now: datetime, force: bool = False) -> list[ReplayResult]:
    """Send each record back to its original topic, once, and record that it was sent."""
    producer = Producer(
        {**client_config(settings, OPERATOR), "enable.idempotence": True, "acks": "all", "log_level": 0}
    )
    results: list[ReplayResult] = []
    for record in records:
        if record.letter is None:
            results.append(ReplayResult(record.id, "skipped", f"cannot replay: {record.problem}"))
            continue
        if record.replayed is not None and not force:
            results.append(
                ReplayResult(
                    record.id, "already replayed", f"at {record.replayed.get('replayed_at')}; --force sends it again"
                )
            )
            continue
        delivered: list[Message] = []
        headers = [(k, v) for k, v in record.headers if not k.startswith("dlq.")]
        headers.append((H_REPLAYED_FROM, record.id.encode()))
        producer.produce(
            record.letter.topic,
            record.value,
            key=record.key,
            headers=headers,
            on_delivery=lambda err, msg, sent=delivered: sent.append(msg) if err is None else None,
        )
        if producer.flush(15) != 0 or not delivered:
            results.append(ReplayResult(record.id, "skipped", f"could not deliver to {record.letter.topic}"))
            continue
        target = delivered[0]
        log_value = {
            "id": record.id,
            "replayed_at": now.isoformat(),
            "topic": target.topic(),
            "partition": target.partition(),
            "offset": target.offset(),
        }
        producer.produce(
            DLQ_REPLAYS.name_for(settings.topic_prefix), json.dumps(log_value).encode(), key=record.id.encode()
        )
        if producer.flush(15) != 0:
            raise DlqError(f"{record.id} was replayed but recording it failed; a second replay may resend it")
        results.append(
            ReplayResult(record.id, "replayed", f"to {target.topic()}/{target.partition()}/{target.offset()}")
        )
    return results


def purge(settings: Settings, before: datetime, topic: str | None = None) -> dict[str, int]:
    """Delete DLQ records older than ``before``; returns how many went, per partition."""
    admin, meta = admin_client(settings)
    partitions = [
        TopicPartition(t, p) for t in dlq_topics(settings, topic) if t in meta.topics for p in meta.topics[t].partitions
    ]
    if not partitions:
        return {}
    cutoff_ms = int(before.timestamp() * 1000)
    at_time = list_offsets(admin, partitions, lambda: OffsetSpec.for_timestamp(cutoff_ms))
    ends = end_offsets(admin, partitions)
    starts = list_offsets(admin, partitions, OffsetSpec.earliest)
    cut: list[TopicPartition] = []
    for tp in partitions:
        key = (tp.topic, tp.partition)
        cut_at = ends[key] if at_time[key] < 0 else at_time[key]
        if cut_at > starts[key]:
            cut.append(TopicPartition(tp.topic, tp.partition, cut_at))
    deleted = {f"{tp.topic}/{tp.partition}": tp.offset - starts[tp.topic, tp.partition] for tp in cut}
    if not cut:
        return deleted

    proc = subprocess.run(
        [sys.executable, "-m", "ops.delete_records"],
        input=json.dumps(
            {"client": client_config(settings, OPERATOR), "cuts": [[tp.topic, tp.partition, tp.offset] for tp in cut]}
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=PROJECT_ROOT,
    )
    if proc.returncode != 0:
        raise DlqError(f"deleting DLQ records failed: {proc.stderr.strip()[-500:]}")
    return deleted
