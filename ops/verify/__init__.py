"""``shopstream verify``: read every topic and store once, prove the system's invariants or list each breach.

The topics are read from their start to the end offsets found when verify starts
(``read_committed``), then the stores; nothing is written anywhere. The checks:

- ``orders-settled``: every accepted order reached a terminal state or is within its deadline;
- ``one-terminal-state`` and ``lifecycle``: no order both confirmed and cancelled, events in lifecycle order;
- ``stock``: per SKU, never more sold than stocked, nor reserved than on hand;
- ``money``: per order and per currency, authorized, captured, voided and refunded add up;
- ``notifications-once``: no notification sent twice;
- ``event-log``: every event decodes and carries a version, used once per key;
- ``dlq-reasons``: every dead letter carries its reason;
- ``store-*``: PostgreSQL, Redis, the search store and MongoDB hold each entity's newest version.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ops import dlq
from ops.verify import invariants, stores
from ops.verify.eventlog import check_topology, read_log
from ops.verify.report import Breach, Check, Report
from topology.settings import Settings
from topology.topics import ORDER_COMMANDS

__all__ = ["Breach", "Check", "Report", "verify"]


def verify(settings: Settings, now: datetime, grace: timedelta, replica: bool = False) -> Report:
    """Every check against what the topics and stores hold now; raises ``CannotVerify`` when one cannot be read.

    ``grace`` is how long the saga may take to act on a deadline once it has passed;
    ``replica`` reads PostgreSQL from the read replica instead of the primary.
    """
    topics = check_topology(settings)
    log = read_log(settings)
    letters = dlq.list_records(settings)
    grew = stores.LogGrowth(settings, log)
    timing = invariants.Timing(timedelta(seconds=settings.order_step_timeout_s), grace, now)
    checks = [
        invariants.orders_settled(log, timing),
        invariants.one_terminal_state(log, timedelta(milliseconds=ORDER_COMMANDS.retention_ms), now),
        invariants.lifecycle(log),
        invariants.stock(log),
        invariants.money(log, timing),
        invariants.notifications_once(log),
        invariants.event_log(log),
        invariants.dead_letters(letters),
        stores.postgres(settings, log, grew, replica),
        stores.redis(settings, log, grew, now),
        stores.search(settings, log, grew),
        stores.mongo(settings, log, grew),
    ]
    return Report(settings.topic_prefix, now, log.records + len(letters), topics, checks)
