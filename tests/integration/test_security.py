"""Secured Kafka and Redis (issue 12), on the stacks of the `secured_stack` fixture: Kafka accepts only SASL_SSL
with SCRAM-SHA-512 ("sasl_ssl") or TLS with client certificates ("mtls"), Redis only TLS with a password.

- the worker, `slamon policy apply`, the board and the notifier work end to end there, configured only by the
  stack's env (secrets as *_FILE): the live warnings equal the replay's, the board (read through the query API)
  holds exactly the open breaches, Alertmanager exactly their alerts;
- the worker's web port serves only /metrics, /healthz, /readyz and /api/* (Faust's own views answer 404), and an
  Authorization header that is not UTF-8 gets 401;
- no secret (Kafka and Redis passwords, the API token, the keystore's) shows in any log, /readyz, /metrics,
  --help or error message;
- a plaintext client, a wrong password, an untrusted CA, a missing client certificate: each of worker, board,
  notifier, `topics apply` and `policy apply` ends within 30 s with one line naming the cause.
"""

from __future__ import annotations

import asyncio
import http.client
import itertools
import os
import random
import secrets
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest

from monitor import kafka
from monitor.core.vocabulary import BREACH_KINDS
from monitor.localstack.security import issue, make_ca
from monitor.settings import Settings

from .live import ROOT, Worker, free_port, now, seconds, utc, wait_for, worker_env
from .test_live import TICK, scenario, write_policies
from .test_oncall import Proc, start_alertmanager

pytestmark = pytest.mark.integration

FAIL_WITHIN = 30.0  # seconds a refused command may take to end
FAUST_VIEWS = ("/", "/router", "/router/", "/table", "/table/", "/table/orders", "/table/orders/x", "/stats/",
               "/assignment/", "/graph/", "/performance/", "/favicon.ico")
SECRET_FILES = ("kafka-password", "broker-password", "keystore-password", "redis-password")


def secrets_of(stack, *more: str) -> list[str]:
    """The stack's passwords (and `more`): none may show anywhere."""
    return [(Path(stack.state_dir) / "security" / name).read_text().strip() for name in SECRET_FILES] + list(more)


