"""The Procfile runs exactly the processes that are declared, each as the program that declares its metrics port."""

from __future__ import annotations

from ops.supervisor import read_procfile
from topology.processes import PROCESSES, PROGRAMS, metrics_targets, program
from topology.settings import PROJECT_ROOT, Settings

ENTRIES = read_procfile(PROJECT_ROOT / "Procfile")


def test_every_procfile_line_is_a_declared_program_and_runs_its_command() -> None:
    for entry in ENTRIES:
        # No ``env SHOP_METRICS_PORT=...`` either: ports are declared in topology/processes.py only.
        assert entry.command == program(entry.name).command, entry.name


def test_every_flow_and_every_sink_is_on_one_procfile_line() -> None:
    run = [name for entry in ENTRIES for name in program(entry.name).runs]
    # A line may run several flows as one group: every flow is on exactly one line.
    assert sorted(run) == sorted(p.name for p in PROCESSES)
    assert sorted(e.name for e in ENTRIES) == sorted(p.name for p in PROGRAMS if p.kind != "supervisor")


def test_every_program_has_a_port_of_its_own() -> None:
    ports = [port for _, port in metrics_targets(Settings())]
    assert len(ports) == len(PROGRAMS) and len(set(ports)) == len(ports)
    moved = Settings(metrics_ports={"saga": 19310, "sink-redis": 0}, supervisor_metrics_port=0, ingress_metrics_port=1)
    assert dict(metrics_targets(moved)) == {
        **{name: port for name, port in metrics_targets(Settings()) if name not in ("supervisor", "sink-redis")},
        "saga": 19310,
        "ingress": 1,
    }
