"""Who may do what on Kafka: one principal per process, its grants derived from what it consumes and produces.

Least privilege, read off ``topology.processes``: a process READs the topics it consumes and
its consumer group, WRITEs the topics it produces, the dead letter topics of what it
consumes (a flow or sink that gives up on a record sends it there, ``topology/dlq.py``) and
``shop.logs`` (where every process ships its log records, ``topology/logs.py``). The
operator (the ``shopstream`` CLI, and the local broker itself) is a super user and has no
grants. A partner's principal may only WRITE its own topic of each family partners produce to.

Names are before the topic prefix: ``ops/kafka_access.py`` binds them under the prefix in
use, as literal names, except a per-partner family, read by the prefix its members share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from topology.processes import EXTERNAL_PRODUCERS, PROCESSES, Process
from topology.topics import LOGS, PARTNER, Topic

#: The operator's principal: a super user of the broker.
OPERATOR = "operator"

Operation = Literal["read", "write", "describe-configs"]


@dataclass(frozen=True)
class Grant:
    """One permission on one topic or group name (or on every name with that prefix)."""

    operation: Operation
    resource: Literal["topic", "group"]
    name: str
    pattern: Literal["literal", "prefixed"] = "literal"

    def name_for(self, prefix: str = "") -> str:
        return f"{prefix}{self.name}"


@dataclass(frozen=True)
class Principal:
    """A Kafka user and everything it may do."""

    name: str
    grants: tuple[Grant, ...]


def principal_name(process: Process) -> str:
    """The principal a process logs in as: ``ingress``, ``flow-NAME``, ``sink-NAME``."""
    return process.name if process.kind == "http" else f"{process.kind}-{process.name}"


def principal_of(kind: Literal["http", "flow", "sink"], name: str) -> str:
    """The principal of the process of that kind and name (a KeyError for an undeclared one)."""
    for process in PROCESSES:
        if process.kind == kind and process.name == name:
            return principal_name(process)
    raise KeyError(f"no {kind} process {name!r}")


def _reads(topic: Topic) -> Grant:
    if topic.per_partner:
        return Grant("read", "topic", topic.name.split(PARTNER)[0], "prefixed")
    return Grant("read", "topic", topic.name)


def grants_of(process: Process) -> tuple[Grant, ...]:
    """Everything the process does on Kafka, and nothing more."""
    grants = [_reads(t) for t in process.consumes]
    if process.group:
        grants.append(Grant("read", "group", process.group))
    grants += [Grant("write", "topic", t.name) for t in process.produces]
    grants += [Grant("write", "topic", t.dead_letter.name) for t in process.consumes if t.dead_letter]
    grants.append(Grant("write", "topic", LOGS.name))  # every process ships its log records (topology/logs.py)
    if process.kind == "sink":
        # Quix Streams checks the configuration of every topic it reads before it starts.
        grants += [Grant("describe-configs", "topic", t.name) for t in process.consumes]
    return tuple(dict.fromkeys(grants))


#: Every process's principal and its grants.
PRINCIPALS: tuple[Principal, ...] = tuple(Principal(principal_name(p), grants_of(p)) for p in PROCESSES)


def partner_principal(partner_id: str) -> Principal:
    """A partner's principal: WRITE on its own topic of each family partners produce to."""
    topics = [t.for_partner(partner_id) for t in EXTERNAL_PRODUCERS["partners"] if t.per_partner]
    return Principal(f"partner-{partner_id}", tuple(Grant("write", "topic", t.name) for t in topics))
