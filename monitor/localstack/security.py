"""Secured local stacks (`SLAMON_STACK_SECURITY=sasl_ssl|mtls`): the certificates and secrets, the broker's and
Redis' settings, and the client variables written to `<state dir>/env`.

- `sasl_ssl`: Kafka's one client listener accepts only SASL_SSL with SCRAM-SHA-512. The users `slamon` (clients)
  and `broker` (the broker's own inter-broker connections, which use the same listener) are created when the log
  dir is formatted (`kafka.tools.StorageTool format --add-scram`).
- `mtls`: the listener accepts only TLS with a client certificate signed by the stack's CA.

In both, the controller listener stays PLAINTEXT on loopback (one node), and Redis listens only with TLS
(`--port 0 --tls-port`, no client certificate) and a password (`requirepass`, in a config file rather than on the
command line). Everything lives in `<state dir>/security/`, files readable by the owner only: a CA made for this
stack (EC P-256, openssl), a server certificate for 127.0.0.1 and localhost used by Kafka (PKCS#12 keystore) and
Redis, a client certificate (mTLS), and the passwords.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .procs import LOOPBACK, StackError

MODES = ("sasl_ssl", "mtls")
CLIENT_USER = "slamon"
BROKER_USER = "broker"
SCRAM = "SCRAM-SHA-512"
DAYS = "825"

_OPENSSL_CONFIG = """[req]
distinguished_name = dn
prompt = no
[dn]
CN = slamon
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
"""


def _openssl(cwd: Path, *args: str, env: dict[str, str] | None = None) -> None:
    try:
        result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                                env={**os.environ, **(env or {})})
    except FileNotFoundError:
        raise StackError("`openssl` is needed for a secured stack: apt-get install openssl") from None
    if result.returncode != 0:
        raise StackError(f"openssl {args[0]} failed (exit {result.returncode}): {result.stderr.strip()[-1000:]}")


def _new_key_and_request(cwd: Path, name: str, subject: str) -> None:
    _openssl(cwd, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-noenc",
             "-config", "openssl.cnf", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject)


def make_ca(directory: Path, name: str = "ca", subject: str = "/CN=slamon local stack CA") -> Path:
    """A new self-signed CA (`<name>.pem`, `<name>.key`) in `directory`; returns the certificate's path."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    (directory / "openssl.cnf").write_text(_OPENSSL_CONFIG)
    _openssl(directory, "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-noenc", "-config", "openssl.cnf", "-extensions", "ca", "-days", DAYS, "-keyout", f"{name}.key",
             "-out", f"{name}.pem", "-subj", subject)
    return directory / f"{name}.pem"


def issue(directory: Path, name: str, kind: str, subject: str, ca: str = "ca") -> Path:
    """A certificate `<name>.pem` with key `<name>.key`, signed by the CA `<ca>.pem`; `kind`: server or client."""
    _new_key_and_request(directory, name, subject)
    _openssl(directory, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
             "-set_serial", str(secrets.randbits(63)), "-days", DAYS, "-extfile", "openssl.cnf",
             "-extensions", kind, "-out", f"{name}.pem")
    (directory / f"{name}.csr").unlink()
    return directory / f"{name}.pem"


