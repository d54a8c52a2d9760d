"""The graph is drawn from the declarations and renders as valid Mermaid and DOT."""

from __future__ import annotations

import pydot
import pytest

from ops.cli_topology import GRAPH_DOC, GRAPH_START, mermaid_check, with_graph
from topology.graph import build_graph, to_dot, to_mermaid
from topology.processes import PROCESSES, ROUTES
from topology.settings import PROJECT_ROOT
from topology.topics import TOPICS


def test_mermaid_is_accepted_by_the_real_mermaid_parser() -> None:
    result = mermaid_check(to_mermaid(build_graph()))
    assert result.returncode == 0, result.stderr
    assert "flowchart" in result.stdout


def test_the_mermaid_check_rejects_broken_text() -> None:
    result = mermaid_check('flowchart LR\n  a["unclosed --> b\n')
    assert result.returncode == 1
    assert "error" in result.stderr.lower()


def test_dot_parses() -> None:
    graphs = pydot.graph_from_dot_data(to_dot(build_graph()))
    assert graphs is not None
    assert len(graphs) == 1
    assert len(graphs[0].get_edges()) == len(build_graph().edges)


def test_graph_matches_the_declarations() -> None:
    graph = build_graph()
    labels = {node.label.split(" (")[0].split(" ")[0] for node in graph.nodes.values()}
    for topic in TOPICS:
        assert topic.name in labels
        if topic.dead_letter:
            assert topic.dead_letter.name in labels
    edges = {(e.source, e.target, e.label) for e in graph.edges}
    ids = {node.label.split("<br/>")[0]: node.id for node in graph.nodes.values()}
    topic_ids = {n.label.split(" (")[0]: n.id for n in graph.nodes.values() if n.kind == "topic"}
    for process in PROCESSES:
        if process.kind == "http":
            continue
        pid = ids[f"{process.name} {process.kind}"]
        for topic in process.consumes:
            assert (topic_ids[topic.name], pid, "consumes") in edges
        for topic in process.produces:
            assert (pid, topic_ids[topic.name], "produces") in edges
    for route in ROUTES:
        assert f"{route.method} {route.path}" in ids


@pytest.mark.parametrize("render", [to_mermaid, to_dot])
def test_rendering_is_deterministic(render) -> None:  # type: ignore[no-untyped-def]
    assert render(build_graph()) == render(build_graph())


def test_the_architecture_doc_shows_the_current_graph() -> None:
    document = GRAPH_DOC.read_text()
    assert GRAPH_START in document
    assert with_graph(document, to_mermaid(build_graph())) == document, "run `shopstream topology graph --update-docs`"


def test_every_mermaid_block_in_the_readme_and_the_architecture_doc_parses() -> None:
    texts = [(PROJECT_ROOT / "README.md").read_text(), GRAPH_DOC.read_text()]
    blocks = [block for text in texts for block in text.split("```mermaid\n")[1:]]
    assert len(blocks) >= 2
    for block in blocks:
        result = mermaid_check(block.split("```")[0])
        assert result.returncode == 0, result.stderr
