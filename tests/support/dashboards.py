"""The PromQL of the Grafana dashboards (ops/grafana/dashboards) and of the recording rules, as data.

``panel_queries`` lists every panel's expressions; ``promql`` turns Grafana's variables into a
query Prometheus answers; ``metric_names`` names the series an expression selects (its
metric names, neither functions, keywords nor label names), so a test can hold them against
what the processes export.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import yaml

from ops.scrape import RULES_DIR
from topology.settings import PROJECT_ROOT

DASHBOARDS_DIR = PROJECT_ROOT / "ops" / "grafana" / "dashboards"
_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool"})
_KEYWORDS |= frozenset({"and", "or", "unless", "atan2", "inf", "nan"})
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_WORD = re.compile(r"(?<![A-Za-z0-9_:.])[A-Za-z_:][A-Za-z0-9_:]*")


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    expr: str


def dashboards() -> dict[str, dict[str, object]]:
    """Every dashboard JSON of the repository, by file name."""
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS_DIR.glob("*.json"))}


def panel_queries() -> list[PanelQuery]:
    """Every expression of every panel (rows and their collapsed panels included)."""
    found = []
    for name, board in dashboards().items():
        panels = list(board.get("panels", []))  # type: ignore[call-overload]
        while panels:
            panel = panels.pop(0)
            panels.extend(panel.get("panels", []))
            for target in panel.get("targets", []):
                if target.get("expr"):
                    found.append(PanelQuery(name, panel["title"], target["expr"]))
    return found


def recording_rules() -> dict[str, str]:
    """Recorded series name to its expression, over every rule file."""
    recorded = {}
    for path in sorted(RULES_DIR.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "record" in rule:
                    recorded[rule["record"]] = rule["expr"]
    return recorded


def promql(expr: str, system: str, rate_interval: str) -> str:
    """A panel's expression with Grafana's variables filled in as Grafana would."""
    return (
        expr.replace("$__rate_interval", rate_interval)
        .replace("${system}", system)
        .replace("$system", system)
        .replace("$__interval", rate_interval)
    )


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects."""
    text = _STRING.sub('""', expr)
    previous = None
    while previous != text:  # innermost first: matchers, ranges and grouping lists never name a metric
        previous = text
        text = _GROUPING.sub(" ", _RANGES.sub(" ", _MATCHERS.sub(" ", text)))
    names = set()
    for match in _WORD.finditer(text):
        word = match.group()
        if word in _KEYWORDS or text[match.end() :].lstrip().startswith("("):
            continue  # a keyword, or a function or aggregation being called
        names.add(word)
    return names


def exported_names(series_names: set[str], metadata: dict[str, list[dict[str, str]]]) -> set[str]:
    """The names a process exports: those with samples, and those its /metrics declares (HELP and TYPE).

    A labelled counter no event has touched yet has no sample but is declared; a histogram
    is declared by its base name and selected by its ``_bucket``, ``_sum`` and ``_count``.
    """
    names = set(series_names)
    for name, entries in metadata.items():
        names.add(name)
        kinds = {entry.get("type") for entry in entries}
        if kinds & {"histogram", "gaugehistogram"}:
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        if "summary" in kinds:
            names |= {f"{name}_sum", f"{name}_count"}
        if "counter" in kinds and not name.endswith("_total"):
            names.add(f"{name}_total")
    return names
