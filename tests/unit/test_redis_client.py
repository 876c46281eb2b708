"""Redis with a password and with TLS, against Debian's redis-server (`requirepass`, `--tls-port`, started by
monitor/localstack/redis_server.py): the clients of `redis_client` get in with the right settings, and the start
check tells a refusal (wrong password, untrusted certificate, plain client on a TLS port) from an outage."""

from __future__ import annotations

import asyncio

import pytest

from monitor import redis_client
from monitor.localstack.procs import free_port
from monitor.localstack.redis_server import RedisServer
from monitor.localstack.security import Security, make_ca
from monitor.settings import Settings

PASSWORD = "pw-of-the-test-4711"


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """A Redis with a password on a plain port, and one with TLS only and a password (the secured stack's)."""
    tmp = tmp_path_factory.mktemp("redis")
    material = Security("sasl_ssl", tmp / "security")
    material.create()
    procs, ready = [], []
    try:
        for server in (RedisServer(tmp / "plain", free_port(), password=PASSWORD),
                       RedisServer(tmp / "tls", free_port(), security=material)):
            procs.append(server.start())
            server.wait_ready(procs[-1].pid, 20)
            ready.append(server)
        yield (*ready, make_ca(tmp / "rogue"), material.secret("redis-password"))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


def check(url: str, cafile: str = "") -> str | None:
    env = {"SLAMON_REDIS_URL": url, **({"SLAMON_REDIS_SSL_CAFILE": cafile} if cafile else {})}
    return asyncio.run(redis_client.check(Settings.from_env(env), timeout=3))


def refused(url: str, cafile: str = "") -> str:
    with pytest.raises(redis_client.RedisRefused) as err:
        check(url, cafile)
    return str(err.value)


def test_the_right_password_and_certificate_get_in(servers):
    plain, tls, _, _ = servers
    assert check(plain.url) is None
    assert check(tls.url, tls.cafile) is None

    async def roundtrip() -> bytes:
        s = Settings.from_env({"SLAMON_REDIS_URL": tls.url, "SLAMON_REDIS_SSL_CAFILE": tls.cafile})
        r = redis_client.client(s, timeout=3)
        try:
            await r.set("k", "v")
            return await r.get("k")
        finally:
            await r.aclose()

    assert asyncio.run(roundtrip()) == b"v"


def test_a_wrong_or_missing_password_is_refused_without_showing_it(servers):
    plain, tls, _, tls_password = servers
    for url, cafile in ((plain.url.replace(PASSWORD, "nope-0815"), ""),
                        (tls.url.replace(tls_password, "nope-0815"), tls.cafile)):
        message = refused(url, cafile)
        assert "Redis refused the password of SLAMON_REDIS_URL" in message and ":***@" in message
        assert "nope-0815" not in message and PASSWORD not in message and tls_password not in message
    assert "Redis refused the password" in refused(plain.url.replace(f":{PASSWORD}@", ""))


def test_an_untrusted_certificate_or_the_wrong_protocol_is_refused(servers):
    _, tls, rogue, _ = servers
    message = refused(tls.url, str(rogue))
    assert "the TLS connection to Redis failed" in message and "CERTIFICATE_VERIFY_FAILED" in message
    assert "CERTIFICATE_VERIFY_FAILED" in refused(tls.url)  # the system's CAs do not know the stack's CA
    assert "closed the connection at once" in refused(tls.url.replace("rediss://", "redis://"))


def test_redis_down_is_not_a_refusal():
    why = check(f"redis://127.0.0.1:{free_port()}/0")
    assert why is not None and "Connect" in why
