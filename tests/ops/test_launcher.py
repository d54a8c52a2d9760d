"""The launcher: idempotent, exact about what it stops, and clear about bad input."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ops.exceptions import StackError
from ops.stack.kafka import java_binary
from ops.stack.launcher import Stack
from ops.stack.search import Search
from ops.stack.stores import Redis
from topology.settings import Settings


def shopstream(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ops.cli", *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )


@pytest.mark.stack
def test_second_up_is_a_no_op(settings: Settings) -> None:
    rows = Stack(settings).up()
    assert [row.state for row in rows] == ["up"] * len(rows)
    assert all(row.pid is not None for row in rows)


@pytest.mark.stack
def test_cli_status_and_logs(settings: Settings) -> None:
    status = shopstream("stack", "status")
    assert status.returncode == 0, status.stderr
    for name in ("kafka", "postgres", "postgres-replica", "redis", "search", "mongo", "smtp"):
        assert name in status.stdout
    logs = shopstream("stack", "logs", "kafka", "-n", "5")
    assert logs.returncode == 0
    assert len(logs.stdout.splitlines()) == 5


def test_unknown_server_name_is_a_usage_error() -> None:
    result = shopstream("stack", "logs", "cassandra")
    assert result.returncode == 2
    assert "no such server" in result.stderr
    assert "pick from" in result.stderr


def test_a_taken_port_is_named_with_the_fix(private_settings: Settings) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", private_settings.redis_port))
        squatter.listen()
        [row] = Stack(private_settings, only=("redis",)).up()
    assert row.state == "failed"
    assert f"port {private_settings.redis_port}" in (row.error or "")
    assert "SHOP_*_PORT" in (row.error or "")


def test_a_corrupt_data_folder_is_refused_and_kept(private_settings: Settings) -> None:
    data = private_settings.stack_dir / "data" / "postgres"
    data.mkdir(parents=True)
    (data / "precious.txt").write_text("do not delete")
    [row] = Stack(private_settings, only=("postgres",)).up()
    assert row.state == "failed"
    assert "looks corrupt" in (row.error or "")
    assert "mv " in (row.error or "")
    assert (data / "precious.txt").read_text() == "do not delete"


def test_a_missing_java_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(StackError) as err:
        java_binary()
    assert "no java" in str(err.value)
    assert "openjdk-17" in err.value.fix


def test_an_old_java_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "java"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\"' >&2\n")
    fake.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(StackError, match="not Java 17"):
        java_binary()


def test_stop_never_signals_a_pid_it_did_not_start(private_settings: Settings) -> None:
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        server = Redis(private_settings)
        server.pid_file.parent.mkdir(parents=True)
        server.pid_file.write_text(f"{stranger.pid}\n")
        assert server.pid() is None
        assert server.stop() is False
        time.sleep(0.2)
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_down_keeps_data_and_up_brings_it_back(private_settings: Settings) -> None:
    stack = Stack(private_settings, only=("redis", "smtp"))
    assert all(row.ok for row in stack.up())
    assert [row.state for row in stack.down()] == ["stopped", "stopped"]
    assert [row.state for row in stack.status()] == ["down", "down"]
    assert (private_settings.stack_dir / "data" / "redis").is_dir()
    assert [row.state for row in stack.up()] == ["started", "started"]
    stack.down()


def test_an_old_search_data_folder_is_refused_and_kept(private_settings: Settings) -> None:
    data = private_settings.stack_dir / "data" / "search"
    data.mkdir(parents=True)
    (data / "noida.control.json").write_text("{}")
    [row] = Stack(private_settings, only=("search",)).up()
    assert row.state == "failed"
    assert "noida-db" in (row.error or "")
    assert f"mv {data} {data}.noida-old" in (row.error or "")
    assert (data / "noida.control.json").read_text() == "{}"


@pytest.mark.stack
def test_install_builds_the_search_node_once(settings: Settings) -> None:
    jar = Search(settings).jar
    built = jar.stat().st_mtime
    again = shopstream("stack", "install", "search", "--json")
    assert again.returncode == 0, again.stderr
    assert '"installed"' in again.stdout
    assert jar.stat().st_mtime == built, "an up-to-date node is not built again"


def test_the_search_node_takes_its_heap_and_port_from_settings(private_settings: Settings) -> None:
    server = Search(private_settings.model_copy(update={"search_heap": "256m"}))
    server.prepare()
    config = (server.config_dir / "elasticsearch.yml").read_text()
    assert f"http.port: {private_settings.search_port}\n" in config
    assert f"path.data: {server.data_dir}\n" in config
    assert "discovery.type: single-node\n" in config
    assert {"-Xms256m", "-Xmx256m"} <= set(server.command())
