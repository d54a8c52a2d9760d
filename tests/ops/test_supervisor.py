"""The supervisor of ``shopstream run``: real child processes killed, restarted, given up on, stopped."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ops.supervisor import ProcfileError, Status, read_procfile, read_status
from tests.support.processes import free_port
from topology.settings import PROJECT_ROOT, Settings

SLEEPER = f"{sys.executable} -c 'import time; time.sleep(600)'"
CRASHER = f"{sys.executable} -c 'import sys; print(\"failing\"); sys.exit(3)'"


def wait_for(check: Callable[[], bool], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Running:
    """The Supervisor of a Procfile in a process of its own, as `shopstream run` runs it."""

    def __init__(self, tmp_path: Path, procfile: str, **settings: Any) -> None:
        (tmp_path / "Procfile").write_text(textwrap.dedent(procfile))
        self.settings = Settings(
            stack_dir=tmp_path, supervisor_metrics_port=free_port(), restart_backoff_s=0.2, **settings
        )
        self.log = (tmp_path / "supervisor.log").open("wb")
        code = (
            "import sys; from pathlib import Path; from ops.supervisor import Supervisor, read_procfile;"
            "from topology.settings import Settings;"
            f"entries = read_procfile(Path({str(tmp_path / 'Procfile')!r}));"
            "sys.exit(Supervisor(entries, Settings.from_env(), Path.cwd()).run())"
        )
        env = {**os.environ, **self.settings.to_env(), "SHOP_RESTART_BUDGET": "3", "SHOP_RESTART_WINDOW_S": "60"}
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        self.output = tmp_path / "supervisor.log"

    def status(self) -> dict[str, Status]:
        return {s.name: s for s in read_status(self.settings)}

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.settings.supervisor_metrics_port}/metrics").text

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        code = self.process.wait(60)
        self.log.close()
        return code


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    system = Running(tmp_path, f"web: {SLEEPER}\nworker: {SLEEPER}\n")
    yield system
    system.stop()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_a_killed_process_is_started_again_and_counted_and_the_others_run_on(running: Running) -> None:
    wait_for(lambda: {s.state for s in running.status().values()} == {"running"}, "both processes running")
    first = running.status()
    os.kill(first["worker"].pid or 0, signal.SIGKILL)
    wait_for(
        lambda: running.status()["worker"].restarts == 1 and running.status()["worker"].state == "running",
        "the worker restarted",
    )
    after = running.status()
    assert after["worker"].pid != first["worker"].pid
    assert after["worker"].last_exit == -signal.SIGKILL
    assert after["web"].pid == first["web"].pid, "the other process was left alone"
    assert after["web"].restarts == 0
    metrics = running.metrics()
    assert 'shop_process_restarts_total{process="worker"} 1.0' in metrics
    assert 'shop_process_up{process="web"} 1.0' in metrics


def test_a_declared_program_is_given_its_metrics_port_and_the_supervisor_serves_consumer_lag(tmp_path: Path) -> None:
    port = free_port()
    printer = (
        f'{sys.executable} -c \'import os, time; print("port", os.environ.get("SHOP_METRICS_PORT")); time.sleep(600)\''
    )
    system = Running(tmp_path, f"sink-redis: {printer}\nweb: {printer}\n", metrics_ports={"sink-redis": port})
    try:
        wait_for(lambda: f"sink-redis | port {port}" in system.output.read_text(), "sink-redis told its port")
        wait_for(lambda: bool(re.search(r"web +\| port None", system.output.read_text())), "web told none")
        metrics = system.metrics()
        assert "shop_kafka_lag_up" in metrics, "the consumer lag collector answers, broker or not"
    finally:
        system.stop()


def test_ctrl_c_stops_every_process_and_ends_the_supervisor(running: Running) -> None:
    wait_for(lambda: {s.state for s in running.status().values()} == {"running"}, "both processes running")
    pids = [s.pid or 0 for s in running.status().values()]
    assert running.stop() == 0
    assert not any(alive(pid) for pid in pids)
    assert {s.state for s in running.status().values()} == {"stopped"}


def test_a_process_that_keeps_failing_is_left_down_past_its_budget(tmp_path: Path) -> None:
    system = Running(tmp_path, f"web: {SLEEPER}\nbroken: {CRASHER}\n")
    try:
        wait_for(lambda: system.status().get("broken", Status("", "")).state == "failed", "the budget spent")
        status = system.status()
        assert status["broken"].restarts == 3
        assert status["broken"].last_exit == 3
        assert status["web"].state == "running", "one failed process is not an outage"
        text = system.output.read_text()
        assert "broken | failing" in text, "a process's output is shown after its name"
        assert "past the restart budget (3): left down" in text
    finally:
        assert system.stop() == 0


def test_a_procfile_that_is_not_name_colon_command_is_refused(tmp_path: Path) -> None:
    (tmp_path / "Procfile").write_text("web: run it\njust a command\n")
    with pytest.raises(ProcfileError, match=r"Procfile:2: not `name: command`"):
        read_procfile(tmp_path / "Procfile")
    (tmp_path / "Procfile").write_text("web: a\nweb: b\n")
    with pytest.raises(ProcfileError, match="used twice"):
        read_procfile(tmp_path / "Procfile")
    with pytest.raises(ProcfileError, match="cannot read"):
        read_procfile(tmp_path / "missing")
    done = subprocess.run(
        [sys.executable, "-m", "ops.cli", "run", "--procfile", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=PROJECT_ROOT,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "cannot read" in done.stderr