def clean_env(**env: str) -> dict[str, str]:
    """The environment of a command: this process's without any SLAMON_* variable, plus `env`."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("SLAMON_")}, **env}


def slamon(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "monitor.cli", *args], cwd=ROOT, env=clean_env(**env),
                          capture_output=True, text=True, timeout=timeout)


class Topics:
    """Produce and read the topics of one prefix with slamon's own clients (monitor/kafka.py), so on the secured
    cluster exactly as the worker reaches it."""

    def __init__(self, env: dict[str, str], prefix: str):
        self.settings = Settings.from_env(env)
        self.prefix = prefix

    def play(self, events: list[dict]) -> None:
        """Produce the events when their `at` comes: those of one instant together, then flushed."""
        moments = itertools.groupby(sorted(events, key=lambda e: e["at"]), key=lambda e: e["at"])

        async def go() -> None:
            producer = kafka.producer(self.settings, client_id="test-play", acks="all")
            await producer.start()
            try:
                for at, batch in moments:
                    await asyncio.sleep(max((datetime.fromisoformat(at) - now()).total_seconds(), 0))
                    for e in batch:
                        await producer.send(f"{self.prefix}workflow.events", orjson.dumps(e), key=e["order_id"].encode())
                    await producer.flush()
            finally:
                await producer.stop()

        asyncio.run(go())

    def records(self, logical: str) -> list[dict]:
        """Every committed record of a topic, from its start to its end offsets."""

        async def go() -> list[dict]:
            from aiokafka import TopicPartition

            topic = f"{self.prefix}{logical}"
            consumer = kafka.consumer(self.settings, client_id="test-read", group_id=None, enable_auto_commit=False)
            await consumer.start()
            try:
                tps = [TopicPartition(topic, p) for p in await kafka.partitions_of(consumer, topic)]
                consumer.assign(tps)
                await consumer.seek_to_beginning(*tps)
                ends, got = await consumer.end_offsets(tps), []
                async with asyncio.timeout(30):
                    while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                        for messages in (await consumer.getmany(timeout_ms=500)).values():
                            got += [orjson.loads(m.value) for m in messages]
                return got
            finally:
                await consumer.stop()

        return asyncio.run(go())


@pytest.fixture(scope="module")
def deployed(secured_stack, tmp_path_factory):
    """On one secured stack: policies published by `slamon policy apply`, a worker with the API on (token from a
    file), the board, the notifier and Alertmanager, all configured by the stack's env alone."""
    stack = secured_stack
    tmp = tmp_path_factory.mktemp(f"secured-{stack.security}")
    prefix = f"s{uuid.uuid4().hex[:8]}."
    token = secrets.token_hex(16)
    (tmp / "api-token").write_text(token + "\n")
    env = {**stack.env, "SLAMON_TOPIC_PREFIX": prefix, "SLAMON_APP_ID": prefix.rstrip(".")}
    policies = write_policies(tmp / "policies")
    applied = slamon(["policy", "apply", str(policies)], env)
    assert applied.returncode == 0, applied.stderr
    am = start_alertmanager(tmp)
    w_env = {**worker_env(stack, prefix, free_port(), tmp / "data", SLAMON_TICK_INTERVAL=str(TICK),
                          SLAMON_API_TOKEN_FILE=str(tmp / "api-token")), **stack.env}
    del w_env["SLAMON_REDIS_URL"]  # the stack gives SLAMON_REDIS_URL_FILE
    worker = Worker(clean_env(**w_env), tmp / "worker.log").start()
    oncall = [Proc([sys.executable, "-m", "monitor.cli", *args], clean_env(**env, SLAMON_WEB_PORT=str(free_port()),
                                                                          SLAMON_ALERTMANAGER_URL=am.url),
                   tmp / f"{args[0]}.log") for args in (["board"], ["notifier", "--lease", "5", "--resend", "1"])]
    try:
        worker.wait_ready()
        yield SimpleNamespace(stack=stack, env=env, token=token, worker=worker, am=am, tmp=tmp,
                              topics=Topics(env, prefix), outputs=[applied.stdout, applied.stderr])
    finally:
        for p in oncall:
            p.stop()
        am.stop()
        assert worker.stop() == 0, worker.tail()


def api(worker: Worker, path: str, authorization: bytes | str | None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", worker.port, timeout=10)
    try:
        conn.putrequest("GET", path)
        if authorization is not None:
            conn.putheader("Authorization", authorization)
        conn.endheaders()
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def open_breaches(warnings: list[dict]) -> set[str]:
    """Breach warnings whose run has not ended (no `resolved` for it)."""
    ended = {w["warning_id"].rsplit(":", 1)[0] for w in warnings if w["kind"] == "resolved"}
    return {w["warning_id"] for w in warnings if w["kind"] in BREACH_KINDS
            and w["warning_id"].rsplit(":", 1)[0] not in ended}


def test_live_equals_replay_and_the_board_and_alerts_follow(deployed, tmp_path):
    tag = f"sec{uuid.uuid4().hex[:6]}"
    events = scenario(tag, now() + seconds(1), random.Random(12))
    deployed.topics.play(events)
    judge_at = max(datetime.fromisoformat(e["at"]) for e in events) + seconds(9)  # every open run crossed
    wait_for(lambda: now() > judge_at + seconds(2 * TICK + 1), 30, "the last crossings")
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in events))
    replay = slamon(["replay", "--policies", str(deployed.tmp / "policies"), "--events", str(path),
                     "--now", utc(judge_at), "--json"], {})
    assert replay.returncode == 0, replay.stderr
    expected = orjson.loads(replay.stdout)["warnings"]
    live = [w for w in deployed.topics.records("sla.warnings") if w["order_id"].startswith(tag)]
    same = lambda w: (w["warning_id"], w["crossed_at"], w["state"], w["elapsed_s"])  # noqa: E731
    assert sorted(map(same, live)) == sorted(map(same, expected)) and len(expected) >= 10

    want = open_breaches(expected)
    assert want, "the scenario leaves breached runs open"

    def board() -> set[str] | None:
        status, body = api(deployed.worker, "/api/breaches?limit=1000", f"Bearer {deployed.token}")
        got = {b["warning_id"] for b in orjson.loads(body)["breaches"] if b["order_id"].startswith(tag)}
        return got if status == 200 and got == want else None

    wait_for(board, 30, "the board (TLS Redis with a password, read through the API) to hold the open breaches")
    kinds = {"commitment_breached": "SLACommitmentBreached", "tolerance_breached": "SLAToleranceBreached"}
    alerts = {(o, n, r, kinds[k]) for o, n, r, k in (wid.split(":") for wid in want)}

    def delivered() -> bool:
        got = {(a["labels"]["order_id"], a["labels"]["node"], a["labels"]["run"], a["labels"]["alertname"])
               for order in {e["order_id"] for e in events} for a in deployed.am.alerts(order)}
        return got == alerts

    wait_for(delivered, 60, "Alertmanager to hold the alerts of the open breaches")


