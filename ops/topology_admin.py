"""Operator views of the messaging layer: apply the declared topology, describe, lag, health.

Applying the topology also applies its access (``ops/kafka_access.py``): each process
principal's ACLs on the prefix's topics and groups, one step per ACL, named by its principal.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import ConfigResource, NewPartitions, NewTopic, ResourceType

from ops import kafka_access
from ops.exceptions import OpsError
from ops.kafka_admin import acls_enforced, admin_client, end_offsets
from ops.stack.launcher import Stack
from topology.processes import PROCESSES, consumer_groups
from topology.settings import Settings
from topology.topics import Topic, all_topics

Action = Literal["create", "raise-partitions", "ok", "drift", "undeclared", "grant", "revoke"]
WATCHED_CONFIGS = ("cleanup.policy", "retention.ms")
STALL_WINDOW_S = 2.0


@dataclass(frozen=True)
class PlanStep:
    action: Action
    topic: str
    detail: str
    done: bool = False


def plan(settings: Settings) -> list[PlanStep]:
    """Compare the declared topics with the broker; nothing is changed."""
    admin, meta = admin_client(settings)
    prefix = settings.topic_prefix
    declared = {t.name_for(prefix): t for t in all_topics()}
    existing = {name for name in meta.topics if not name.startswith("__")}
    steps: list[PlanStep] = []
    present = [name for name in declared if name in existing]
    configs: dict[str, dict[str, str]] = {}
    if present:
        resources = [ConfigResource(ResourceType.TOPIC, name) for name in present]
        for resource, future in admin.describe_configs(resources, request_timeout=10).items():
            entries = future.result(timeout=15)
            configs[resource.name] = {k: v.value for k, v in entries.items() if k in WATCHED_CONFIGS}
    for name, topic in declared.items():
        if name not in existing:
            steps.append(PlanStep("create", name, _describe(topic)))
            continue
        have = len(meta.topics[name].partitions)
        if have < topic.partitions:
            steps.append(PlanStep("raise-partitions", name, f"{have} -> {topic.partitions} partitions"))
        elif have > topic.partitions:
            steps.append(
                PlanStep(
                    "drift",
                    name,
                    f"has {have} partitions, declared {topic.partitions}; "
                    "partitions never shrink: change the declaration or recreate by hand",
                )
            )
        drift = [
            f"{k}={configs[name].get(k)} (declared {v})"
            for k, v in topic.config.items()
            if k in WATCHED_CONFIGS and configs.get(name, {}).get(k) != v
        ]
        if drift:
            steps.append(PlanStep("drift", name, "; ".join(drift) + "; not changed by apply"))
        elif have == topic.partitions:
            steps.append(PlanStep("ok", name, _describe(topic)))
    scope = prefix + "shop."
    for name in sorted(existing - declared.keys()):
        if name.startswith(scope):
            steps.append(
                PlanStep("undeclared", name, "on the broker but not declared; left alone (apply never deletes)")
            )
    if acls_enforced(settings):
        steps += [PlanStep(a.action, a.principal, a.detail) for a in kafka_access.plan(settings, admin)]
    return steps


def _describe(topic: Topic) -> str:
    retention = "forever" if topic.retention_ms < 0 else f"{topic.retention_ms // 3_600_000}h"
    return f"partitions={topic.partitions} rf={topic.replication} cleanup={topic.cleanup} retention={retention}"


def apply(settings: Settings, dry_run: bool = False) -> list[PlanStep]:
    """Create missing topics and raise partition counts; report the drift it will not fix. Idempotent."""
    steps = plan(settings)
    if dry_run:
        return steps
    admin, _ = admin_client(settings)
    declared = {t.name_for(settings.topic_prefix): t for t in all_topics()}
    creates = [s for s in steps if s.action == "create"]
    raises = [s for s in steps if s.action == "raise-partitions"]
    done: set[str] = set()
    if creates:
        new = [
            NewTopic(
                s.topic, declared[s.topic].partitions, declared[s.topic].replication, config=declared[s.topic].config
            )
            for s in creates
        ]
        for name, future in admin.create_topics(new, operation_timeout=30).items():
            _settle(future, name, "create")
            done.add(name)
    if raises:
        grow = [NewPartitions(s.topic, declared[s.topic].partitions) for s in raises]
        for name, future in admin.create_partitions(grow, operation_timeout=30).items():
            _settle(future, name, "raise partitions of")
            done.add(name)
    if done:
        _wait_until_visible(settings, {name: declared[name].partitions for name in done})
    granted: set[tuple[str, str]] = set()
    if acls_enforced(settings):
        acl_steps = kafka_access.plan(settings, admin)
        granted = {(a.principal, a.detail) for a in kafka_access.apply(settings, admin, acl_steps)}
    return [PlanStep(s.action, s.topic, s.detail, s.topic in done or (s.topic, s.detail) in granted) for s in steps]


def _wait_until_visible(settings: Settings, partitions: dict[str, int], timeout_s: float = 30.0) -> None:
    """Return once the broker's metadata shows what apply changed, so what runs next can use it."""
    deadline = time.monotonic() + timeout_s
    while True:
        _, meta = admin_client(settings)
        missing = [t for t, n in partitions.items() if t not in meta.topics or len(meta.topics[t].partitions) < n]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise OpsError(f"the broker does not show {', '.join(missing[:5])} {timeout_s:.0f} s after apply")
        time.sleep(0.1)


