"""``shopstream topology ...`` and ``shopstream dlq ...``."""

from __future__ import annotations

import base64
import json
import subprocess
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import typer

from ops import dlq as dlq_ops
from ops import topology_admin
from ops.exceptions import OpsError
from ops.kafka_admin import BrokerUnreachable
from ops.output import EXIT_DOWN, EXIT_USAGE, emit, settings_or_exit
from topology import schemas
from topology.exceptions import SchemaEvolutionError
from topology.graph import build_graph, to_dot, to_mermaid
from topology.processes import PROCESSES, ROUTES
from topology.settings import PROJECT_ROOT
from topology.topics import all_topics

topology_app = typer.Typer(no_args_is_help=True, help="The messaging layer as declared in topology/.")
dlq_app = typer.Typer(no_args_is_help=True, help="Dead letter queues: inspect, replay, purge.")
JSON = typer.Option(False, "--json", help="Machine-readable output.")


def _fail(err: OpsError) -> typer.Exit:
    typer.echo(f"error: {err}", err=True)
    return typer.Exit(EXIT_DOWN if isinstance(err, BrokerUnreachable) else EXIT_USAGE)


@topology_app.command("apply")
def apply_cmd(
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan only."), as_json: bool = JSON
) -> None:
    """Create missing topics, raise partition counts, grant each process its ACLs, report drift (never deletes)."""
    try:
        steps = topology_admin.apply(settings_or_exit(), dry_run=dry_run)
    except OpsError as err:
        raise _fail(err) from err
    emit([asdict(s) for s in steps], ("action", "topic", "done", "detail"), as_json)
    if not as_json:
        kinds = ("create", "raise-partitions", "drift", "undeclared", "grant", "revoke")
        counts = {a: sum(s.action == a for s in steps) for a in kinds}
        verb = "would" if dry_run else "did"
        typer.echo(
            f"\n{verb}: create {counts['create']}, raise {counts['raise-partitions']}, grant {counts['grant']} "
            f"and revoke {counts['revoke']} ACLs; drift {counts['drift']}, undeclared {counts['undeclared']} "
            "(left alone)"
        )


@topology_app.command("describe")
def describe_cmd(as_json: bool = JSON) -> None:
    """Every declared topic, consumer group and HTTP route."""
    prefix = settings_or_exit().topic_prefix
    topics = [
        {
            "topic": t.name_for(prefix),
            "partitions": t.partitions,
            "rf": t.replication,
            "cleanup": t.cleanup,
            "retention_h": t.retention_ms // 3_600_000 if t.retention_ms >= 0 else "forever",
            "key": t.key,
            "dlq": t.dead_letter.name_for(prefix) if t.dead_letter else None,
            "messages": ", ".join(m.TYPE for m in t.messages),
        }
        for t in all_topics()
    ]
    groups = [
        {
            "process": p.name,
            "kind": p.kind,
            "group": p.group_for(prefix),
            "consumes": ", ".join(t.name_for(prefix) for t in p.consumes),
            "produces": ", ".join(t.name_for(prefix) for t in p.produces),
            "stores": ", ".join(p.writes + p.reads),
            "calls": ", ".join(p.calls),
        }
        for p in PROCESSES
    ]
    routes = [
        {
            "method": r.method,
            "path": r.path,
            "summary": r.summary,
            "writes": r.writes.name_for(prefix) if r.writes else None,
            "reads": r.reads,
        }
        for r in ROUTES
    ]
    if as_json:
        typer.echo(json.dumps({"topics": topics, "processes": groups, "routes": routes}, indent=2, default=str))
        return
    emit(topics, ("topic", "partitions", "rf", "cleanup", "retention_h", "key", "messages"), False)
    typer.echo("")
    emit(groups, ("process", "kind", "group", "consumes", "produces", "stores", "calls"), False)
    typer.echo("")
    emit(routes, ("method", "path", "writes", "reads", "summary"), False)


