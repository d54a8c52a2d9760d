"""The flows' entry point: ``python -m flows run NAME``, behind ``shopstream flow NAME``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from flows.run import FLOWS, prepare_recovery, recovery_dir
from topology.processes import PROCESSES
from topology.settings import Settings

SHOPSTREAM = str(Path(sys.executable).parent / "shopstream")


def run(*argv: str, program: str = sys.executable) -> subprocess.CompletedProcess[str]:
    return subprocess.run([program, *argv], capture_output=True, text=True, timeout=120, check=False)


def test_every_declared_flow_can_be_run() -> None:
    assert tuple(p.name for p in PROCESSES if p.kind == "flow") == FLOWS
    assert len(FLOWS) == 6


def test_an_unknown_flow_is_a_usage_error_that_names_every_flow() -> None:
    # the console script takes `flow` and `sink` before the rest of the command line (ops.launch)
    result = run("flow", "billing", program=SHOPSTREAM)
    assert result.returncode == 2
    assert "no flow named 'billing'" in result.stderr
    assert f"pick each once from {', '.join(FLOWS)}" in result.stderr
    twice = run("flow", "orders", "orders", program=SHOPSTREAM)
    assert twice.returncode == 2
    assert "a flow is named twice" in twice.stderr
    sink = run("sink", "billing", program=SHOPSTREAM)
    assert sink.returncode == 2 and "no sink named 'billing'" in sink.stderr, sink.stderr
    assert run("-m", "ops.cli", "flow", "billing").stderr == result.stderr, "the whole command line says the same"
    direct = run("-m", "flows", "run", "billing")
    assert direct.returncode == 2
    assert "invalid choice" in direct.stderr


def test_the_flow_command_lists_every_flow_in_its_help() -> None:
    result = run("-m", "ops.cli", "flow", "--help")
    assert result.returncode == 0
    for name in FLOWS:
        assert name in result.stdout


def test_recovery_partitions_are_created_once_under_the_prefix(tmp_path: Path) -> None:
    settings = Settings(stack_dir=tmp_path, topic_prefix="t1.", recovery_partitions=2)
    directory = prepare_recovery(settings, "orders")
    assert directory == recovery_dir(settings, "orders") == tmp_path / "recovery" / "t1" / "orders"
    parts = sorted(p.name for p in directory.iterdir())
    assert len(parts) == 2
    (directory / "kept").write_text("state")
    assert prepare_recovery(settings, "orders") == directory
    assert (directory / "kept").read_text() == "state"
    assert recovery_dir(Settings(stack_dir=tmp_path), "orders") == tmp_path / "recovery" / "default" / "orders"
