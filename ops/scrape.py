"""What the local Prometheus scrapes and evaluates: its configuration and each running system's targets.

``stack up`` writes ``prometheus.yml`` (the rules of ``ops/prometheus/rules``, the stack's
Alertmanager, targets discovered from files) and a running Prometheus reloads it when it
changed. Each ``shopstream run`` writes one targets file for its system, every process's
metrics port as ``topology.processes.metrics_targets`` resolves it under that run's
settings, and removes it when it ends; Prometheus reads the folder by itself. So systems
on other ports (tests, benches) are scraped beside the developer's, told apart by their
``system`` label, and a file left by a run that died is removed at the next one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ops.stack.base import StackPaths, process_cmdline
from topology.settings import PROJECT_ROOT, Settings

RULES_DIR = PROJECT_ROOT / "ops" / "prometheus" / "rules"
RULE_TESTS_DIR = PROJECT_ROOT / "ops" / "prometheus" / "tests"
ALERTMANAGER_CONFIG = PROJECT_ROOT / "ops" / "alertmanager" / "alertmanager.yml"
#: How long a scrape may take before it counts as failed (never longer than the interval).
SCRAPE_TIMEOUT_S = 5
_TARGETS_FILE = re.compile(r"^(?P<system>.+)\.(?P<pid>[0-9]+)\.json$")


#: One process's /metrics endpoint: its job (the Procfile name) and its port.
Target = tuple[str, int]


def prometheus_dir(settings: Settings) -> Path:
    """The local Prometheus's folder: its configuration, its targets, its TSDB."""
    return StackPaths(settings.stack_dir, settings.tools_dir).data / "prometheus"


def targets_dir(settings: Settings) -> Path:
    return prometheus_dir(settings) / "targets"


def config_file(settings: Settings) -> Path:
    return prometheus_dir(settings) / "prometheus.yml"


def system_name(settings: Settings) -> str:
    """The ``system`` label of one run's series: its topic prefix, or ``shopstream`` without one."""
    return re.sub(r"[^A-Za-z0-9_-]", "", settings.topic_prefix) or "shopstream"


def prometheus_config(settings: Settings) -> dict[str, Any]:
    """The whole ``prometheus.yml`` of the local stack, as data (written as JSON, which is YAML)."""
    interval = settings.prometheus_scrape_interval_s
    return {
        "global": {
            "scrape_interval": f"{interval}s",
            "scrape_timeout": f"{min(interval, SCRAPE_TIMEOUT_S)}s",
            "evaluation_interval": f"{interval}s",
            "external_labels": {"stack": "local"},
        },
        "rule_files": [str(RULES_DIR / "*.yml")],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"{settings.host}:{settings.alertmanager_port}"]}]}]
        },
        "scrape_configs": [
            {
                # Each target's job label (its process) comes from its targets file.
                "job_name": "shopstream",
                "file_sd_configs": [{"files": [str(targets_dir(settings) / "*.json")], "refresh_interval": "1m"}],
            }
        ],
    }


def write_config(settings: Settings) -> bool:
    """Write ``prometheus.yml`` for ``settings``; True when its content changed (a reload is due)."""
    path = config_file(settings)
    text = json.dumps(prometheus_config(settings), indent=2) + "\n"
    targets_dir(settings).mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        if path.read_text() == text:
            return False
    _write_atomically(path, text)
    return True


def targets_document(settings: Settings, targets: Iterable[Target]) -> list[dict[str, Any]]:
    """One system's file-discovery document: each process's endpoint with its job and system labels."""
    system = system_name(settings)
    return [
        {"targets": [f"{settings.host}:{port}"], "labels": {"job": job, "system": system}}
        for job, port in targets
        if port
    ]


def register(settings: Settings, targets: Iterable[Target], pid: int | None = None) -> Path:
    """Write the targets file of the run ``pid`` (default: this process); files of dead runs are removed first."""
    prune(settings)
    folder = targets_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{system_name(settings)}.{pid or os.getpid()}.json"
    _write_atomically(path, json.dumps(targets_document(settings, targets), indent=2) + "\n")
    return path


def unregister(path: Path) -> None:
    path.unlink(missing_ok=True)


def prune(settings: Settings) -> list[Path]:
    """Remove the targets files whose run no longer lives; the removed files."""
    removed = []
    for path in sorted(targets_dir(settings).glob("*.json")):
        match = _TARGETS_FILE.match(path.name)
        if match is None or process_cmdline(int(match["pid"])) is None:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _write_atomically(path: Path, text: str) -> None:
    """Prometheus watches these files: it must never read one half written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.tmp")
    scratch.write_text(text)
    scratch.replace(path)
