"""Configuration from `SLAMON_*` environment variables, each with a local default (CONTRACTS.md section 7).

Every variable can also be given as `<NAME>_FILE`, the path of a file holding the value (the Docker and Kubernetes
secrets convention): `SLAMON_KAFKA_SASL_PASSWORD_FILE=/run/secrets/kafka-password`. Secrets (SECRETS) are kept out
of `repr`, logs and error messages: `redact_url` masks the password of a URL, `shown` what a message may print.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

KAFKA_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")

# name, default, help: the single list `slamon worker --help` prints and Settings reads
SETTINGS: list[tuple[str, str, str]] = [
    ("SLAMON_KAFKA_BOOTSTRAP", "127.0.0.1:9092", "Kafka bootstrap servers, host:port[,host:port]"),
    ("SLAMON_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT", f"how every Kafka client connects: {', '.join(KAFKA_PROTOCOLS)}"),
    ("SLAMON_KAFKA_SASL_MECHANISM", "PLAIN", f"SASL mechanism of SASL_* protocols: {', '.join(SASL_MECHANISMS)}"),
    ("SLAMON_KAFKA_SASL_USERNAME", "", "SASL user name (SASL_* protocols)"),
    ("SLAMON_KAFKA_SASL_PASSWORD", "", "SASL password (secret; SLAMON_KAFKA_SASL_PASSWORD_FILE reads it from a file)"),
    ("SLAMON_KAFKA_SSL_CAFILE", "", "PEM file of the CAs the brokers' certificates must chain to (empty: the "
     "system's CAs); SSL and SASL_SSL"),
    ("SLAMON_KAFKA_SSL_CERTFILE", "", "PEM client certificate (chain) for mutual TLS; may hold the key too"),
    ("SLAMON_KAFKA_SSL_KEYFILE", "", "PEM private key (unencrypted) of SLAMON_KAFKA_SSL_CERTFILE"),
    ("SLAMON_REDIS_URL", "redis://127.0.0.1:6379/0", "Redis URL (breach board): redis://[:password@]host:port/db, "
     "rediss:// for TLS (secret when it holds a password: SLAMON_REDIS_URL_FILE)"),
    ("SLAMON_REDIS_SSL_CAFILE", "", "PEM file of the CAs a rediss:// server's certificate must chain to (empty: the "
     "system's CAs)"),
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
    ("SLAMON_GROUP_INSTANCE_ID", "", "static group membership id (Kafka KIP-345), unique per worker and stable "
     "across its restarts, e.g. the pod name: a worker back within SLAMON_SESSION_TIMEOUT keeps its partitions; "
     "empty: dynamic membership"),
    ("SLAMON_CLOSED_RETENTION", "86400", "seconds a finished order is kept, to reject late and repeated events"),
    ("SLAMON_MAX_STATE_BYTES", "524288", "largest order state kept; an event that would grow it further is rejected "
     "as malformed; also the largest dead letter (its raw is cut to fit) (keep it below the broker's "
     "message.max.bytes)"),
    ("SLAMON_FAST_FETCH", "1", "1: hand each fetch's messages to the batch processor at once and commit batches "
     "while the next ones are processed (faster); 0: Faust's own loop and the agent's stream"),
    ("SLAMON_ALERTMANAGER_URL", "", "Alertmanager base URL, e.g. http://127.0.0.1:9093 (empty: no alerts)"),
    ("SLAMON_API_TOKEN", "", "bearer token of the query API (empty: the API is off; secret: SLAMON_API_TOKEN_FILE)"),
    ("SLAMON_LOG_LEVEL", "info", "log level: debug, info, warning, error"),
]
FILE_SUFFIX = "_FILE"
SECRETS = ("SLAMON_KAFKA_SASL_PASSWORD", "SLAMON_REDIS_URL", "SLAMON_API_TOKEN")
HIDDEN = "<hidden>"


class SettingsError(ValueError):
    pass


def _secret() -> Any:
    return field(repr=False)


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap: str
    kafka_security_protocol: str
    kafka_sasl_mechanism: str
    kafka_sasl_username: str
    kafka_sasl_password: str = _secret()
    kafka_ssl_cafile: str
    kafka_ssl_certfile: str
    kafka_ssl_keyfile: str
    redis_url: str = _secret()
    redis_ssl_cafile: str
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
    group_instance_id: str
    closed_retention: float
    max_state_bytes: int
    fast_fetch: int
    alertmanager_url: str
    api_token: str = _secret()
    log_level: str

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        values = {}
        for (name, default, _), f in zip(SETTINGS, fields(cls), strict=True):
            raw = _raw(env, name, default)
            try:
                values[f.name] = {"int": int, "float": float}.get(str(f.type), str)(raw)
            except ValueError:
                raise SettingsError(f"{name}={shown(name, raw)!r} is not a valid {f.type}") from None
        for name in ("kafka_security_protocol", "kafka_sasl_mechanism"):
            values[name] = values[name].upper()
        s = cls(**values)
        problems = [f"{name}={shown(name, getattr(s, fld))!r}: {need}"
                    for name, fld, ok, need in _CHECKS if not ok(getattr(s, fld))]
        problems += _security_problems(s)
        if problems:
            raise SettingsError("; ".join(problems))
        return s

    @property
    def kafka_tls(self) -> bool:
        return self.kafka_security_protocol in ("SSL", "SASL_SSL")

    @property
    def kafka_sasl(self) -> bool:
        return self.kafka_security_protocol.startswith("SASL_")

    def kafka_ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of every Kafka client (None without TLS): the brokers' certificates verified against
        SLAMON_KAFKA_SSL_CAFILE (else the system's CAs) and their host names checked; the client certificate of
        SLAMON_KAFKA_SSL_CERTFILE presented when given (mutual TLS)."""
        if not self.kafka_tls:
            return None
        return tls_context(self.kafka_ssl_cafile, self.kafka_ssl_certfile, self.kafka_ssl_keyfile)