def test_the_web_port_serves_only_slamon_views(deployed):
    w = deployed.worker
    for path in FAUST_VIEWS:
        assert api(w, path, None)[0] == 404, path
    assert [api(w, p, None)[0] for p in ("/metrics", "/healthz", "/readyz")] == [200, 200, 200]
    assert api(w, "/api/breaches", None)[0] == 401
    assert api(w, "/api/breaches", b"Bearer \xff\xfe\x80")[0] == 401  # not UTF-8: no token, not a 500
    assert api(w, "/api/breaches", b"\xc3(")[0] == 401
    assert api(w, "/api/breaches", "Bearer not-the-token")[0] == 403
    assert api(w, "/api/breaches", f"Bearer {deployed.token}")[0] == 200


def test_no_secret_shows_in_logs_readyz_metrics_or_help(deployed):
    shown = [*deployed.outputs, *(p.read_text(errors="replace") for p in deployed.tmp.glob("*.log")),
             *(api(deployed.worker, p, None)[1].decode() for p in ("/readyz", "/metrics"))]
    for args in (["worker", "--help"], ["board", "--help"], ["stack", "status"]):
        r = slamon(args, {**deployed.env, "SLAMON_STACK_DIR": str(deployed.stack.state_dir)})
        shown += [r.stdout, r.stderr]
    text = "\n".join(shown)
    assert "SLAMON_KAFKA_SASL_PASSWORD" in text and '"ready":true' in text and "board started" in text
    for secret in secrets_of(deployed.stack, deployed.token):
        assert secret not in text


# ------------------------------------------------------------------------------------ refused clients


def refused_within(env: dict[str, str], tmp: Path, secrets_: list[str], *,
                   which: tuple[str, ...] = ("worker", "board", "notifier", "topics apply", "policy apply"),
                   ) -> dict[str, str]:
    """Run the commands `which` side by side; each must end within FAIL_WITHIN seconds, with a non-zero status and
    one line of output that shows none of `secrets_`. Returns each command's line."""
    args = {"worker": ["worker"], "board": ["board"], "notifier": ["notifier"], "topics apply": ["topics", "apply"],
            "policy apply": ["policy", "apply", str(write_policies(tmp / "policies"))]}
    env = {"SLAMON_TOPIC_PREFIX": f"r{uuid.uuid4().hex[:6]}.", "SLAMON_API_TOKEN": "t" * 16,
           "SLAMON_ALERTMANAGER_URL": "http://127.0.0.1:9", **env}
    started = time.monotonic()
    procs = {name: subprocess.Popen([sys.executable, "-m", "monitor.cli", *args[name]], cwd=ROOT,
                                    env=clean_env(**env, SLAMON_WEB_PORT=str(free_port())), stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True) for name in which}
    lines = {}
    for name, p in procs.items():
        try:
            out, _ = p.communicate(timeout=max(FAIL_WITHIN - (time.monotonic() - started), 0.1))
        except subprocess.TimeoutExpired:
            for q in procs.values():
                q.kill()
            pytest.fail(f"`slamon {name}` still ran {FAIL_WITHIN:g}s after it was started")
        said = [line for line in out.splitlines() if line.strip()]
        assert p.returncode != 0 and len(said) == 1, (name, p.returncode, said)
        assert not [s for s in secrets_ if s in out], (name, "shows a secret")
        lines[name] = said[0]
    return lines


