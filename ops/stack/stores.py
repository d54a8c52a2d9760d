"""Redis, MongoDB (SecantusDB) and an SMTP server (aiosmtpd); Elasticsearch is in ops/stack/search.py."""

from __future__ import annotations

import hashlib
import os
import shutil
import smtplib
import subprocess
import sys
from pathlib import Path

import httpx
import pymongo
import redis

from ops.exceptions import StackError
from ops.stack.apt import apt_install
from ops.stack.base import Server
from topology.settings import PROJECT_ROOT

VENV_BIN = Path(sys.executable).parent


def venv_tool(server: str, tool: str) -> str:
    path = VENV_BIN / tool
    if not path.exists():
        raise StackError(server, f"{tool} is missing from {VENV_BIN}", "run `uv sync --frozen` (make bootstrap)")
    return str(path)


class Redis(Server):
    name = "redis"

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.settings.redis_port,)

    @property
    def address(self) -> str:
        return self.settings.redis_url

    def install(self) -> None:
        apt_install(self.name, "redis-server", "redis-server", self.settings.install_timeout_s, "set SHOP_REDIS_URL")

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        redis_server = shutil.which("redis-server") or "redis-server"
        return [
            redis_server,
            "--port",
            str(self.settings.redis_port),
            "--bind",
            self.settings.host,
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--daemonize",
            "no",
            "--protected-mode",
            "no",
            "--maxclients",
            "2000",
        ]

    def healthy(self) -> bool:
        client = redis.Redis.from_url(self.address, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()


class Mongo(Server):
    """MongoDB's wire protocol, served by SecantusDB as a separate process (GPL: never imported)."""

    name = "mongo"

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.settings.mongo_port,)

    @property
    def address(self) -> str:
        return self.settings.mongo_url

    def prepare(self) -> None:
        self.refuse_unknown_folder("WiredTiger")
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return [
            venv_tool(self.name, "secantusd-py"),
            "--host",
            self.settings.host,
            "--port",
            str(self.settings.mongo_port),
            "--storage-path",
            str(self.data_dir),
            "--cache-size",
            "256M",
            "--log-level",
            "WARNING",
        ]

    def healthy(self) -> bool:
        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
            self.address, serverSelectionTimeoutMS=1000, connectTimeoutMS=1000
        )
        try:
            return client.admin.command("ping").get("ok") == 1.0
        except pymongo.errors.PyMongoError:
            return False
        finally:
            client.close()


class Smtp(Server):
    """A real SMTP server on loopback that stores every message in a Maildir."""

    name = "smtp"

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.settings.smtp_port,)

    @property
    def address(self) -> str:
        host, port = self.settings.smtp_address
        return f"smtp://{host}:{port}"

    @property
    def maildir(self) -> Path:
        return self.data_dir / "maildir"

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"{self.settings.host}:{self.settings.smtp_port}",
            "-c",
            "aiosmtpd.handlers.Mailbox",
            str(self.maildir),
        ]

    def healthy(self) -> bool:
        try:
            with smtplib.SMTP(*self.settings.smtp_address, timeout=1) as smtp:
                return smtp.noop()[0] == 250
        except (OSError, smtplib.SMTPException):
            return False


class Gateway(Server):
    """The payment provider stand-in (ops/gateway/main.go), built with the machine's Go toolchain.

    The binary carries the fingerprint of the source it was built from, and ``/healthz`` answers it,
    so a stand-in found running can be told from one built from an older source.
    """

    name = "gateway"
    source = PROJECT_ROOT / "ops" / "gateway"

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.settings.gateway_port,)

    @property
    def address(self) -> str:
        return self.settings.gateway_url

    @property
    def binary(self) -> Path:
        return self.paths.tools / "gateway" / "gateway"

    def _sources(self) -> list[Path]:
        return sorted([*self.source.glob("*.go"), self.source / "go.mod"])

    def fingerprint(self) -> str:
        """The fingerprint of the stand-in's source as it is now (its files' names and bytes)."""
        digest = hashlib.sha256()
        for path in self._sources():
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
        return digest.hexdigest()[:16]

    def install(self) -> None:
        """Build the stand-in when its binary is missing or older than its source."""
        if self.binary.exists() and self.binary.stat().st_mtime >= max(f.stat().st_mtime for f in self._sources()):
            return
        self.build(self.binary)

    def build(self, binary: Path) -> None:
        """Build the stand-in from its source into ``binary``, stamped with the source's fingerprint."""
        go = shutil.which("go")
        if go is None:
            raise StackError(self.name, "the Go toolchain is missing", "install Go 1.22 or newer (go.dev/dl)")
        proc = subprocess.run(
            [go, "build", "-ldflags", f"-X main.source={self.fingerprint()}", "-o", str(binary), "."],
            cwd=self.source,
            capture_output=True,
            text=True,
            check=False,
            timeout=self.settings.install_timeout_s,
        )
        if proc.returncode != 0:
            raise StackError(self.name, f"go build failed: {proc.stderr.strip()[-500:]}", "see ops/gateway/main.go")

    def serves_current_source(self) -> bool:
        """Whether the stand-in answering at the address was built from the source as it is now."""
        try:
            health = httpx.get(f"{self.address}/healthz", timeout=1.0)
            return health.status_code == 200 and health.json().get("source") == self.fingerprint()
        except (httpx.HTTPError, ValueError):
            return False

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def environment(self) -> dict[str, str]:
        # One OS thread runs Go code: on cores the flows need, idle Go threads spinning for
        # work cost more than a second thread gains; collect garbage less often.
        return {**os.environ, "GOMAXPROCS": "1", "GOGC": "400"}

    def command(self) -> list[str]:
        return [
            str(self.binary),
            "-listen",
            f"{self.settings.host}:{self.settings.gateway_port}",
            "-journal",
            str(self.data_dir / "journal.jsonl"),
        ]

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.address}/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False
