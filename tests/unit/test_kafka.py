"""The Kafka clients' connection settings: aiokafka's arguments and Faust's broker credentials made from the same
settings, and which connection errors mean "refused" (fatal) rather than "unreachable" (wait)."""

from __future__ import annotations

import asyncio
import ssl

import pytest
from aiokafka import errors
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from monitor import kafka
from monitor.localstack.procs import free_port
from monitor.localstack.security import Security
from monitor.settings import Settings


@pytest.fixture(scope="module")
def pem(tmp_path_factory):
    """A CA, a client certificate and key (openssl), as a secured local stack has them."""
    material = Security("mtls", tmp_path_factory.mktemp("tls"))
    material.create()
    return {name: str(material.path(name)) for name in ("ca.pem", "client.pem", "client.key")}


def sasl_ssl(pem, **extra: str) -> Settings:
    return Settings.from_env({"SLAMON_KAFKA_BOOTSTRAP": "b1:9093,b2:9093", "SLAMON_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                              "SLAMON_KAFKA_SASL_MECHANISM": "scram-sha-512", "SLAMON_KAFKA_SASL_USERNAME": "mon",
                              "SLAMON_KAFKA_SASL_PASSWORD": "pw", "SLAMON_KAFKA_SSL_CAFILE": pem["ca.pem"], **extra})


def test_plaintext_clients_pass_only_the_servers():
    s = Settings.from_env({"SLAMON_KAFKA_BOOTSTRAP": "k:9092"})
    assert kafka.connection(s) == {"bootstrap_servers": "k:9092", "security_protocol": "PLAINTEXT"}
    assert kafka.faust_broker(s, scheme="slamon") == {"broker": "slamon://k:9092"}


def test_sasl_ssl_clients_verify_the_brokers_and_authenticate(pem):
    options = kafka.connection(sasl_ssl(pem))
    context = options.pop("ssl_context")
    assert options == {"bootstrap_servers": "b1:9093,b2:9093", "security_protocol": "SASL_SSL",
                       "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "mon", "sasl_plain_password": "pw"}
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "slamon local stack CA"),),)]
    assert kafka.connection(sasl_ssl(pem))["ssl_context"] is context  # one context per settings


def secured(pem, protocol: str) -> Settings:
    env = {"SLAMON_KAFKA_BOOTSTRAP": "b1:9093,b2:9093", "SLAMON_KAFKA_SECURITY_PROTOCOL": protocol}
    if protocol.startswith("SASL_"):
        env.update(SLAMON_KAFKA_SASL_MECHANISM="SCRAM-SHA-256", SLAMON_KAFKA_SASL_USERNAME="mon",
                   SLAMON_KAFKA_SASL_PASSWORD="pw")
    if protocol.endswith("SSL"):
        env["SLAMON_KAFKA_SSL_CAFILE"] = pem["ca.pem"]
    if protocol == "SSL":
        env.update(SLAMON_KAFKA_SSL_CERTFILE=pem["client.pem"], SLAMON_KAFKA_SSL_KEYFILE=pem["client.key"])
    return Settings.from_env(env)


@pytest.mark.parametrize("protocol", ["SASL_SSL", "SASL_PLAINTEXT", "SSL"])
def test_faust_gets_the_same_security_as_every_other_client(pem, protocol):
    """Faust's aiokafka driver turns broker_credentials into aiokafka arguments (credentials_to_aiokafka_auth, for
    its consumers and producer): they must equal what monitor/kafka.py gives the other clients."""
    import faust

    s = secured(pem, protocol)
    broker = kafka.faust_broker(s, scheme="slamon")
    assert broker["broker"] == "slamon://b1:9093;slamon://b2:9093"
    theirs = credentials_to_aiokafka_auth(broker["broker_credentials"], broker.get("ssl_context"))
    ours = kafka.connection(s)
    del ours["bootstrap_servers"]
    assert {k: v for k, v in theirs.items() if v is not None} == ours
    assert ours["security_protocol"] == protocol
    app = faust.App("t", **broker)
    assert app.conf.broker_credentials is broker["broker_credentials"]


def test_refused_or_unreachable(pem):
    s = sasl_ssl(pem)
    conn_closed = errors.KafkaConnectionError("Connection at b1:9093 closed")
    conn_closed.__cause__ = asyncio.IncompleteReadError(b"\x15\x03\x03", 352518912)
    bad_cert = errors.KafkaConnectionError("closed")
    bad_cert.__cause__ = ssl.SSLError(1, "[SSL: SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert bad certificate")
    bad_cert.__cause__.reason = "SSLV3_ALERT_BAD_CERTIFICATE"
    untrusted = ssl.SSLCertVerificationError(1, "certificate verify failed")
    untrusted.verify_message = "self-signed certificate in certificate chain"
    plain = Settings.from_env({})
    assert "the SASL credentials of user 'mon' (SCRAM-SHA-512) were refused" in kafka.refusal(
        s, errors.SaslAuthenticationFailed("invalid credentials"))
    assert "does not offer SLAMON_KAFKA_SASL_MECHANISM" in kafka.refusal(s, errors.UnsupportedSaslMechanismError())
    assert "does not use SASL" in kafka.refusal(s, errors.IllegalSaslStateError())
    assert "not trusted (self-signed certificate in certificate chain)" in kafka.refusal(s, untrusted)
    assert "asks for a client certificate" in kafka.refusal(s, bad_cert)
    assert "the listener expects TLS" in kafka.refusal(plain, conn_closed)
    assert kafka.refusal(s, conn_closed) is None  # SASL_SSL: a broker going away mid-request, not a refusal
    for passing in (ConnectionRefusedError(111, "refused"), TimeoutError(), errors.KafkaConnectionError("x")):
        assert kafka.refusal(s, passing) is None and kafka.refusal(plain, passing) is None


def test_check_access_returns_why_nothing_answers_without_raising():
    port = free_port()
    s = Settings.from_env({"SLAMON_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}"})
    why = asyncio.run(kafka.check_access(s, timeout=5))
    assert why is not None and f"127.0.0.1:{port}" in why