def _raw(env: Any, name: str, default: str) -> str:
    """The value of `name`, read from the file `<name>_FILE` names when that is set instead."""
    path = env.get(name + FILE_SUFFIX, "").strip()
    if not path:
        return env.get(name, default).strip()
    if env.get(name, "").strip():
        raise SettingsError(f"both {name} and {name}{FILE_SUFFIX} are set: set one of them")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{name}{FILE_SUFFIX}={path!r}: cannot read it ({_reason(exc)})") from None


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def redact_url(url: str) -> str:
    """`url` with its password (and a `password=` query parameter) replaced by `***`, for logs and messages."""
    try:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        if parts.password is None and not any(k.lower() == "password" for k, _ in query):
            return url
        if parts.password is not None:
            user, _, host = parts.netloc.rpartition("@")
            parts = parts._replace(netloc=f"{user.partition(':')[0]}:***@{host}")
        query = [(k, "***" if k.lower() == "password" else v) for k, v in query]
        return urlunsplit(parts._replace(query=urlencode(query, safe="*")))
    except ValueError:  # not parseable: nothing of it may be shown
        return HIDDEN


def shown(name: str, value: Any) -> Any:
    """What a message may print of setting `name`: secrets masked (a URL keeps all but its password)."""
    if name not in SECRETS or not value:
        return value
    return redact_url(value) if name.endswith("_URL") else HIDDEN


def tls_context(cafile: str = "", certfile: str = "", keyfile: str = "") -> ssl.SSLContext:
    """A client TLS context: servers verified against `cafile` (else the system's CAs), host names checked, and the
    client certificate `certfile` (its key in `keyfile` or in `certfile`) presented when given."""
    context = ssl.create_default_context(cafile=cafile or None)
    if certfile:
        context.load_cert_chain(certfile, keyfile or None)
    return context


