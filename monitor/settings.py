"""Configuration from `SLAMON_*` environment variables, each with a local default (CONTRACTS.md section 7)."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any

# name, default, help: the single list `slamon worker --help` prints and Settings reads
SETTINGS: list[tuple[str, str, str]] = [
    ("SLAMON_KAFKA_BOOTSTRAP", "127.0.0.1:9092", "Kafka bootstrap servers, host:port[,host:port]"),
    ("SLAMON_REDIS_URL", "redis://127.0.0.1:6379/0", "Redis URL (breach board)"),
    ("SLAMON_POLICIES", "", "policy directory published to sla.policies at start (empty: use the topic as is)"),
    ("SLAMON_PARTITIONS", "6", "partitions of workflow.events and sla.ticks when the worker creates them"),
    ("SLAMON_REPLICATION", "1", "replication factor of topics the worker creates"),
    ("SLAMON_TICK_INTERVAL", "1.0", "seconds between the clock ticks that detect crossings"),
    ("SLAMON_WEB_PORT", "6066", "port of /metrics, /healthz, /readyz and the API"),
    ("SLAMON_WEB_HOST", "127.0.0.1", "address the web server binds to (0.0.0.0 in containers)"),
    ("SLAMON_ADVERTISED_URL", "", "URL other workers redirect API clients to (default http://WEB_HOST:WEB_PORT)"),
    ("SLAMON_STORE", "rocksdb://", "order-state table store: rocksdb:// or memory://"),
    ("SLAMON_DATA_DIR", ".slamon-data", "directory for RocksDB tables and worker state"),
    ("SLAMON_APP_ID", "slamon", "Kafka consumer group and table namespace of the workers"),
    ("SLAMON_TOPIC_PREFIX", "", "prefix of every topic name (tests, several tenants on one cluster)"),
    ("SLAMON_STANDBY_REPLICAS", "0", "standby copies of the order table on other workers (fast fail-over)"),
    ("SLAMON_SESSION_TIMEOUT", "10", "seconds before the group gives a silent (crashed) worker's partitions away"),
    ("SLAMON_CLOSED_RETENTION", "86400", "seconds a finished order is kept, to reject late and repeated events"),
    ("SLAMON_MAX_STATE_BYTES", "524288", "largest order state kept; an event that would grow it further is rejected "
     "as malformed (keep it below the broker's message.max.bytes)"),
    ("SLAMON_ALERTMANAGER_URL", "", "Alertmanager base URL, e.g. http://127.0.0.1:9093 (empty: no alerts)"),
    ("SLAMON_API_TOKEN", "", "bearer token of the query API (empty: the API is off)"),
    ("SLAMON_LOG_LEVEL", "info", "log level: debug, info, warning, error"),
]


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap: str
    redis_url: str
    policies: str
    partitions: int
    replication: int
    tick_interval: float
    web_port: int
    web_host: str
    advertised_url: str
    store: str
    data_dir: str
    app_id: str
    topic_prefix: str
    standby_replicas: int
    session_timeout: float
    closed_retention: float
    max_state_bytes: int
    alertmanager_url: str
    api_token: str
    log_level: str

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        values = {}
        for (name, default, _), f in zip(SETTINGS, fields(cls), strict=True):
            raw = env.get(name, default).strip()
            try:
                values[f.name] = {"int": int, "float": float}.get(str(f.type), str)(raw)
            except ValueError:
                raise SettingsError(f"{name}={raw!r} is not a valid {f.type}") from None
        s = cls(**values)
        problems = [f"{name}={getattr(s, fld)!r}: {need}" for name, fld, ok, need in _CHECKS if not ok(getattr(s, fld))]
        if problems:
            raise SettingsError("; ".join(problems))
        return s


LOG_LEVELS = ("debug", "info", "warning", "error")
_CHECKS: list[tuple[str, str, Any, str]] = [
    ("SLAMON_PARTITIONS", "partitions", lambda v: v >= 1, "must be positive"),
    ("SLAMON_REPLICATION", "replication", lambda v: v >= 1, "must be positive"),
    ("SLAMON_TICK_INTERVAL", "tick_interval", lambda v: v > 0, "must be positive"),
    ("SLAMON_SESSION_TIMEOUT", "session_timeout", lambda v: v > 0, "must be positive"),
    ("SLAMON_CLOSED_RETENTION", "closed_retention", lambda v: v >= 0, "must not be negative"),
    ("SLAMON_MAX_STATE_BYTES", "max_state_bytes", lambda v: v >= 1024, "must be at least 1024"),
    ("SLAMON_STORE", "store", lambda v: v.startswith(("rocksdb://", "memory://")), "use rocksdb:// or memory://"),
    ("SLAMON_LOG_LEVEL", "log_level", lambda v: v.lower() in LOG_LEVELS, f"use one of {', '.join(LOG_LEVELS)}"),
]


def settings_help() -> str:
    width = max(len(n) for n, _, _ in SETTINGS)
    return "environment:\n" + "\n".join(
        f"  {n:<{width}}  {h} (default: {d or 'empty'})" for n, d, h in SETTINGS
    )