def kafka_only(stack, **changes: str | None) -> dict[str, str]:
    """The stack's env with the Kafka variables changed (None: removed); Redis as the stack has it."""
    env = {**stack.env, **changes}
    return {k: v for k, v in env.items() if v is not None}


def test_a_plaintext_client_is_refused(secured_stack, tmp_path):
    stack = secured_stack
    plain = kafka_only(stack, **{k: None for k in stack.env if k.startswith("SLAMON_KAFKA_") and "BOOTSTRAP" not in k})
    for name, line in refused_within(plain, tmp_path, secrets_of(stack)).items():
        assert "the listener expects TLS" in line, (name, line)
    redis_plain = {k: v for k, v in stack.env.items() if not k.startswith("SLAMON_REDIS_")}
    redis_plain["SLAMON_REDIS_URL"] = stack.redis_url.replace("rediss://", "redis://")
    for name, line in refused_within(redis_plain, tmp_path, secrets_of(stack), which=("board", "notifier", "worker"),
                                     ).items():
        assert "Redis closed the connection at once" in line, (name, line)


@pytest.mark.parametrize("secured_stack", ["sasl_ssl"], indirect=True)
def test_a_wrong_password_ends_each_command_within_30s_with_one_line(secured_stack, tmp_path):
    stack = secured_stack
    wrong = f"wrong-{uuid.uuid4().hex}"
    env = kafka_only(stack, SLAMON_KAFKA_SASL_PASSWORD=wrong, SLAMON_KAFKA_SASL_PASSWORD_FILE=None)
    for name, line in refused_within(env, tmp_path, secrets_of(stack, wrong)).items():
        assert "the SASL credentials of user 'slamon' (SCRAM-SHA-512) were refused" in line, (name, line)
    password = (Path(stack.state_dir) / "security" / "redis-password").read_text().strip()
    (tmp_path / "redis-url").write_text(stack.redis_url.replace(password, wrong))
    env = {**stack.env, "SLAMON_REDIS_URL_FILE": str(tmp_path / "redis-url")}
    for name, line in refused_within(env, tmp_path, secrets_of(stack, wrong),
                                     which=("board", "notifier", "worker")).items():
        assert "Redis refused the password of SLAMON_REDIS_URL" in line and "rediss://:***@" in line, (name, line)


def test_an_untrusted_certificate_ends_each_command_within_30s_with_one_line(secured_stack, tmp_path):
    stack = secured_stack
    rogue = make_ca(tmp_path / "rogue", subject="/CN=somebody else's CA")
    env = kafka_only(stack, SLAMON_KAFKA_SSL_CAFILE=str(rogue))
    for name, line in refused_within(env, tmp_path, secrets_of(stack)).items():
        assert "the broker's TLS certificate is not trusted (self-signed certificate in certificate chain)" in line, (
            name, line)
    env = {**stack.env, "SLAMON_REDIS_SSL_CAFILE": str(rogue)}
    for name, line in refused_within(env, tmp_path, secrets_of(stack), which=("board", "notifier", "worker")).items():
        assert "the TLS connection to Redis failed" in line and "CERTIFICATE_VERIFY_FAILED" in line, (name, line)


@pytest.mark.parametrize("secured_stack", ["mtls"], indirect=True)
def test_mutual_tls_refuses_a_client_without_a_certificate_it_trusts(secured_stack, tmp_path):
    stack = secured_stack
    make_ca(tmp_path / "rogue")
    issue(tmp_path / "rogue", "client", "client", "/CN=slamon")  # the right name, from another CA
    for cert in (None, tmp_path / "rogue" / "client"):
        env = kafka_only(stack, SLAMON_KAFKA_SSL_CERTFILE=cert and f"{cert}.pem",
                         SLAMON_KAFKA_SSL_KEYFILE=cert and f"{cert}.key")
        for name, line in refused_within(env, tmp_path, secrets_of(stack)).items():
            assert "the listener asks for a client certificate it trusts" in line, (name, line)
