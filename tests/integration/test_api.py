"""The query API of a real worker subprocess, against the real Kafka and Redis of the `stack` fixture.

Events are produced with times in the past, so some runs have breached at once and some have ended; the breach
board is then written into Redis from the worker's own `sla.warnings` and `sla.outcomes`, as the board would
(the layout of monitor/oncall/keys.py). Every response is validated with jsonschema against the response
schemas of deploy/api/openapi.yaml (schemathesis is not used).
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import defaultdict
from datetime import datetime
from typing import Any

import jsonschema
import orjson
import pytest
import yaml

from monitor.core.vocabulary import BREACH_KINDS
from monitor.oncall import keys
from monitor.query import API_DISABLED, partition_for

from .live import ROOT, Topics, Worker, event, free_port, now, seconds, wait_for, worker_env

pytestmark = pytest.mark.integration

PARTITIONS = 4
POLICIES = {
    "p.yaml": """process: p
version: 3
nodes:
  slow:  {commitment: 1h, tolerance: 2h, owner: team-s}
  quick: {commitment: 1s, tolerance: 1h, owner: team-q}
  fast:  {commitment: 1s, tolerance: 2s, owner: team-f}
  done:  {commitment: 1h, tolerance: 2h}
""",
    "q.yaml": """process: q
nodes:
  fast: {commitment: 1s, tolerance: 2s, owner: team-f}
