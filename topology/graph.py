"""The graph of the system, drawn from the declarations (never by hand).

Nodes are HTTP routes, topics, dead letter topics, processes (with their consumer
groups), stores and external services; ``to_mermaid`` and ``to_dot`` render the same
graph.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from topology.processes import EXTERNAL_PRODUCERS, PROCESSES, ROUTES, STORES
from topology.topics import TOPICS

NodeKind = Literal["route", "topic", "dlq", "flow", "sink", "http", "store", "external"]


@dataclass(frozen=True)
class Node:
    id: str
    label: str
    kind: NodeKind


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str
    dashed: bool = False


@dataclass
class Graph:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def add(self, kind: NodeKind, name: str, label: str | None = None) -> str:
        node_id = f"{kind}_{re.sub(r'[^A-Za-z0-9]+', '_', name).strip('_')}"
        self.nodes.setdefault(node_id, Node(node_id, label or name, kind))
        return node_id

    def link(self, source: str, target: str, label: str, dashed: bool = False) -> None:
        self.edges.append(Edge(source, target, label, dashed))


def build_graph() -> Graph:
    graph = Graph()
    for topic in TOPICS:
        tid = graph.add("topic", topic.name, f"{topic.name} ({topic.partitions}p, {topic.cleanup})")
        if topic.dead_letter is not None:
            graph.link(tid, graph.add("dlq", topic.dead_letter.name), "failed records", dashed=True)
    ingress = graph.add("http", "ingress", "ingress (Falcon on gunicorn)")
    for route in ROUTES:
        rid = graph.add("route", f"{route.method} {route.path}")
        graph.link(rid, ingress, "handled by")
        if route.writes is not None:
            graph.link(ingress, graph.add("topic", route.writes.name), route.summary)
        if route.reads is not None:
            graph.link(graph.add("store", route.reads), rid, "reads", dashed=True)
        if route.calls is not None:
            graph.link(rid, graph.add("external", route.calls), "calls")
    for process in PROCESSES:
        if process.kind == "http":
            continue
        label = f"{process.name} {process.kind}<br/>group {process.group}" if process.group else process.name
        pid = graph.add(process.kind, process.name, label)
        for topic in process.consumes:
            graph.link(graph.add("topic", topic.name), pid, "consumes")
        for topic in process.produces:
            graph.link(pid, graph.add("topic", topic.name), "produces")
        for store in process.writes:
            graph.link(pid, graph.add("store", store), "writes")
        for external in process.calls:
            graph.link(pid, graph.add("external", external), "calls")
    for producer, topics in EXTERNAL_PRODUCERS.items():
        for topic in topics:
            graph.link(graph.add("external", producer), graph.add("topic", topic.name), "produce")
    graph.link(graph.add("store", "postgres"), graph.add("store", "postgres-replica"), "streaming replication")
    for store in STORES:
        graph.add("store", store)
    return graph


_MERMAID_SHAPES: dict[NodeKind, tuple[str, str]] = {
    "route": ('["', '"]'),
    "http": ('[["', '"]]'),
    "topic": ('(["', '"])'),
    "dlq": ('(["', '"])'),
    "flow": ('["', '"]'),
    "sink": ('["', '"]'),
    "store": ('[("', '")]'),
    "external": ('{{"', '"}}'),
}
_GROUPS: tuple[tuple[str, tuple[NodeKind, ...]], ...] = (
    ("HTTP routes", ("route", "http")),
    ("Kafka topics", ("topic",)),
    ("Dead letter topics", ("dlq",)),
    ("Bytewax flows", ("flow",)),
    ("Quix Streams sinks", ("sink",)),
    ("Stores", ("store",)),
    ("External services", ("external",)),
)


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;")


def to_mermaid(graph: Graph) -> str:
    lines = ["flowchart LR"]
    for index, (title, kinds) in enumerate(_GROUPS):
        members = [n for n in graph.nodes.values() if n.kind in kinds]
        if not members:
            continue
        lines.append(f'  subgraph group{index}["{title}"]')
        for node in members:
            left, right = _MERMAID_SHAPES[node.kind]
            lines.append(f"    {node.id}{left}{_mermaid_text(node.label)}{right}")
        lines.append("  end")
    for edge in graph.edges:
        arrow = "-.->" if edge.dashed else "-->"
        lines.append(f'  {edge.source} {arrow}|"{_mermaid_text(edge.label)}"| {edge.target}')
    return "\n".join(lines) + "\n"


_DOT_SHAPES: dict[NodeKind, str] = {
    "route": "box",
    "http": "box3d",
    "topic": "cds",
    "dlq": "cds",
    "flow": "component",
    "sink": "component",
    "store": "cylinder",
    "external": "hexagon",
}


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("<br/>", "\\n")


def to_dot(graph: Graph) -> str:
    lines = ["digraph shopstream {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    for index, (title, kinds) in enumerate(_GROUPS):
        members = [n for n in graph.nodes.values() if n.kind in kinds]
        if not members:
            continue
        lines.append(f'  subgraph cluster_{index} {{ label="{title}";')
        for node in members:
            lines.append(f'    {node.id} [label="{_dot_text(node.label)}", shape={_DOT_SHAPES[node.kind]}];')
        lines.append("  }")
    for edge in graph.edges:
        style = ", style=dashed" if edge.dashed else ""
        lines.append(f'  {edge.source} -> {edge.target} [label="{_dot_text(edge.label)}"{style}];')
    lines.append("}")
    return "\n".join(lines) + "\n"