@topology_app.command("graph")
def graph_cmd(
    fmt: str = typer.Option("mermaid", "--format", "-f", help="mermaid or dot."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to a file instead of stdout."),  # noqa: B008
    update_docs: bool = typer.Option(False, "--update-docs", help="Refresh the graph in docs/architecture.md."),
) -> None:
    """The graph of routes, topics, flows, groups, sinks and stores, from the declarations."""
    if update_docs:
        GRAPH_DOC.write_text(with_graph(GRAPH_DOC.read_text(), to_mermaid(build_graph())))
        typer.echo(f"updated {GRAPH_DOC}")
        return
    renderers = {"mermaid": to_mermaid, "dot": to_dot}
    if fmt not in renderers:
        typer.echo(f"error: unknown format {fmt!r}; pick mermaid or dot", err=True)
        raise typer.Exit(EXIT_USAGE)
    text = renderers[fmt](build_graph())
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
        typer.echo(f"wrote {output}")


@topology_app.command("lag")
def lag_cmd(group: list[str] = typer.Option(None, "--group", "-g"), as_json: bool = JSON) -> None:  # noqa: B008
    """Per consumer group and partition: committed offset, end offset, lag."""
    try:
        rows = topology_admin.lag(settings_or_exit(), group or None)
    except OpsError as err:
        raise _fail(err) from err
    emit(
        [{**asdict(r), "lag": r.lag} for r in rows], ("group", "topic", "partition", "committed", "end", "lag"), as_json
    )


@topology_app.command("health")
def health_cmd(as_json: bool = JSON) -> None:
    """Every server and every consumer group, one line each; exit 1 when something is down."""
    try:
        rows = topology_admin.health(settings_or_exit())
    except OpsError as err:
        raise _fail(err) from err
    emit([{**asdict(r), "state": "ok" if r.ok else "DOWN"} for r in rows], ("kind", "name", "state", "detail"), as_json)
    if not all(r.ok for r in rows):
        raise typer.Exit(EXIT_DOWN)


@topology_app.command("schemas")
def schemas_cmd(write: bool = typer.Option(False, "--write", help="Update topology/schemas.lock.json.")) -> None:
    """Check the message registry against the schema lock; --write records a compatible change."""
    if write:
        try:
            schemas.write_lock()
        except SchemaEvolutionError as err:
            typer.echo(f"error: {err}\n  fix: add a new message version instead of changing this one", err=True)
            raise typer.Exit(EXIT_USAGE) from err
        typer.echo(f"wrote {schemas.LOCK_FILE}")
        return
    problems = schemas.incompatibilities(schemas.read_lock(), schemas.snapshot())
    if problems:
        typer.echo("incompatible with the lock:\n  " + "\n  ".join(problems), err=True)
        raise typer.Exit(EXIT_DOWN)
    if schemas.read_lock() != schemas.snapshot():
        typer.echo("compatible changes not yet in the lock: run `shopstream topology schemas --write`", err=True)
        raise typer.Exit(EXIT_DOWN)
    typer.echo(f"{len(schemas.snapshot()['messages'])} message types match the lock")


# -- dlq --------------------------------------------------------------------
def _since(value: str | None) -> datetime | None:
    return dlq_ops.parse_since(value, datetime.now(UTC)) if value else None


DLQ_COLUMNS = ("id", "original_topic", "stage", "attempts", "failed_at", "replayed", "error")


@dlq_app.command("list")
def dlq_list(
    topic: str | None = typer.Option(None, "--topic", "-t", help="Original topic or its DLQ."),
    since: str | None = typer.Option(None, "--since", help="ISO time with zone, or 15m / 2h / 7d."),
    as_json: bool = JSON,
) -> None:
    """Every dead letter record with its reason."""
    try:
        records = dlq_ops.list_records(settings_or_exit(), topic, _since(since))
    except OpsError as err:
        raise _fail(err) from err
    emit(
        [{**r.summary(), "replayed": bool(r.replayed)} if not as_json else r.summary() for r in records],
        DLQ_COLUMNS,
        as_json,
    )


@dlq_app.command("show")
def dlq_show(record_id: str = typer.Argument(..., metavar="ID"), as_json: bool = JSON) -> None:
    """One record: the failure, the headers and the original bytes."""
    try:
        [record] = dlq_ops.list_records(settings_or_exit(), ids=[record_id])
    except OpsError as err:
        raise _fail(err) from err
    detail: dict[str, object] = {
        **record.summary(),
        "key": _text(record.key),
        "headers": {k: _text(v) for k, v in record.headers},
        "value": _text(record.value),
    }
    if as_json:
        typer.echo(json.dumps(detail, indent=2, default=str))
        return
    for name, value in detail.items():
        typer.echo(f"{name:>18}: {value}")


def _text(data: bytes | None) -> str | None:
    if data is None:
        return None
    try:
        return data.decode()
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(data).decode()


@dlq_app.command("replay")
def dlq_replay(
    topic: str | None = typer.Option(None, "--topic", "-t"),
    since: str | None = typer.Option(None, "--since"),
    record_id: list[str] = typer.Option(None, "--id"),  # noqa: B008
    force: bool = typer.Option(False, "--force", help="Send again records already replayed."),
    as_json: bool = JSON,
) -> None:
    """Send records back to their original topic, once each, and record that it was done."""
    settings = settings_or_exit()
    try:
        records = dlq_ops.list_records(settings, topic, _since(since), record_id or None)
        results = dlq_ops.replay(settings, records, datetime.now(UTC), force=force)
    except OpsError as err:
        raise _fail(err) from err
    emit([asdict(r) for r in results], ("id", "outcome", "detail"), as_json)
    if any(r.outcome == "skipped" for r in results):
        raise typer.Exit(EXIT_DOWN)


@dlq_app.command("purge")
def dlq_purge(
    before: str = typer.Option(..., "--before", help="ISO time with zone, or a duration back from now (7d)."),
    topic: str | None = typer.Option(None, "--topic", "-t"),
    as_json: bool = JSON,
) -> None:
    """Delete dead letter records older than --before."""
    try:
        cutoff = dlq_ops.parse_since(before, datetime.now(UTC))
        deleted = dlq_ops.purge(settings_or_exit(), cutoff, topic)
    except OpsError as err:
        raise _fail(err) from err
    emit([{"partition": k, "deleted": v} for k, v in deleted.items()], ("partition", "deleted"), as_json)


#: The document that holds the generated graph, between these markers.
GRAPH_DOC = PROJECT_ROOT / "docs" / "architecture.md"
GRAPH_START = "<!-- topology-graph:start -->"
GRAPH_END = "<!-- topology-graph:end -->"


def with_graph(document: str, mermaid: str) -> str:
    """The document's text with the generated graph between its markers."""
    head, _, rest = document.partition(GRAPH_START)
    _, _, tail = rest.partition(GRAPH_END)
    return f"{head}{GRAPH_START}\n```mermaid\n{mermaid}```\n{GRAPH_END}{tail}"


def mermaid_check(text: str) -> subprocess.CompletedProcess[str]:
    """Parse Mermaid text with the real mermaid parser (node, ops/mermaid)."""
    script = PROJECT_ROOT / "ops" / "mermaid" / "check.mjs"
    return subprocess.run(["node", str(script)], input=text, capture_output=True, text=True, timeout=60, check=False)


__all__ = ["dlq_app", "mermaid_check", "topology_app"]
