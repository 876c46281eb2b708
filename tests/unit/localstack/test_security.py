"""The material and settings of secured local stacks (no servers): certificates that verify, the broker's listener
settings, the client variables, and the default (plaintext) stack left as it was."""

from __future__ import annotations

import ssl
import stat
import subprocess

import pytest

from monitor import kafka
from monitor.localstack import paths
from monitor.localstack.kafka_server import server_properties
from monitor.localstack.procs import StackError
from monitor.localstack.security import Security
from monitor.localstack.stack import up
from monitor.settings import Settings


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    sec = Security("sasl_ssl", tmp_path_factory.mktemp("stack") / "security")
    sec.create()
    return sec


def test_the_certificates_chain_to_the_stack_ca_and_only_the_owner_reads_them(material):
    for name, purpose in (("server", "sslserver"), ("client", "sslclient")):
        r = subprocess.run(["openssl", "verify", "-CAfile", "ca.pem", "-purpose", purpose, f"{name}.pem"],
                           cwd=material.directory, capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
    san = subprocess.run(["openssl", "x509", "-in", "server.pem", "-noout", "-ext", "subjectAltName"],
                         cwd=material.directory, capture_output=True, text=True).stdout
    assert "IP Address:127.0.0.1" in san and "DNS:localhost" in san
    context = ssl.create_default_context(cafile=str(material.path("ca.pem")))
    context.load_cert_chain(material.path("client.pem"), material.path("client.key"))
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in material.directory.iterdir())
    assert stat.S_IMODE(material.directory.stat().st_mode) == 0o700
    before = material.path("ca.pem").read_bytes()
    material.create()  # a restarted stack keeps its CA and secrets
    assert material.path("ca.pem").read_bytes() == before


def test_one_secured_listener_for_clients_and_the_broker_itself(material, tmp_path):
    props = server_properties(9093, 9094, tmp_path, material)
    assert props["listeners"] == "SASL_SSL://127.0.0.1:9093,CONTROLLER://127.0.0.1:9094"
    assert props["listener.security.protocol.map"] == "SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT"
    assert props["inter.broker.listener.name"] == "SASL_SSL" and props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert f'password="{material.secret("broker-password")}"' in props[
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]
    users = material.format_args()
    assert users[::2] == ["--add-scram", "--add-scram"]
    assert users[1] == f"SCRAM-SHA-512=[name=slamon,password={material.secret('kafka-password')}]"
    mtls = Security("mtls", material.directory)
    props = server_properties(9093, 9094, tmp_path, mtls)
    assert props["ssl.client.auth"] == "required" and props["inter.broker.listener.name"] == "SSL"
    assert "sasl.enabled.mechanisms" not in props and mtls.format_args() == []


def test_the_default_stack_stays_plaintext(tmp_path):
    props = server_properties(9093, 9094, tmp_path)
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9093,CONTROLLER://127.0.0.1:9094"
    assert props["listener.security.protocol.map"] == "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    assert not [k for k in props if k.startswith(("ssl.", "sasl."))]


@pytest.mark.parametrize("mode", ["sasl_ssl", "mtls"])
def test_the_env_holds_what_a_client_needs_and_no_secret(material, mode):
    sec = Security(mode, material.directory)
    env = {**sec.kafka_env(), **sec.redis_env(6390), "SLAMON_KAFKA_BOOTSTRAP": "127.0.0.1:9093"}
    s = Settings.from_env(env)
    options = kafka.connection(s)
    assert options["security_protocol"] == {"sasl_ssl": "SASL_SSL", "mtls": "SSL"}[mode]
    assert s.redis_url == f"rediss://:{material.secret('redis-password')}@127.0.0.1:6390/0"
    text = repr(env)
    assert not [name for name in ("kafka-password", "redis-password", "broker-password", "keystore-password")
                if material.secret(name) in text]


def test_the_security_mode_is_checked_before_anything_starts(tmp_path, monkeypatch):
    with pytest.raises(StackError, match="SLAMON_STACK_SECURITY='tls': use one of sasl_ssl, mtls"):
        up(tmp_path / "stack", security="tls")
    assert not (tmp_path / "stack" / "state.json").exists()
    for value, mode in (("", ""), ("none", ""), ("SASL_SSL", "sasl_ssl"), (" mtls ", "mtls")):
        monkeypatch.setenv("SLAMON_STACK_SECURITY", value)
        assert paths.stack_security() == mode
