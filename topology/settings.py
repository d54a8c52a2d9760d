"""The one settings object of Shopstream.

Every URL, port, secret and tuning knob lives here. It is read from ``SHOP_*``
environment variables once, at the edge of a process (``Settings.from_env()``),
and passed inward; nothing else reads the environment.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: Development secrets. The production profile refuses to start with any of them.
DEV_JWT_SECRET = "dev-only-jwt-secret-change-me"  # noqa: S105 - a known dev default, refused in prod
DEV_PARTNER_SECRET = "dev-only-partner-secret"  # noqa: S105
DEV_GATEWAY_KEY = "dev-only-gateway-key"
#: The secret the local stack derives every Kafka principal's password from (topology/kafka_client.py).
DEV_KAFKA_SECRET = "dev-only-kafka-secret"  # noqa: S105


class Profile(StrEnum):
    """Where the process runs."""

    DEV = "dev"
    TEST = "test"
    PROD = "prod"


class Settings(BaseSettings):
    """Every knob of the system, immutable once read."""

    model_config = SettingsConfigDict(env_prefix="SHOP_", frozen=True, extra="forbid", populate_by_name=True)

    profile: Profile = Profile.DEV

    # Where the embedded local stack keeps binaries, data, logs and pid files.
    stack_dir: Path = PROJECT_ROOT / ".stack"
    # Downloaded server binaries (Kafka jars); shared by private test stacks. Default: stack_dir/tools.
    tools_dir: Path | None = None
    # The JWT signing keys every ingress instance shares (a folder; a mounted secret volume in
    # production). Default: stack_dir/keys. Only `shopstream keys init|rotate` writes it.
    keys_dir: Path | None = None
    host: str = "127.0.0.1"

    # Kafka
    kafka_port: int = Field(19092, ge=1, le=65535)
    kafka_controller_port: int = Field(19093, ge=1, le=65535)
    kafka_version: str = "4.1.1"
    kafka_heap: str = "768m"
    kafka_bootstrap: str | None = None  # production: the managed cluster's bootstrap servers
    topic_prefix: str = ""
    # How clients reach the broker: "sasl" (SCRAM-SHA-512 over SASL_PLAINTEXT), "sasl_ssl" (the same
    # over TLS), "plaintext", or "auto": what the embedded stack's broker records it was started with.
    kafka_security: Literal["auto", "plaintext", "sasl", "sasl_ssl"] = "auto"
    # This process's Kafka credentials. Unset locally: the user is the process's principal and the
    # password is derived from kafka_secret; production sets both (the password at least).
    kafka_username: str | None = None
    kafka_password: SecretStr = SecretStr("")
    kafka_secret: SecretStr = SecretStr(DEV_KAFKA_SECRET)
    kafka_ca_file: Path | None = None  # sasl_ssl: the CA that signed the brokers' certificates

    # PostgreSQL primary and read replica
    pg_port: int = Field(15432, ge=1, le=65535)
    pg_replica_port: int = Field(15433, ge=1, le=65535)
    pg_user: str = "shopstream"
    pg_database: str = "shopstream"
    pg_password: SecretStr = SecretStr("")
    pg_primary_url: str | None = None
    pg_replica_url: str | None = None

    # Redis
    redis_port: int = Field(16379, ge=1, le=65535)
    redis_url_override: str | None = Field(None, alias="SHOP_REDIS_URL")

    # Elasticsearch (locally one node of our own from Maven Central jars, ops/stack/search.py)
    search_port: int = Field(19200, ge=1, le=65535)
    search_heap: str = Field("512m", pattern=r"^[0-9]+[kmg]$")
    search_url_override: str | None = Field(None, alias="SHOP_SEARCH_URL")

    # MongoDB (SecantusDB locally)
    mongo_port: int = Field(27018, ge=1, le=65535)
    mongo_url_override: str | None = Field(None, alias="SHOP_MONGO_URL")
    mongo_database: str = "shopstream"

    # SMTP (aiosmtpd locally)
    smtp_port: int = Field(2525, ge=1, le=65535)
    smtp_host_override: str | None = Field(None, alias="SHOP_SMTP_HOST")
    mail_sender: str = "Shopstream <orders@shopstream.local>"
    # SMS and push provider (the stand-in in ops/gateway locally; the provider's API in production)
    messaging_url_override: str | None = Field(None, alias="SHOP_MESSAGING_URL")
    notify_timeout_s: float = Field(5.0, gt=0)
    notify_retries: int = Field(3, ge=0, le=20)

    # Payment gateway (a stand-in started by the stack locally; the provider's URL in production)
    gateway_port: int = Field(18080, ge=1, le=65535)
    gateway_url_override: str | None = Field(None, alias="SHOP_GATEWAY_URL")
    gateway_timeout_s: float = Field(2.0, gt=0)
    gateway_retries: int = Field(4, ge=0, le=20)
    # Payment gateway calls a payments worker keeps in flight at once (flows/payments/flow.py).
    gateway_concurrency: int = Field(16, ge=1, le=256)

    # Flows
    flow_workers: int = Field(1, ge=1, le=64)
    # The epoch: how often a flow snapshots its state and waits for its output to be delivered.
    # Keyed steps handle items as they come (Bytewax's stateful operators are eager), so this is
    # not latency: it is what a restart replays (at most one epoch of input) against what each
    # snapshot costs (a SQLite commit with fsync per flow; at 25 ms they took a fifth of a flow's time).
    flow_epoch_ms: int = Field(1000, ge=10, le=60_000)
    # Kafka consumers per flow process, sharing its topics' partitions (flows/kafka_input.py).
    flow_input_slots: int = Field(1, ge=1, le=64)
    # How often a flow polls its consumer: records read between polls go through the flow as one batch.
    flow_poll_ms: int = Field(5, ge=0, le=1000)
    # The longest a flow's input waits between polls while it finds nothing: the wait doubles from
    # flow_poll_ms after each empty poll and falls back to it with the first record.
    flow_idle_poll_ms: int = Field(50, ge=0, le=1000)
    # How long the broker may hold a consumer's fetch until it has kafka_fetch_min_bytes for it: with
    # 1 byte a record that arrives is answered at once and this is only the idle cost, not latency.
    kafka_fetch_wait_ms: int = Field(500, ge=1, le=5000)
    kafka_fetch_min_bytes: int = Field(1, ge=1, le=10_000_000)
    # How long a flow's producer gathers records into one request per broker (latency for fewer requests).
    flow_linger_ms: int = Field(5, ge=0, le=1000)
    recovery_partitions: int = Field(1, ge=1, le=64)
    # How long the orders saga waits for a stock or payment answer before it cancels the order.
    order_step_timeout_s: float = Field(30.0, gt=0, le=86_400)

    # Ingress (the HTTP API under gunicorn)
    ingress_port: int = Field(18000, ge=1, le=65535)
    ingress_workers: int = Field(2, ge=1, le=64)
    ingress_threads: int = Field(8, ge=1, le=256)
    jwt_issuer: str = "https://shopstream.local"
    jwt_audience: str = "shopstream-api"
    access_token_ttl_s: int = Field(900, ge=30, le=86_400)
    max_body_bytes: int = Field(64 * 1024, ge=1024, le=10 * 1024 * 1024)
    rate_writes_per_s: float = Field(20.0, gt=0)
    rate_reads_per_s: float = Field(100.0, gt=0)
    rate_burst: int = Field(40, ge=1)
    # While Redis does not answer: requests are refused ("closed": 503 with Retry-After), or go on
    # unchecked by rate limits and logouts ("open": counted in shop_ratelimit_unchecked_total).
    rate_limit_redis_down: Literal["open", "closed"] = "closed"
    read_wait_max_s: float = Field(10.0, ge=0, le=60)
    # The operator port: /metrics is served here, never on the API port (0: the port topology/processes.py
    # declares for the ingress, 18001: the default API port + 1).
    ingress_metrics_port: int = Field(0, ge=0, le=65535)
    # Proxies whose X-Forwarded-For is believed, comma-separated addresses or CIDR blocks
    # (none: the socket's peer is the client).
    trusted_proxies: str = ""
    # Every request, per client address (with or without a token).
    rate_address_per_s: float = Field(50.0, gt=0)
    rate_address_burst: int = Field(100, ge=1)
    # Each credential route (register, login, refresh, partner tokens), per client address.
    rate_credentials_per_s: float = Field(0.2, gt=0)
    rate_credentials_burst: int = Field(10, ge=1)
    # Browsing without a token (catalog search, suggestions, product pages), per client address.
    rate_anonymous_per_s: float = Field(10.0, gt=0)
    rate_anonymous_burst: int = Field(30, ge=1)
    # How long shared caches may keep an anonymous catalog answer (Cache-Control max-age).
    catalog_cache_max_age_s: int = Field(30, ge=0, le=3600)
    # Password hashes and verifications (argon2) one ingress process computes, at most.
    password_hashes_per_s: float = Field(8.0, gt=0)
    password_hash_burst: int = Field(8, ge=1)
    # How long a command's owner is remembered while the read model has not caught up with it.
    pending_owner_ttl_s: int = Field(60, ge=1, le=3600)
    # Browser origins allowed by CORS, comma-separated (none: no cross-origin browser calls).
    cors_origins: str = ""
    cors_max_age_s: int = Field(600, ge=0, le=86_400)

    # Secrets
    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    partner_secret: SecretStr = SecretStr(DEV_PARTNER_SECRET)
    gateway_key: SecretStr = SecretStr(DEV_GATEWAY_KEY)

    # Where each store keeps Shopstream's data (tests and environments isolate themselves here).
    pg_schema: str = Field("shop", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    redis_prefix: str = Field("shop:", max_length=64)
    search_prefix: str = Field("shop-", pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")

    # Sinks
    sink_commit_interval_s: float = Field(0.5, gt=0, le=60)  # a batch is written (and committed) this often
    sink_commit_every: int = Field(5_000, ge=0)  # ... or after this many records, whichever comes first
    sink_retry_after_s: float = Field(2.0, gt=0, le=300)  # pause after a transient store error
    order_cache_ttl_s: int = Field(24 * 3600, ge=1)
    product_cache_ttl_s: int = Field(3600, ge=1)
    audit_retention_days: int = Field(90, ge=1)
    # Audit entries per MongoDB document (the bucket pattern: the server's cost is per document).
    audit_bucket_events: int = Field(100, ge=1, le=10_000)
    # Daily log indices (``{search_prefix}logs-YYYY.MM.DD``) older than this are deleted by the logs sink.
    log_retention_days: int = Field(7, ge=1, le=3650)

    # Logs (topology/logs.py): the level of the system's own loggers (libraries log from WARNING on),
    # what the console shows (human lines, ECS JSON, nothing), whether it shows the HTTP access log, and
    # whether records are shipped through Kafka to the search store, with at most log_queue_size
    # waiting in each process (past it a record is dropped and counted, never waited for).
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_console: Literal["human", "json", "off"] = "human"
    log_console_access: bool = False
    log_ship: bool = True
    log_queue_size: int = Field(10_000, ge=1, le=1_000_000)
    # Reads that must see everything committed before they started wait this long for the replica.
    replica_wait_ms: int = Field(250, ge=0, le=10_000)
    # Port of this process's Prometheus endpoint (0: none). `shopstream run` gives each process its own,
    # the port topology/processes.py declares for it, unless metrics_ports moves it: a JSON object of
    # Procfile name to port (SHOP_METRICS_PORTS='{"saga": 19310}'; a port of 0 turns its metrics off).
    metrics_port: int = Field(0, ge=0, le=65535)
    metrics_ports: dict[str, int] = {}
    # Off: no process serves metrics (nor the supervisor's consumer lag), the ingress counts no request and
    # Bytewax keeps none (its Rust metrics run only with its API server); for bench/observability.py's baseline.
    metrics_enabled: bool = True
    # The flows' metrics served by Bytewax's own dataflow API server, with Bytewax's per-step counters and
    # durations (kept in Rust per step and batch: they cost the flows CPU, see flows/metrics.py).
    flow_bytewax_metrics: bool = False

    # Traces (topology/tracing.py): spans go by OTLP over HTTP to this endpoint (the local stack's:
    # http://127.0.0.1:14318). Unset: tracing is off, its SDK is never imported, no header is read.
    otlp_endpoint: str | None = Field(None, pattern=r"^https?://[^/]+(/.*)?$")
    # The share of traces kept where a trace starts (an HTTP request without a sampled traceparent);
    # every later span follows the decision its parent carries.
    trace_sample_ratio: float = Field(1.0, ge=0, le=1)
    # Spans a process holds for export at most; past it new spans are dropped, never waited for.
    trace_queue_size: int = Field(2048, ge=16, le=1_000_000)
    # The local stack's trace backend (Jaeger, ops/stack/traces.py): OTLP gRPC and HTTP in, its query API and UI.
    traces_grpc_port: int = Field(14317, ge=1, le=65535)
    traces_http_port: int = Field(14318, ge=1, le=65535)
    traces_query_port: int = Field(16686, ge=1, le=65535)
    # Traces the local backend keeps in memory (the oldest go first).
    traces_max_traces: int = Field(20_000, ge=100)
    # Which local backend: our small OTLP store (ops/tracestore.py), or Jaeger v2 built from ops/jaeger.
    traces_backend: Literal["store", "jaeger"] = "store"

    # The supervisor of `shopstream run` (ops/supervisor.py): a process that exits is started again after
    # a backoff doubling from restart_backoff_s; more than restart_budget exits within restart_window_s
    # and it is left down. Its metrics (restarts, up, consumer lag) are served on supervisor_metrics_port
    # (unset: the port topology/processes.py declares, 9300; 0: none).
    restart_backoff_s: float = Field(1.0, gt=0, le=300)
    restart_budget: int = Field(5, ge=0, le=1000)
    restart_window_s: float = Field(300.0, gt=0)
    supervisor_metrics_port: int | None = Field(None, ge=0, le=65535)

    # Prometheus and Alertmanager of the local stack (ops/stack/monitoring.py). Every scrape costs
    # each process a /metrics answer and the server a write: the interval is an idle cost.
    prometheus_port: int = Field(19090, ge=1, le=65535)
    alertmanager_port: int = Field(19094, ge=1, le=65535)
    prometheus_scrape_interval_s: int = Field(15, ge=1, le=300)
    prometheus_retention: str = Field("2d", pattern=r"^[0-9]+[smhdwy]$")

    # Launcher tuning
    health_timeout_s: float = Field(90.0, gt=0)
    install_timeout_s: float = Field(600.0, gt=0)

    @classmethod
    def from_env(cls) -> Self:
        """Read the settings from ``SHOP_*`` environment variables (the only place that does)."""
        return cls()

    def to_env(self) -> dict[str, str]:
        """The ``SHOP_*`` variables that give a child process these settings (fields set away from their defaults)."""
        env: dict[str, str] = {}
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if value == field.default:
                continue
            if isinstance(value, dict):
                env[(field.alias or f"SHOP_{name}").upper()] = json.dumps(value)
                continue
            text = value.get_secret_value() if isinstance(value, SecretStr) else value
            env[(field.alias or f"SHOP_{name}").upper()] = str(text.value if isinstance(text, StrEnum) else text)
        return env

    @model_validator(mode="after")
    def _refuse_dev_secrets_in_prod(self) -> Self:
        if self.profile is Profile.PROD:
            dev = {
                "SHOP_JWT_SECRET": (self.jwt_secret, DEV_JWT_SECRET),
                "SHOP_PARTNER_SECRET": (self.partner_secret, DEV_PARTNER_SECRET),
                "SHOP_GATEWAY_KEY": (self.gateway_key, DEV_GATEWAY_KEY),
            }
            bad = [name for name, (secret, default) in dev.items() if secret.get_secret_value() in ("", default)]
            if bad:
                msg = f"production profile refuses development or empty secrets: set {', '.join(bad)}"
                raise ValueError(msg)
            missing = [
                name
                for name, value in {
                    "SHOP_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
                    "SHOP_PG_PRIMARY_URL": self.pg_primary_url,
                    "SHOP_PG_REPLICA_URL": self.pg_replica_url,
                    "SHOP_REDIS_URL": self.redis_url_override,
                    "SHOP_SEARCH_URL": self.search_url_override,
                    "SHOP_MONGO_URL": self.mongo_url_override,
                    "SHOP_GATEWAY_URL": self.gateway_url_override,
                    "SHOP_SMTP_HOST": self.smtp_host_override,
                    "SHOP_MESSAGING_URL": self.messaging_url_override,
                }.items()
                if not value
            ]
            if missing:
                msg = f"production profile needs the managed services' addresses: set {', '.join(missing)}"
                raise ValueError(msg)
            if self.kafka_security not in ("sasl", "sasl_ssl") or not self.kafka_password.get_secret_value():
                msg = (
                    "production profile needs explicit Kafka credentials: set SHOP_KAFKA_SECURITY=sasl_ssl "
                    "(or sasl), SHOP_KAFKA_PASSWORD and, when it is not the process's principal, SHOP_KAFKA_USERNAME"
                )
                raise ValueError(msg)
        return self

    # Derived addresses: production overrides win, else the embedded stack on loopback.
    @property
    def bootstrap_servers(self) -> str:
        return self.kafka_bootstrap or f"{self.host}:{self.kafka_port}"

    @property
    def pg_url(self) -> str:
        return self.pg_primary_url or f"postgresql://{self.pg_user}@{self.host}:{self.pg_port}/{self.pg_database}"

    @property
    def pg_read_url(self) -> str:
        return (
            self.pg_replica_url or f"postgresql://{self.pg_user}@{self.host}:{self.pg_replica_port}/{self.pg_database}"
        )

    @property
    def redis_url(self) -> str:
        return self.redis_url_override or f"redis://{self.host}:{self.redis_port}/0"

    @property
    def search_url(self) -> str:
        return self.search_url_override or f"http://{self.host}:{self.search_port}"

    @property
    def mongo_url(self) -> str:
        return self.mongo_url_override or f"mongodb://{self.host}:{self.mongo_port}/?directConnection=true"

    @property
    def gateway_url(self) -> str:
        return self.gateway_url_override or f"http://{self.host}:{self.gateway_port}"

    @property
    def signing_keys_dir(self) -> Path:
        return self.keys_dir or self.stack_dir / "keys"

    @property
    def recovery_dir(self) -> Path:
        return self.stack_dir / "recovery"

    @property
    def smtp_address(self) -> tuple[str, int]:
        return (self.smtp_host_override or self.host, self.smtp_port)

    @property
    def messaging_url(self) -> str:
        return self.messaging_url_override or self.gateway_url

    @property
    def ingress_operator_port(self) -> int:
        """Where the ingress serves /metrics."""
        from topology.processes import metrics_port  # processes imports settings' type only

        return metrics_port("ingress", self)

    @property
    def traces_url(self) -> str:
        """The trace backend's query API (the local stack's Jaeger)."""
        return f"http://{self.host}:{self.traces_query_port}"
