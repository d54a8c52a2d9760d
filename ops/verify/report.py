"""What ``shopstream verify`` found: one result per invariant, each breach with the ids it is about."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Breach:
    check: str
    ids: dict[str, str]
    detail: str

    def to_json(self) -> dict[str, object]:
        return {"check": self.check, "ids": self.ids, "detail": self.detail}


@dataclass
class Check:
    """One invariant: how many things it looked at, what breaks it, and counts worth knowing (``notes``)."""

    name: str
    rule: str
    checked: int = 0
    breaches: list[Breach] = field(default_factory=list)
    notes: dict[str, object] = field(default_factory=dict)

    def breach(self, detail: str, **ids: object) -> None:
        self.breaches.append(Breach(self.name, {k: str(v) for k, v in ids.items()}, detail))

    def count(self, note: str) -> None:
        """One more of ``note`` (a count in ``notes``)."""
        current = self.notes.get(note, 0)
        self.notes[note] = (current if isinstance(current, int) else 0) + 1

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "rule": self.rule,
            "checked": self.checked,
            "notes": self.notes,
            "breaches": [b.to_json() for b in self.breaches],
        }


@dataclass(frozen=True)
class Report:
    prefix: str
    started_at: datetime
    records: int  # Kafka records read, DLQ records included
    topics: int
    checks: list[Check]

    @property
    def breaches(self) -> list[Breach]:
        return [b for check in self.checks for b in check.breaches]

    @property
    def ok(self) -> bool:
        return not self.breaches

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "prefix": self.prefix,
            "started_at": self.started_at.isoformat(),
            "records": self.records,
            "topics": self.topics,
            "checks": [c.to_json() for c in self.checks],
        }
