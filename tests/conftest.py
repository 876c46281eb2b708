"""Shared fixtures. Keep module-level imports light: unit tests must not need (or start) the local stack.

Sections: local stack (Kafka + Redis) | secured local stacks | naming helpers. Add new fixtures under a section of
their own.
"""

from __future__ import annotations

import re
import uuid

import pytest

# ------------------------------------------------------------------------------------------ local stack


@pytest.fixture(scope="session")
def stack():
    """The local Kafka + Redis: `.kafka_bootstrap` ("127.0.0.1:PORT"), `.redis_url`, `.state_dir`, `.env`.

    Lazy: started only when a test asks for it. Reuses the healthy stack of `make stack-up` (`.stack/` or
    $SLAMON_STACK_DIR) and leaves it running; otherwise starts a private one for this session and stops it
    at the end (concurrent sessions in one checkout each get their own).
    """
    from monitor.localstack import session_stack

    with session_stack() as info:
        yield info


# ---------------------------------------------------------------------------------- secured local stacks


@pytest.fixture(scope="session", params=["sasl_ssl", "mtls"])
def secured_stack(request):
    """A local Kafka + Redis that accept only secured clients: `.env` holds every variable a client needs (the
    SLAMON_KAFKA_* security settings, SLAMON_REDIS_URL_FILE, SLAMON_REDIS_SSL_CAFILE), `.security` the mode,
    `.kafka_bootstrap`, `.redis_url` (with its password), `.state_dir` (certificates and secrets in security/).

    "sasl_ssl": SCRAM-SHA-512 over TLS; "mtls": TLS with client certificates. Redis: TLS only, with a password.
    A test that takes this fixture runs once per mode; `@pytest.mark.parametrize("secured_stack", ["sasl_ssl"],
    indirect=True)` picks one. Each mode is started in a private state dir when a test first asks for it and
    stopped when the tests of that mode are done (pytest keeps one instance of a parametrized session fixture).
    """
    from monitor.localstack import session_stack

    with session_stack(security=request.param) as info:
        yield info


# --------------------------------------------------------------------------------------- naming helpers


@pytest.fixture
def unique_name(request) -> str:
    """A suffix unique to this test run, safe in Kafka topic / group names and Redis keys:
    `<test name, sanitised>-<8 hex>`, e.g. f"workflow.events-{unique_name}"."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", request.node.name).strip("-.")[:60]
    return f"{base}-{uuid.uuid4().hex[:8]}"
