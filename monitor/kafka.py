"""The one place that builds Kafka clients: every aiokafka consumer, producer and admin client of the package, and
the broker settings of the Faust app, are made here from `Settings`, so connection settings (servers, and the
security options a cluster asks for) are decided once.

aiokafka is imported when a client is built, so commands that never talk to Kafka (`slamon replay`) do not load it.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from .settings import Settings


def connection(settings: Settings) -> dict[str, Any]:
    """The keyword arguments every aiokafka client takes to reach the cluster: servers and security."""
    options: dict[str, Any] = {"bootstrap_servers": settings.kafka_bootstrap,
                               "security_protocol": settings.kafka_security_protocol}
    if settings.kafka_tls:
        options["ssl_context"] = _ssl_context(settings)
    if settings.kafka_sasl:
        options.update(sasl_mechanism=settings.kafka_sasl_mechanism, sasl_plain_username=settings.kafka_sasl_username,
                       sasl_plain_password=settings.kafka_sasl_password)
    return options


@functools.lru_cache(maxsize=4)
def _ssl_context(settings: Settings) -> Any:
    """One TLS context per settings, shared by their clients (loading the CA file once)."""
    return settings.kafka_ssl_context()


def consumer(settings: Settings, *topics: str, client_id: str, **options: Any) -> Any:
    """An `AIOKafkaConsumer` (not started). `options` are aiokafka's (group_id, auto_offset_reset, ...).
    It reads `read_committed`: the worker writes its outputs and table changelog in transactions, and a fenced or
    killed worker's aborted writes must stay invisible."""
    from aiokafka import AIOKafkaConsumer

    options.setdefault("isolation_level", "read_committed")
    return AIOKafkaConsumer(*topics, client_id=client_id, **connection(settings), **options)


def producer(settings: Settings, *, client_id: str, **options: Any) -> Any:
    """An `AIOKafkaProducer` (not started)."""
    from aiokafka import AIOKafkaProducer

    return AIOKafkaProducer(client_id=client_id, **connection(settings), **options)


def admin(settings: Settings, *, client_id: str, **options: Any) -> Any:
    """An `AIOKafkaAdminClient` (not started)."""
    from aiokafka.admin import AIOKafkaAdminClient

    return AIOKafkaAdminClient(client_id=client_id, **connection(settings), **options)


def faust_broker(settings: Settings, scheme: str = "kafka") -> dict[str, Any]:
    """The broker arguments of `faust.App`: `broker` (Faust takes `<scheme>://host:port` URLs, `;`-separated; the
    scheme names the transport driver) and, on a secured cluster, `broker_credentials` and `ssl_context`.

    Faust's aiokafka driver turns the credentials into the same aiokafka arguments `connection` gives
    (faust/transport/drivers/aiokafka.py `credentials_to_aiokafka_auth`, for its consumers and producer):
    `SASLCredentials` with an ssl_context is SASL_SSL, without one SASL_PLAINTEXT; `SSLCredentials` is SSL."""
    out: dict[str, Any] = {"broker": ";".join(f"{scheme}://{h.strip()}" for h in settings.kafka_bootstrap.split(","))}
    if settings.kafka_security_protocol == "PLAINTEXT":
        return out
    import faust

    context = _ssl_context(settings) if settings.kafka_tls else None
    if settings.kafka_sasl:
        out["broker_credentials"] = faust.SASLCredentials(
            username=settings.kafka_sasl_username, password=settings.kafka_sasl_password, ssl_context=context,
            mechanism=settings.kafka_sasl_mechanism)
    else:
        out["broker_credentials"] = faust.SSLCredentials(context)
    if context is not None:
        out["ssl_context"] = context
    return out


class KafkaRefused(Exception):
    """Kafka answered but refuses this client as configured (credentials, certificates, security protocol):
    trying again cannot help. The message names the cause, never a secret."""


async def check_access(settings: Settings, timeout: float = 10.0) -> str | None:
    """Connect to the bootstrap servers the way every client does (TLS handshake, SASL authentication, one
    metadata request). Raises KafkaRefused naming the cause when the cluster refuses this client; returns why no
    server could be reached when none could (not this check's to judge: callers wait or give up as for any start),
    None when one accepted it."""
    from aiokafka.conn import collect_hosts, create_conn
    from aiokafka.protocol.metadata import MetadataRequest

    options = connection(settings)
    options.pop("bootstrap_servers")
    unreachable = refused = None
    for host, port, _ in collect_hosts(settings.kafka_bootstrap, randomize=False):
        conn = None
        try:
            async with asyncio.timeout(timeout):
                conn = await create_conn(host, port, client_id="slamon-check", request_timeout_ms=int(timeout * 1000),
                                         **options)
                await conn.send(MetadataRequest([]))
            return None
        except Exception as exc:  # noqa: BLE001 - sorted below: refused, or not reachable
            why = refusal(settings, exc)
            if why is not None:
                refused = refused or f"{host}:{port}: {why}"
            else:
                unreachable = f"{host}:{port}: {exc or type(exc).__name__}"
        finally:
            if conn is not None:
                conn.close()
    if refused:
        raise KafkaRefused(f"Kafka refused the connection ({refused})")
    return unreachable


def refusal(settings: Settings, exc: BaseException) -> str | None:
    """Why the broker refuses this client, when `exc` (of a connection attempt) says it does; None when the broker
    is only down, slow or unreachable."""
    import ssl

    from aiokafka import errors

    cause = exc.__cause__ or exc
    protocol = f"SLAMON_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol}"
    if isinstance(exc, errors.SaslAuthenticationFailed):
        return (f"the SASL credentials of user {settings.kafka_sasl_username!r} "
                f"({settings.kafka_sasl_mechanism}) were refused: {exc}")
    if isinstance(exc, errors.UnsupportedSaslMechanismError):
        return f"the listener does not offer SLAMON_KAFKA_SASL_MECHANISM={settings.kafka_sasl_mechanism}"
    if isinstance(exc, errors.IllegalSaslStateError):
        return f"the listener does not use SASL ({protocol}; SSL or PLAINTEXT instead?)"
    if isinstance(cause, ssl.SSLCertVerificationError):
        return (f"the broker's TLS certificate is not trusted ({cause.verify_message}); SLAMON_KAFKA_SSL_CAFILE "
                f"must hold the CA that signed it")
    if isinstance(cause, ssl.SSLError):
        reason = cause.reason or str(cause)
        hint = ("the listener asks for a client certificate it trusts (SLAMON_KAFKA_SSL_CERTFILE and _KEYFILE)"
                if "CERTIFICATE" in reason.upper() else f"does the listener use TLS? ({protocol})")
        return f"the TLS handshake failed ({reason}): {hint}"
    if isinstance(cause, asyncio.IncompleteReadError) and settings.kafka_security_protocol != "SASL_SSL":
        expected = "SASL" if settings.kafka_tls else "TLS"
        return f"the broker closed the connection at the first request: the listener expects {expected} ({protocol})"
    if isinstance(cause, ConnectionResetError) and settings.kafka_tls:
        return f"the broker reset the TLS handshake: does the listener use TLS? ({protocol})"
    return None


async def partitions_of(client: Any, topic: str) -> set[int]:
    """The partitions of `topic` as a started consumer sees them, refreshing metadata until the topic shows (a
    topic just created takes a moment to appear in every broker's metadata)."""
    parts = client.partitions_for_topic(topic)
    while not parts:
        await client._client.force_metadata_update()
        parts = client.partitions_for_topic(topic)
    return parts
