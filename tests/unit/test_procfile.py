"""The Procfile runs exactly the processes that are declared."""

from __future__ import annotations

import re

from topology.processes import PROCESSES
from topology.settings import PROJECT_ROOT


def test_every_flow_and_every_sink_is_on_one_procfile_line() -> None:
    lines = [
        line
        for line in (PROJECT_ROOT / "Procfile").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    commands = [re.sub(r"^env (\S+=\S+ )+", "", line.split(":", 1)[1].strip()) for line in lines]
    # A line may run several flows as one group: every flow is on exactly one line.
    flows = [name for c in commands if c.startswith("shopstream flow ") for name in c.split()[2:]]
    assert sorted(flows) == sorted(p.name for p in PROCESSES if p.kind == "flow")
    commands = [c for c in commands if not c.startswith("shopstream flow ")]
    expected = [f"shopstream sink {p.name}" for p in PROCESSES if p.kind == "sink"]
    expected += ['gunicorn -c ingress/gunicorn.conf.py "ingress.wsgi:app_from_env()"']
    assert sorted(commands) == sorted(expected)
