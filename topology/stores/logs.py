"""The daily log indices of the search store: ``{prefix}logs-YYYY.MM.DD``, one per UTC day.

Every day's index is made from one index template (``{prefix}logs``); the logs sink writes
each record to the index of its ``@timestamp``'s day and deletes the days past
``SHOP_LOG_RETENTION_DAYS`` (no ILM: it is ours to do, and the same on every server).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

KEYWORD = {"type": "keyword"}
TEXT = {"type": "text"}
DATE = {"type": "date"}
LONG = {"type": "long"}


@dataclass(frozen=True)
class DailyIndex:
    """One index per UTC day, ``{prefix}{name}-YYYY.MM.DD``, all from the template ``{prefix}{name}``.

    ``properties`` are the fields searched on; a document's other fields are kept in its
    source but not indexed (``dynamic: false``), so no record can grow the mapping.
    """

    name: str
    properties: dict[str, Any]

    def template(self, prefix: str) -> str:
        return f"{prefix}{self.name}"

    def pattern(self, prefix: str) -> str:
        """Every day's index (for searches and the template)."""
        return f"{prefix}{self.name}-*"

    def for_day(self, prefix: str, day: date) -> str:
        return f"{prefix}{self.name}-{day:%Y.%m.%d}"

    def day_of(self, prefix: str, index: str) -> date | None:
        """The day an index of this kind holds, or None for a name that is not one."""
        match = re.fullmatch(re.escape(f"{prefix}{self.name}-") + r"(\d{4}\.\d{2}\.\d{2})", index)
        if match is None:
            return None
        try:
            return datetime.strptime(match.group(1), "%Y.%m.%d").date()  # noqa: DTZ007 - a calendar day, no time
        except ValueError:
            return None

    @property
    def body(self) -> dict[str, Any]:
        """The index template's ``template``: one shard, no replica, the mappings."""
        return {
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            "mappings": {"dynamic": False, "properties": self.properties},
        }


def _object(**fields: dict[str, Any]) -> dict[str, Any]:
    return {"properties": fields}


#: ECS field names (nested, as Elasticsearch stores dotted names); ``shop.*`` is ours.
LOG_INDEX = DailyIndex(
    "logs",
    {
        "@timestamp": DATE,
        "message": TEXT,
        "log": _object(level=KEYWORD, logger=KEYWORD),
        "service": _object(name=KEYWORD),
        "process": _object(pid=LONG),
        "trace": _object(id=KEYWORD),
        "span": _object(id=KEYWORD),
        "event": _object(action=KEYWORD, dataset=KEYWORD, outcome=KEYWORD, duration=LONG),
        "shop": _object(order_id=KEYWORD),
        "labels": _object(correlation_id=KEYWORD),
        "http": _object(request=_object(method=KEYWORD), response=_object(status_code=LONG)),
        "url": _object(path=KEYWORD),
        "client": _object(ip=KEYWORD),
        "error": _object(type=KEYWORD, message=TEXT),
    },
)