def _security_problems(s: Settings) -> list[str]:
    """What does not fit together in the Kafka and Redis security settings, each naming its variables."""
    protocol = f"SLAMON_KAFKA_SECURITY_PROTOCOL={s.kafka_security_protocol}"
    if s.kafka_security_protocol not in KAFKA_PROTOCOLS:
        return [f"{protocol}: use one of {', '.join(KAFKA_PROTOCOLS)}"]
    problems = []
    if s.kafka_sasl_mechanism not in SASL_MECHANISMS:
        problems.append(f"SLAMON_KAFKA_SASL_MECHANISM={s.kafka_sasl_mechanism}: use one of {', '.join(SASL_MECHANISMS)}")
    sasl = {"SLAMON_KAFKA_SASL_USERNAME": s.kafka_sasl_username, "SLAMON_KAFKA_SASL_PASSWORD": s.kafka_sasl_password}
    if s.kafka_sasl:
        problems += [f"{name} is needed with {protocol}" for name, value in sasl.items() if not value]
    else:
        problems += [f"{name} is set but {protocol} does not use it (SASL_SSL or SASL_PLAINTEXT would)"
                     for name, value in sasl.items() if value]
    files = {"SLAMON_KAFKA_SSL_CAFILE": s.kafka_ssl_cafile, "SLAMON_KAFKA_SSL_CERTFILE": s.kafka_ssl_certfile,
             "SLAMON_KAFKA_SSL_KEYFILE": s.kafka_ssl_keyfile}
    if not s.kafka_tls:
        problems += [f"{name} is set but {protocol} does not use TLS (SSL or SASL_SSL would)"
                     for name, value in files.items() if value]
    elif s.kafka_ssl_keyfile and not s.kafka_ssl_certfile:
        problems.append("SLAMON_KAFKA_SSL_KEYFILE is set without SLAMON_KAFKA_SSL_CERTFILE")
    else:
        problems += _tls_problems(files)
    if s.redis_ssl_cafile and not s.redis_url.startswith("rediss://"):
        problems.append("SLAMON_REDIS_SSL_CAFILE is set but SLAMON_REDIS_URL does not use TLS (rediss://)")
    elif s.redis_ssl_cafile:
        problems += _tls_problems({"SLAMON_REDIS_SSL_CAFILE": s.redis_ssl_cafile})
    return problems


def _tls_problems(files: dict[str, str]) -> list[str]:
    """A TLS context built from the files (CA, certificate, key), or why it cannot be, naming the variables."""
    missing = [f"{name}={path!r}: {_reason(exc)}" for name, path in files.items() if path
               for exc in [_unreadable(path)] if exc]
    if missing:
        return missing
    names = [name for name, path in files.items() if path]
    try:
        tls_context(*files.values())
    except (ssl.SSLError, OSError, ValueError) as exc:
        return [f"{' / '.join(names)}: cannot load the certificates or key ({_reason(exc)})"]
    return []


def _unreadable(path: str) -> OSError | None:
    try:
        with open(path, "rb"):
            return None
    except OSError as exc:
        return exc


LOG_LEVELS = ("debug", "info", "warning", "error")
_CHECKS: list[tuple[str, str, Any, str]] = [
    ("SLAMON_PARTITIONS", "partitions", lambda v: v >= 1, "must be positive"),
    ("SLAMON_REPLICATION", "replication", lambda v: v >= 1, "must be positive"),
    ("SLAMON_TICK_INTERVAL", "tick_interval", lambda v: v > 0, "must be positive"),
    ("SLAMON_SESSION_TIMEOUT", "session_timeout", lambda v: v > 0, "must be positive"),
    ("SLAMON_CLOSED_RETENTION", "closed_retention", lambda v: v >= 0, "must not be negative"),
    ("SLAMON_MAX_STATE_BYTES", "max_state_bytes", lambda v: v >= 1024, "must be at least 1024"),
    ("SLAMON_FAST_FETCH", "fast_fetch", lambda v: v in (0, 1), "use 1 or 0"),
    ("SLAMON_STORE", "store", lambda v: v.startswith(("rocksdb://", "memory://")), "use rocksdb:// or memory://"),
    ("SLAMON_LOG_LEVEL", "log_level", lambda v: v.lower() in LOG_LEVELS, f"use one of {', '.join(LOG_LEVELS)}"),
    ("SLAMON_REDIS_URL", "redis_url", lambda v: v.startswith(REDIS_SCHEMES), f"use {', '.join(REDIS_SCHEMES)}"),
    ("SLAMON_API_TOKEN", "api_token", lambda v: _utf8(v), "use UTF-8 text"),
]


def _utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes of the environment, kept as surrogates
        return False
    return True


def settings_help() -> str:
    width = max(len(n) for n, _, _ in SETTINGS)
    return "environment:\n" + "\n".join(
        f"  {n:<{width}}  {h} (default: {d or 'empty'})" for n, d, h in SETTINGS
    ) + (f"\n\nEvery variable can also be read from a file: <NAME>{FILE_SUFFIX} holds its path (e.g. "
         f"SLAMON_KAFKA_SASL_PASSWORD{FILE_SUFFIX}=/run/secrets/kafka-password); set one of the two.")
