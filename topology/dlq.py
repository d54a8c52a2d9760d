"""The dead letter record: the original bytes untouched, everything else in headers.

Every stage that gives up on a record (a flow, a sink, the partner command validator)
produces it to the dead letter topic of the topic it came from, with the original key
and value and these headers. Operators read them with ``shopstream dlq``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from topology.exceptions import DecodeError
from topology.topics import DLQ_SUFFIX

H_TOPIC = "dlq.original.topic"
H_PARTITION = "dlq.original.partition"
H_OFFSET = "dlq.original.offset"
H_ERROR = "dlq.error"
H_STAGE = "dlq.stage"
H_ATTEMPTS = "dlq.attempts"
H_FAILED_AT = "dlq.failed_at"
H_REPLAYED_FROM = "dlq.replayed_from"
REQUIRED = (H_TOPIC, H_PARTITION, H_OFFSET, H_ERROR, H_STAGE, H_ATTEMPTS, H_FAILED_AT)
MAX_ERROR = 2000

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True)
class DeadLetter:
    """Why and where a record failed."""

    topic: str
    partition: int
    offset: int
    error: str
    stage: str
    attempts: int
    failed_at: datetime

    @property
    def dead_letter_topic(self) -> str:
        return self.topic + DLQ_SUFFIX

    def headers(self, original: Headers | None = None) -> Headers:
        """The original headers (minus old DLQ ones) followed by this failure's."""
        kept = [(k, v) for k, v in original or [] if not k.startswith("dlq.")]
        return [
            *kept,
            (H_TOPIC, self.topic.encode()),
            (H_PARTITION, str(self.partition).encode()),
            (H_OFFSET, str(self.offset).encode()),
            (H_ERROR, self.error[:MAX_ERROR].encode()),
            (H_STAGE, self.stage.encode()),
            (H_ATTEMPTS, str(self.attempts).encode()),
            (H_FAILED_AT, self.failed_at.astimezone(UTC).isoformat().encode()),
        ]

    @classmethod
    def from_headers(cls, headers: Headers | None) -> DeadLetter:
        """Read the failure back; a DecodeError says what is missing or malformed."""
        found: dict[str, bytes] = {}
        for key, value in headers or []:
            if key.startswith("dlq.") and value is not None:
                found[key] = value
        missing = [h for h in REQUIRED if h not in found]
        if missing:
            raise DecodeError(f"undecodable DLQ record: missing headers {', '.join(missing)}")
        try:
            failed_at = datetime.fromisoformat(found[H_FAILED_AT].decode())
            if failed_at.tzinfo is None:
                raise ValueError("naive failed_at")
            return cls(
                topic=found[H_TOPIC].decode(),
                partition=int(found[H_PARTITION]),
                offset=int(found[H_OFFSET]),
                error=found[H_ERROR].decode(errors="replace"),
                stage=found[H_STAGE].decode(errors="replace"),
                attempts=int(found[H_ATTEMPTS]),
                failed_at=failed_at,
            )
        except (ValueError, UnicodeDecodeError) as err:
            raise DecodeError(f"undecodable DLQ record: malformed header ({err})") from None