def _settle(future: object, name: str, verb: str) -> None:
    try:
        future.result(timeout=60)  # type: ignore[attr-defined]
    except KafkaException as err:
        if "already exists" in str(err).lower() or "TOPIC_ALREADY_EXISTS" in str(err):
            return  # another apply won the race: the outcome is the same
        raise OpsError(f"could not {verb} {name}: {err}") from None


@dataclass(frozen=True)
class LagRow:
    group: str
    topic: str
    partition: int
    committed: int | None
    end: int

    @property
    def lag(self) -> int:
        return self.end - (self.committed or 0) if self.committed is not None else self.end


def lag(settings: Settings, groups: list[str] | None = None) -> list[LagRow]:
    """Committed offset, end offset and lag per group and partition of the topics it consumes."""
    admin, meta = admin_client(settings)
    declared = consumer_groups(settings.topic_prefix)
    on_broker = {g.group_id for g in admin.list_consumer_groups(request_timeout=10).result().valid}
    wanted = groups or list(declared)
    unknown = [g for g in wanted if g not in declared and g not in on_broker]
    if unknown:
        raise OpsError(f"unknown consumer group {', '.join(unknown)}\n  fix: pick from {', '.join(sorted(declared))}")
    wanted_partitions: dict[str, list[TopicPartition]] = {}
    committed: dict[str, dict[tuple[str, int], int]] = {}
    for group in wanted:
        committed[group] = {}
        if group in on_broker:
            request = [ConsumerGroupTopicPartitions(group)]
            result = admin.list_consumer_group_offsets(request, request_timeout=10)[group].result()
            committed[group] = {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions if tp.offset >= 0}
        if group in declared:
            topics = [t.name_for(settings.topic_prefix) for t in declared[group].consumes]
        else:
            topics = sorted({topic for topic, _ in committed[group]})
        wanted_partitions[group] = [
            TopicPartition(topic, partition)
            for topic in topics
            if topic in meta.topics
            for partition in sorted(meta.topics[topic].partitions)
        ]
    unique = {(tp.topic, tp.partition): tp for tps in wanted_partitions.values() for tp in tps}
    ends = end_offsets(admin, list(unique.values()))
    return [
        LagRow(
            group, tp.topic, tp.partition, committed[group].get((tp.topic, tp.partition)), ends[tp.topic, tp.partition]
        )
        for group in wanted
        for tp in wanted_partitions[group]
        for key in [(tp.topic, tp.partition)]
    ]


@dataclass(frozen=True)
class HealthRow:
    kind: Literal["server", "group"]
    name: str
    ok: bool
    detail: str


def health(settings: Settings) -> list[HealthRow]:
    """Every server of the stack and every consumer group, one row each."""
    rows = [HealthRow("server", s.name, s.ok, f"{s.state} {s.address}") for s in Stack(settings).status()]
    if not next(r for r in rows if r.name == "kafka").ok:
        rows += [
            HealthRow("group", p.group_for(settings.topic_prefix) or p.name, False, "broker down")
            for p in PROCESSES
            if p.group
        ]
        return rows
    admin, _ = admin_client(settings)
    lag_by_group = _lag_by_group(settings)
    names = list(consumer_groups(settings.topic_prefix))
    waiting: list[str] = []
    described = admin.describe_consumer_groups(names, request_timeout=10)
    for name in names:
        try:
            members = len(described[name].result().members)
        except KafkaException:
            members = 0
        total, _ = lag_by_group.get(name, (0, 0))
        if members:
            rows.append(HealthRow("group", name, True, f"{members} members, lag {total}"))
        elif not total:
            rows.append(HealthRow("group", name, True, "idle (nothing waiting)"))
        else:
            waiting.append(name)
            rows.append(HealthRow("group", name, True, f"lag {total}"))
    if waiting:  # a group is stalled when records wait and its committed offsets do not move
        time.sleep(STALL_WINDOW_S)
        later = _lag_by_group(settings)
        for index, row in enumerate(rows):
            if row.kind == "group" and row.name in waiting:
                before, after = lag_by_group[row.name], later.get(row.name, (0, 0))
                if after[1] == before[1] and after[0] > 0:
                    rows[index] = HealthRow("group", row.name, False, f"lag {after[0]}, no progress: stalled")
                else:
                    rows[index] = HealthRow("group", row.name, True, f"consuming, lag {after[0]}")
    return rows


def _lag_by_group(settings: Settings) -> dict[str, tuple[int, int]]:
    """Per group: (total lag, sum of committed offsets)."""
    totals: dict[str, tuple[int, int]] = {}
    for row in lag(settings):
        total, committed = totals.get(row.group, (0, 0))
        totals[row.group] = (total + row.lag, committed + (row.committed or 0))
    return totals