""",
}
OPENAPI = yaml.safe_load((ROOT / "deploy/api/openapi.yaml").read_text())
ORDER = "/api/orders/{order_id}"
BREACHES = "/api/breaches"


# ------------------------------------------------------------------------------------------ HTTP


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # hand 3xx back to the caller


OPENER = urllib.request.build_opener(NoRedirect)


class Reply:
    def __init__(self, status: int, headers: Any, body: bytes):
        self.status, self.headers, self.raw = status, headers, body
        is_json = headers.get("Content-Type", "").startswith("application/json")
        self.json = orjson.loads(body) if body and is_json else None


def call(port: int, path: str, token: str | None = None, method: str = "GET", base: str | None = None) -> Reply:
    req = urllib.request.Request((base or f"http://127.0.0.1:{port}") + path, method=method)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with OPENER.open(req, timeout=10) as r:
            return Reply(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return Reply(e.code, e.headers, e.read())


def check(reply: Reply, template: str, status: int) -> dict[str, Any]:
    """The reply has `status`, is JSON, and validates against the OpenAPI response schema of (template, status)."""
    assert reply.status == status, (reply.status, reply.raw[:500])
    assert reply.headers.get("Content-Type", "").startswith("application/json")
    response = OPENAPI["paths"][template]["get"]["responses"][str(status)]
    if "$ref" in response:
        response = OPENAPI["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    for name, header in response.get("headers", {}).items():
        if header.get("required"):
            assert reply.headers.get(name), f"{status} without {name}"
    jsonschema.Draft202012Validator({**OPENAPI, **response["content"]["application/json"]["schema"]}).validate(
        reply.json)
    return reply.json


def order_path(order_id: str) -> str:
    return "/api/orders/" + urllib.parse.quote(order_id, safe="")


# ------------------------------------------------------------------------------------------ the board


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


RUN_FIELDS = ("order_id", "process", "node", "run", "segment", "owner", "policy_version", "attrs", "started_at",
              "commitment_s", "tolerance_s")
COMPLETED_LEVEL = {"completed_normal": "normal", "completed_acceptable": "acceptable",
                   "completed_warning": "warning"}


def write_board(r: Any, ns: str, warnings: list[dict[str, Any]], outcomes: list[dict[str, Any]]) -> None:
    """What the board keeps for these records (monitor/oncall/keys.py): every run's record in its order hash,
    and the open breaches (runs that crossed a limit and have not ended) in the sorted sets and strings."""
    runs: dict[tuple[str, str, int], dict[str, list]] = defaultdict(lambda: {"warnings": [], "outcome": []})
    for w in warnings:
        runs[(w["order_id"], w["node"], w["run"])]["warnings"].append(w)
    for o in outcomes:
        runs[(o["order_id"], o["node"], o["run"])]["outcome"].append(o)
    pipe = r.pipeline()
    for (order_id, node, number), got in runs.items():
        crossings = [w for w in sorted(got["warnings"], key=lambda w: w["crossed_at"]) if w["kind"] != "resolved"]
        kinds = [w["kind"] for w in crossings]
        last = got["outcome"][-1] if got["outcome"] else crossings[-1]
        rec = {f: last[f] for f in RUN_FIELDS}
        if got["outcome"]:
            rec.update(state=last["state"], level=COMPLETED_LEVEL.get(last["state"], "normal"),
                       ended_at=last["ended_at"], elapsed_s=last["elapsed_s"])
        else:
            level = ("warning" if "tolerance_breached" in kinds else
                     "acceptable" if "commitment_breached" in kinds else "normal")
            rec.update(state=f"in_progress_{level}", level=level, ended_at=None)
        rec["crossings"] = kinds
        pipe.hset(keys.order(ns, order_id), keys.run_field(node, number), orjson.dumps(rec))
        if got["outcome"]:
            continue
        for w in crossings:
            if w["kind"] not in BREACH_KINDS:
                continue
            score = {w["warning_id"]: epoch(w["crossed_at"])}
            pipe.zadd(keys.breaches(ns), score)
            pipe.zadd(keys.breaches_by_owner(ns, w["owner"]), score)
            pipe.zadd(keys.breaches_by_process(ns, w["process"]), score)
            pipe.set(keys.breach(ns, w["warning_id"]), orjson.dumps(w))
    pipe.execute()


# ------------------------------------------------------------------------------------------ the worker


@pytest.fixture(scope="module")
def env(stack, tmp_path_factory):
    """Worker A (API on) with orders applied and the board written; yields a namespace of everything."""
    import redis

    class Env:
        pass

    e = Env()
    prefix = f"a{uuid.uuid4().hex[:8]}."
    d = tmp_path_factory.mktemp("api")
    pol = d / "policies"
    pol.mkdir()
    for name, text in POLICIES.items():
        (pol / name).write_text(text)
    e.token = f"tok-{uuid.uuid4().hex}"
    e.app_id = prefix.rstrip(".")
    e.ns = keys.namespace(e.app_id)
    e.dir, e.stack, e.prefix = d, stack, prefix
    e.redis = redis.Redis.from_url(stack.redis_url)
    e.worker = Worker(worker_env(stack, prefix, free_port(), d / "data-a", SLAMON_POLICIES=str(pol),
                                 SLAMON_PARTITIONS=str(PARTITIONS), SLAMON_API_TOKEN=e.token),
                      d / "worker-a.log").start()
    e.topics = Topics(stack.kafka_bootstrap, prefix)
    try:
        e.worker.wait_ready()
        tag = uuid.uuid4().hex[:6]
        e.a1, e.a2, e.a3, e.q1 = (f"api-{tag}-{x}" for x in ("a1", "a2", "a3", "q1"))
        e.ghost = f"api-{tag}/ghost:1"  # only on the board
        t0 = now() - seconds(120)
        e.t0 = t0
        events = [
            event(e.a1, "node_started", t0, node="slow", segment="gold", attrs={"region": "north"}),
            event(e.a1, "node_started", t0, node="quick"),
            event(e.a1, "node_started", t0, node="fast"),
            event(e.a1, "node_started", t0, node="done"),
            event(e.a1, "node_paused", t0 + seconds(5), node="slow"),
            event(e.a1, "node_completed", t0 + seconds(10), node="done"),
            event(e.a1, "node_started", t0 + seconds(20), node="done"),
            event(e.a2, "node_started", t0 + seconds(1), node="fast"),
            event(e.a2, "node_completed", t0 + seconds(30), node="fast"),
            event(e.q1, "node_started", t0 + seconds(2), node="fast", process="q"),
            event(e.a3, "node_started", t0 + seconds(3), node="quick"),
        ]
        e.topics.produce(sorted(events, key=lambda x: x["at"]))
        ours = (e.a1, e.a2, e.a3, e.q1)

        def complete():
            ws = [w for w in e.topics.records("sla.warnings") if w["order_id"] in ours]
            os_ = [o for o in e.topics.records("sla.outcomes") if o["order_id"] in ours]
            crossings = [w for w in ws if w["kind"] in BREACH_KINDS]
            # a1 quick C, a1 fast C T, a2 fast C T, q1 fast C T, a3 quick C; a1 done:1 and a2 fast:1 ended
            return (ws, os_) if len(crossings) >= 8 and len(os_) >= 2 else None

        e.warnings, e.outcomes = wait_for(complete, 60, "the worker's warnings and outcomes")
        write_board(e.redis, e.ns, e.warnings, e.outcomes)
        # an order the board knows and no worker's table has: a cancelled run
        e.redis.hset(keys.order(e.ns, e.ghost), keys.run_field("quick", 1), orjson.dumps({
            "order_id": e.ghost, "process": "p", "node": "quick", "run": 1, "segment": "default", "owner": "team-q",
            "policy_version": 3, "attrs": {}, "started_at": "2026-11-21T08:00:00Z", "commitment_s": 1.0,
            "tolerance_s": 3600.0, "state": "cancelled", "level": "acceptable", "ended_at": "2026-11-21T08:00:05Z",
            "elapsed_s": 5.0, "crossings": ["commitment_breached"]}))
        yield e
    finally:
        code = e.worker.stop()
        for key in e.redis.scan_iter(match=f"{e.ns}:*", count=1000):
            e.redis.delete(key)
        e.redis.close()
        assert code == 0, e.worker.tail()


# ------------------------------------------------------------------------------------------ tests


def test_auth(env):
    port = env.worker.port
    for path, template in ((order_path(env.a1), ORDER), ("/api/breaches", BREACHES)):
        r = call(port, path)
        check(r, template, 401)
        assert r.headers["WWW-Authenticate"] == "Bearer"
        check(call(port, path, token="not-" + env.token), template, 403)
        check(call(port, path, token=env.token), template, 200)
    assert call(port, "/api/breaches", method="POST", token=env.token).status == 405
    assert call(port, "/metrics").status == 200  # the rest of the web server is not behind the token


def test_unknown_order_is_404(env):
    body = check(call(env.worker.port, order_path("no-such-order"), env.token), ORDER, 404)
    assert body == {"error": "unknown order no-such-order"}
    assert call(env.worker.port, "/api/nothing-here", env.token).json["error"].startswith("no such endpoint")


def test_order_from_the_table_lists_open_runs_with_their_states(env):
    body = check(call(env.worker.port, order_path(env.a1), env.token), ORDER, 200)
    assert (body["order_id"], body["process"], body["closed"], body["source"]) == (env.a1, "p", False, "table")
    runs = {(r["node"], r["run"]): r for r in body["runs"]}
    assert {k: (r["state"], r["source"]) for k, r in runs.items()} == {
        ("slow", 1): ("in_progress_normal", "table"),
        ("quick", 1): ("in_progress_acceptable", "table"),
        ("fast", 1): ("in_progress_warning", "table"),
        ("done", 1): ("completed_normal", "board"),
        ("done", 2): ("in_progress_normal", "table"),
    }
    slow = runs[("slow", 1)]
    assert (slow["paused"], slow["elapsed_s"], slow["segment"], slow["attrs"], slow["owner"]) == (
        True, 5.0, "gold", {"region": "north"}, "team-s")
    assert (slow["commitment_s"], slow["tolerance_s"], slow["policy_version"]) == (3600.0, 7200.0, 3)
    fast = runs[("fast", 1)]
    judged = datetime.fromisoformat(body["now"])
    assert fast["elapsed_s"] == pytest.approx((judged - env.t0).total_seconds(), abs=1e-3)
    assert (fast["level"], fast["paused"], fast["crossings"]) == (
        "warning", False, ["commitment_breached", "tolerance_breached"])
    assert runs[("done", 1)]["elapsed_s"] == 10.0 and runs[("done", 1)]["owner"] is None
    # an order with no open run left: its ended run comes from the board
    body = check(call(env.worker.port, order_path(env.a2), env.token), ORDER, 200)
    assert body["source"] == "table"
    assert [(r["node"], r["state"], r["source"]) for r in body["runs"]] == [("fast", "completed_warning", "board")]


def test_order_known_only_to_the_board(env):
    body = check(call(env.worker.port, order_path(env.ghost), env.token), ORDER, 200)
    assert (body["order_id"], body["source"], body["closed"], body["process"]) == (env.ghost, "board", None, "p")
    assert [(r["node"], r["state"], r["elapsed_s"]) for r in body["runs"]] == [("quick", "cancelled", 5.0)]


def test_breaches_oldest_first_and_filters(env):
    port, token = env.worker.port, env.token

    def get(query: str = "") -> list[str]:
        body = check(call(port, "/api/breaches" + query, token), BREACHES, 200)
        assert body["count"] == len(body["breaches"])
        return body["breaches"]

    everything = get()
    opened = [w for w in env.warnings if w["kind"] in BREACH_KINDS and w["order_id"] != env.a2]
    assert sorted(b["warning_id"] for b in everything) == sorted(w["warning_id"] for w in opened)
    assert len(everything) == 6
    crossed = [epoch(b["crossed_at"]) for b in everything]
    assert crossed == sorted(crossed)
    assert everything[0] == next(w for w in opened if w["warning_id"] == everything[0]["warning_id"])
    ids = [b["warning_id"] for b in everything]

    def only(pred):
        return [b["warning_id"] for b in everything if pred(b)]

    assert [b["warning_id"] for b in get("?owner=team-f")] == only(lambda b: b["owner"] == "team-f")
    assert [b["warning_id"] for b in get("?process=q")] == only(lambda b: b["process"] == "q")
    assert [b["warning_id"] for b in get("?owner=team-f&process=p")] == only(
        lambda b: b["owner"] == "team-f" and b["process"] == "p")
    assert [b["warning_id"] for b in get("?kind=tolerance_breached")] == only(
        lambda b: b["kind"] == "tolerance_breached")
    assert [b["warning_id"] for b in get("?owner=team-q&kind=commitment_breached&limit=1")] == only(
        lambda b: b["owner"] == "team-q")[:1]
    assert [b["warning_id"] for b in get("?limit=2")] == ids[:2]
    assert get("?owner=nobody") == []
    for bad in ("?limit=0", "?limit=1001", "?limit=x", "?kind=approaching", "?color=red", "?owner=a&owner=b"):
        body = check(call(port, "/api/breaches" + bad, token), BREACHES, 400)
        assert body["error"], bad


def test_registry_then_a_second_worker_takes_partitions(env, tmp_path):
    """Worker B joins the group with the API off and an unreachable Redis: its recovery still completes (the
    registry failure is only logged), A records only the partitions it keeps, A redirects an order of B's
    partitions to B (given B's registry entry), and B answers every /api/* with 404 'disabled'."""
    a, r, ns = env.worker, env.redis, env.ns
    url_a = f"http://127.0.0.1:{a.port}"

    def registry() -> dict[int, str]:
        return {int(k): v.decode() for k, v in r.hgetall(keys.workers(ns)).items()}

    wait_for(lambda: registry() == {p: url_a for p in range(PARTITIONS)}, 20, "A to record all partitions")
    dead = free_port()  # nothing listens there
    b = Worker(worker_env(env.stack, env.prefix, free_port(), tmp_path / "data-b", SLAMON_PARTITIONS=str(PARTITIONS),
                          SLAMON_REDIS_URL=f"redis://127.0.0.1:{dead}/0", SLAMON_API_TOKEN=""),
               tmp_path / "worker-b.log").start()
    try:
        b.wait_ready()

        def split() -> tuple[set[int], set[int]] | None:
            sa, sb = (orjson.loads(w.get("/readyz")[1] or b"{}") for w in (a, b))
            pa, pb = set(sa.get("partitions", [])), set(sb.get("partitions", []))
            if sa.get("ready") and sb.get("ready") and pa and pb and pa | pb == set(range(PARTITIONS)):
                return pa, pb
            return None

        owned_a, owned_b = wait_for(split, 60, "the partitions to be split between A and B")
        wait_for(lambda: registry() == {p: url_a for p in owned_a}, 20, "A to drop its entries for B's partitions")
        wait_for(lambda: "could not record this worker's partitions" in b.log_path.read_text(), 10,
                 "B to log that Redis is unreachable")
        # B: the API is off, whatever the request
        for path, template in ((order_path(env.a1), ORDER), ("/api/breaches", BREACHES)):
            for token in (None, "", env.token):
                body = check(call(b.port, path, token), template, 404)
                assert body == {"error": API_DISABLED}
        assert call(b.port, "/api/anything").json == {"error": API_DISABLED}
        # A: orders on A's partitions from its table; on B's partitions a 307 to B once B is in the registry
        url_b = f"http://127.0.0.1:{b.port}"
        for p in owned_b:
            r.hset(keys.workers(ns), str(p), url_b)  # what B records when it can reach Redis
        # (plus an order id nobody knows, on one of B's partitions: redirected too, B would answer for it)
        other = next(f"nobody/{i}" for i in range(1000) if partition_for(f"nobody/{i}", PARTITIONS) in owned_b)
        redirected = 0
        for order_id in (env.a1, env.a2, env.a3, env.q1, other):
            reply = call(a.port, order_path(order_id), env.token)
            if partition_for(order_id, PARTITIONS) in owned_a:
                assert check(reply, ORDER, 200)["source"] == "table"
            else:
                redirected += 1
                body = check(reply, ORDER, 307)
                assert reply.headers["Location"] == body["location"] == url_b + order_path(order_id)
                assert body["partition"] == partition_for(order_id, PARTITIONS)
                followed = call(0, "", env.token, base=reply.headers["Location"])
                assert followed.status == 404 and followed.json == {"error": API_DISABLED}
        assert redirected >= 1
    finally:
        assert b.stop() == 0, b.tail()