def _secret_file(path: Path, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")


@dataclass(frozen=True)
class Security:
    """The security of one stack: `mode` (sasl_ssl or mtls) and its material in `directory`."""

    mode: str
    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / name

    def secret(self, name: str) -> str:
        return self.path(name).read_text().strip()

    @property
    def ready(self) -> bool:
        return self.path("server.p12").is_file() and self.path("redis-password").is_file()

    def create(self) -> None:
        """Make the CA, certificates, keystore and passwords (once: a restarted stack keeps them)."""
        if self.ready:
            return
        d = self.directory
        make_ca(d)
        issue(d, "server", "server", "/CN=localhost")
        issue(d, "client", "client", f"/CN={CLIENT_USER}")
        for name in ("keystore-password", "kafka-password", "broker-password", "redis-password"):
            _secret_file(self.path(name), secrets.token_hex(16))
        _openssl(d, "pkcs12", "-export", "-in", "server.pem", "-inkey", "server.key", "-certfile", "ca.pem",
                 "-name", "broker", "-out", "server.p12.tmp", "-passout", "env:SLAMON_KEYSTORE_PASSWORD",
                 env={"SLAMON_KEYSTORE_PASSWORD": self.secret("keystore-password")})
        for f in d.iterdir():
            f.chmod(0o600)
        os.replace(self.path("server.p12.tmp"), self.path("server.p12"))

    # ------------------------------------------------------------------------------------------ Kafka

    @property
    def listener(self) -> str:
        return "SASL_SSL" if self.mode == "sasl_ssl" else "SSL"

    def kafka_properties(self, port: int, controller_port: int) -> dict[str, str]:
        """What server.properties adds or replaces: one secured listener for clients and inter-broker traffic."""
        name = self.listener
        props = {
            "listeners": f"{name}://{LOOPBACK}:{port},CONTROLLER://{LOOPBACK}:{controller_port}",
            "advertised.listeners": f"{name}://{LOOPBACK}:{port}",
            "listener.security.protocol.map": f"{name}:{name},CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": name,
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(self.path("server.p12")),
            "ssl.keystore.password": self.secret("keystore-password"),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.path("ca.pem")),
        }
        if self.mode == "mtls":
            props["ssl.client.auth"] = "required"
        else:
            props.update({
                "sasl.enabled.mechanisms": SCRAM,
                "sasl.mechanism.inter.broker.protocol": SCRAM,
                f"listener.name.{name.lower()}.{SCRAM.lower()}.sasl.jaas.config":
                    "org.apache.kafka.common.security.scram.ScramLoginModule required "
                    f'username="{BROKER_USER}" password="{self.secret("broker-password")}";',
            })
        return props

    def format_args(self) -> list[str]:
        """Arguments of `StorageTool format` that create the SCRAM users (none for mTLS)."""
        if self.mode == "mtls":
            return []
        return [arg for user, secret in ((CLIENT_USER, "kafka-password"), (BROKER_USER, "broker-password"))
                for arg in ("--add-scram", f"{SCRAM}=[name={user},password={self.secret(secret)}]")]

    def kafka_env(self) -> dict[str, str]:
        """The SLAMON_KAFKA_* variables (but the bootstrap servers) a client of this stack needs."""
        env = {"SLAMON_KAFKA_SECURITY_PROTOCOL": self.listener, "SLAMON_KAFKA_SSL_CAFILE": str(self.path("ca.pem"))}
        if self.mode == "mtls":
            env.update(SLAMON_KAFKA_SSL_CERTFILE=str(self.path("client.pem")),
                       SLAMON_KAFKA_SSL_KEYFILE=str(self.path("client.key")))
        else:
            env.update(SLAMON_KAFKA_SASL_MECHANISM=SCRAM, SLAMON_KAFKA_SASL_USERNAME=CLIENT_USER,
                       SLAMON_KAFKA_SASL_PASSWORD_FILE=str(self.path("kafka-password")))
        return env

    def kafka_client_options(self, bootstrap: str) -> dict[str, Any]:
        """aiokafka's connection arguments for this stack, built the way slamon builds them from its settings."""
        from .. import kafka
        from ..settings import Settings

        return kafka.connection(Settings.from_env({**self.kafka_env(), "SLAMON_KAFKA_BOOTSTRAP": bootstrap}))

    # ------------------------------------------------------------------------------------------ Redis

    def redis_config(self, port: int) -> str:
        """redis.conf lines: TLS only on `port`, with the server certificate, and the password."""
        return (f"port 0\ntls-port {port}\ntls-cert-file {self.path('server.pem')}\n"
                f"tls-key-file {self.path('server.key')}\ntls-ca-cert-file {self.path('ca.pem')}\n"
                f"tls-auth-clients no\nrequirepass {self.secret('redis-password')}\n")

    def redis_url(self, port: int) -> str:
        return f"rediss://:{self.secret('redis-password')}@{LOOPBACK}:{port}/0"

    def redis_env(self, port: int) -> dict[str, str]:
        """SLAMON_REDIS_URL_FILE (the URL holds the password, so it is a file) and SLAMON_REDIS_SSL_CAFILE."""
        url_file = self.path("redis-url")
        if not url_file.is_file() or url_file.read_text().strip() != self.redis_url(port):
            _secret_file(url_file, self.redis_url(port))
        return {"SLAMON_REDIS_URL_FILE": str(url_file), "SLAMON_REDIS_SSL_CAFILE": str(self.path("ca.pem"))}
