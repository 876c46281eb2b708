"""`QueryApi` without a server, over a dict table and an in-memory stand-in for Redis: auth and methods, an
order's runs (table, redirect, board), the open breaches, Redis unreachable; and the OpenAPI document itself."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import jsonschema
import orjson

from monitor.core.engine import Engine
from monitor.core.instants import parse_instant
from monitor.core.vocabulary import BREACH_KINDS
from monitor.oncall import keys
from monitor.query.api import QueryApi
from monitor.query.registry import partition_for
from monitor.query.requests import API_DISABLED, check_auth
from monitor.settings import Settings
from monitor.stream.table import encode_value
from monitor.stream.web import local_state_reader

from ..helpers import Recorder, ev, policies
from .support import OPENAPI, POLICY, T0, S, at, board_record, order_state


def test_no_token_means_the_api_is_off_never_open():
    for header in (None, "", "Bearer ", "Bearer x"):
        err = check_auth("", header)
        assert err is not None and (err.status, err.message) == (404, API_DISABLED)
    api = make_api(token="")
    for what, kw in (("order", {"order_id": "o1"}), ("breaches", {"query": []}), ("unknown", {})):
        for method in ("GET", "POST"):
            status, body, _ = run(api.handle(method, "Bearer ", what, **kw))
            assert (status, body) == (404, {"error": API_DISABLED})


def test_wrong_method_and_unknown_endpoint():
    api = make_api()
    status, body, headers = run(api.handle("POST", "Bearer tok", "breaches", query=[]))
    assert status == 405 and headers["Allow"] == "GET, HEAD" and "error" in body
    status, body, _ = run(api.handle("GET", "Bearer tok", "unknown"))
    assert status == 404 and body["error"].startswith("no such endpoint")


# ------------------------------------------------------------------------------------------ QueryApi


class FakeRedis:
    """The few commands the API uses, over dicts (values as bytes, like redis-py without decoding)."""

    def __init__(self) -> None:
        self.hashes: dict[str, dict[bytes, bytes]] = {}
        self.zsets: dict[str, dict[str, float]] = {}
        self.strings: dict[str, bytes] = {}

    async def hgetall(self, key):
        return dict(self.hashes.get(key, {}))

    async def hget(self, key, field):
        return self.hashes.get(key, {}).get(field.encode())

    async def zrange(self, key, start, stop):
        members = sorted(self.zsets.get(key, {}).items(), key=lambda kv: (kv[1], kv[0]))
        return [m.encode() for m, _ in members[start:stop + 1]]

    async def zmscore(self, key, members):
        z = self.zsets.get(key, {})
        return [z.get(m) for m in members]

    async def mget(self, names):
        return [self.strings.get(n) for n in names]

    # as the board writes (keys.py)
    def hset(self, key, field, value):
        self.hashes.setdefault(key, {})[field.encode()] = value.encode() if isinstance(value, str) else value

    def open_breach(self, ns, warning):
        epoch = parse_instant(warning["crossed_at"]) / S
        wid = warning["warning_id"]
        for key in (keys.breaches(ns), keys.breaches_by_owner(ns, warning["owner"]),
                    keys.breaches_by_process(ns, warning["process"])):
            self.zsets.setdefault(key, {})[wid] = epoch
        self.strings[keys.breach(ns, wid)] = orjson.dumps(warning)


def make_api(token="tok", table=None, owned=(0, 1, 2, 3), partitions=4, redis=None, now=T0, port=6066,
             redis_url="redis://127.0.0.1:6379/0"):
    settings = Settings.from_env({"SLAMON_API_TOKEN": token, "SLAMON_APP_ID": "app", "SLAMON_WEB_PORT": str(port),
                                  "SLAMON_REDIS_URL": redis_url})
    owned_now, recovered = (lambda: set(owned)), (lambda: True)
    local_state = local_state_reader(table if table is not None else {}, Engine(policies(POLICY)), owned_now,
                                     recovered)
    return QueryApi(settings, partitions, owned_now, recovered, lambda: now, local_state,
                    redis=redis if redis is not None else FakeRedis())


def run(coro):
    return asyncio.run(coro)


def validate_reply(path: str, status: int, body: dict[str, Any]) -> None:
    """Validate a body against the OpenAPI response schema of (path, status)."""
    response = OPENAPI["paths"][path]["get"]["responses"][str(status)]
    if "$ref" in response:
        response = OPENAPI["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    jsonschema.Draft202012Validator({**OPENAPI, **response["content"]["application/json"]["schema"]}).validate(body)


ORDER = "/api/orders/{order_id}"
BREACHES = "/api/breaches"


def stored(order_id: str, partition: int, *events, now=None):
    engine, state, sink = order_state(*events)
    if now is not None:
        engine.advance(state, now, sink)
    return {order_id.encode(): encode_value(partition, 7, None, state)}, sink


def test_order_from_the_table_with_the_boards_ended_runs():
    table, sink = stored("o1", 2, ev("node_started", at(0), node="n", order="o1"),
                         ev("node_completed", at(100), node="n", order="o1"),
                         ev("node_started", at(200), node="n", order="o1"), now=T0 + 300 * S)
    r = FakeRedis()
    [outcome] = sink.outcomes
    r.hset(keys.order("slamon:app", "o1"), "n:1", orjson.dumps(board_record(outcome, [], ended=True)))
    api = make_api(table=table, redis=r, now=T0 + 3 * 3600 * S)
    status, body, headers = run(api.handle("GET", "Bearer tok", "order", order_id="o1", path="/api/orders/o1"))
    assert status == 200, body
    assert (body["order_id"], body["process"], body["closed"], body["source"]) == ("o1", "p", False, "table")
    assert [(x["node"], x["run"], x["state"], x["source"]) for x in body["runs"]] == [
        ("__order__", 1, "in_progress_normal", "table"), ("n", 1, "completed_normal", "board"),
        ("n", 2, "in_progress_acceptable", "table")]
    validate_reply(ORDER, status, body)


def test_order_of_another_workers_partition_redirects():
    p = partition_for("o9", 4)
    r = FakeRedis()
    r.hset(keys.workers("slamon:app"), str(p), "http://10.0.0.2:6067")
    api = make_api(owned={0, 1, 2, 3} - {p}, redis=r)
    status, body, headers = run(api.handle("GET", "Bearer tok", "order", order_id="o9", path="/api/orders/o9?x=1"))
    assert (status, headers["Location"]) == (307, "http://10.0.0.2:6067/api/orders/o9?x=1")
    assert body == {"location": "http://10.0.0.2:6067/api/orders/o9?x=1", "partition": p}
    validate_reply(ORDER, status, body)
    # a stale copy in this worker's table does not count: its partition header says where the order lives
    table, _ = stored("o9", p, ev("node_started", at(0), node="n", order="o9"))
    api = make_api(table=table, owned={0, 1, 2, 3} - {p}, redis=r)
    assert run(api.handle("GET", "Bearer tok", "order", order_id="o9", path="/api/orders/o9"))[0] == 307
    # the registry naming this worker itself (stale) never redirects: answer from the board
    r.hset(keys.workers("slamon:app"), str(p), "http://127.0.0.1:6066")
    status, body, _ = run(api.handle("GET", "Bearer tok", "order", order_id="o9", path="/api/orders/o9"))
    assert (status, body) == (404, {"error": "unknown order o9"})


def test_order_from_the_board_alone_and_unknown_orders():
    r = FakeRedis()
    engine, state, sink = order_state(ev("node_started", at(0), node="n", order="ob"))
    engine.advance(state, T0 + 3 * 3600 * S, sink)
    breach = [w for w in sink.warnings if w["kind"] == "commitment_breached" and w["node"] == "n"][0]
    r.hset(keys.order("slamon:app", "ob"), "n:1", orjson.dumps(
        board_record(breach, ["approaching", "commitment_breached"], ended=False)))
    api = make_api(owned=set(), redis=r)  # nobody owns the partition (no registry entry)
    status, body, _ = run(api.handle("GET", "Bearer tok", "order", order_id="ob", path="/api/orders/ob"))
    assert status == 200 and (body["source"], body["closed"], body["process"]) == ("board", None, "p")
    [only] = body["runs"]
    assert (only["state"], only["level"], only["crossings"]) == (
        "in_progress_acceptable", "acceptable", ["approaching", "commitment_breached"])
    validate_reply(ORDER, status, body)
    status, body, _ = run(api.handle("GET", "Bearer tok", "order", order_id="nope", path="/api/orders/nope"))
    assert (status, body) == (404, {"error": "unknown order nope"})
    validate_reply(ORDER, status, body)


def breach_warnings():
    """Warnings of three orders: (order, owner) = (b1, team-n), (b2, no owner: node m), (b3, team-n, other process)."""
    docs = [POLICY, {**POLICY, "process": "q"}]
    engine = Engine(policies(*docs))
    sink = Recorder()
    for order, node, process, start in (("b1", "n", "p", 0), ("b2", "m", "p", 60), ("b3", "n", "q", 120)):
        state, rejection = engine.apply(None, ev("node_started", at(start), node=node, order=order,
                                                 process=process), sink)
        assert rejection is None
        engine.advance(state, T0 + 10 * 3600 * S, sink)
    return [w for w in sink.warnings if w["kind"] in BREACH_KINDS and w["node"] != "__order__"]


def test_breaches_oldest_first_filters_and_limit():
    r = FakeRedis()
    warnings = breach_warnings()
    for w in warnings:
        r.open_breach("slamon:app", {**w, "detected_at": w["crossed_at"], "crossed_epoch": 1.0})
    r.zsets[keys.breaches("slamon:app")]["gone:n:1:commitment_breached"] = 0.0  # record already deleted
    api = make_api(redis=r)

    def get(*query):
        status, body, _ = run(api.handle("GET", "Bearer tok", "breaches", query=list(query)))
        validate_reply(BREACHES, status, body)
        return status, body

    status, body = get()
    assert status == 200 and body["count"] == len(body["breaches"]) == len(warnings) == 6
    crossed = [b["crossed_at"] for b in body["breaches"]]
    assert crossed == sorted(crossed)
    assert "crossed_epoch" not in body["breaches"][0]  # the board's own fields are not part of the API
    ids = lambda b: [x["warning_id"] for x in b["breaches"]]  # noqa: E731
    assert ids(get(("owner", "team-n"))[1]) == [w for w in ids(body) if w.startswith(("b1:", "b3:"))]
    assert ids(get(("owner", "-"))[1]) == [w for w in ids(body) if w.startswith("b2:")]
    assert ids(get(("process", "q"))[1]) == [w for w in ids(body) if w.startswith("b3:")]
    assert ids(get(("owner", "team-n"), ("process", "p"))[1]) == [w for w in ids(body) if w.startswith("b1:")]
    assert ids(get(("kind", "tolerance_breached"))[1]) == [w for w in ids(body) if w.endswith("tolerance_breached")]
    assert ids(get(("limit", "2"))[1]) == ids(body)[:2]
    assert get(("owner", "nobody"))[1] == {"breaches": [], "count": 0}
    status, body = get(("limit", "5000"))
    assert status == 400 and "limit" in body["error"]


def test_redis_unreachable_is_503_and_registration_failure_is_only_logged(caplog):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"redis://127.0.0.1:{port}/0"

    async def scenario():
        api = make_api(redis_url=url, owned=set())
        api._redis = None  # the real client
        try:
            replies = [await api.handle("GET", "Bearer tok", "breaches", query=[]),
                       await api.handle("GET", "Bearer tok", "order", order_id="o1", path="/api/orders/o1")]
            with caplog.at_level(logging.WARNING, logger="slamon.api"):
                ok = await api.register_partitions({0, 1})
            return replies, ok
        finally:
            await api.close()

    replies, ok = run(scenario())
    for status, body, _ in replies:
        assert status == 503 and "Redis" in body["error"]
        validate_reply(BREACHES, status, body)
    assert ok is False
    assert any("could not record this worker's partitions" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------------------------------ the document


def test_openapi_document():
    assert OPENAPI["openapi"].startswith("3.1")
    assert OPENAPI["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": "the worker's SLAMON_API_TOKEN"}
    for s in OPENAPI["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(s)
    error = {"$ref": "#/components/schemas/Error"}
    for path, item in OPENAPI["paths"].items():
        responses = item["get"]["responses"]
        wanted = {"200", "401", "403", "404", "503"} | ({"400"} if path == BREACHES else {"307"})
        assert wanted <= set(responses), path
        for status, response in responses.items():
            if "$ref" in response:
                response = OPENAPI["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
            body = response["content"]["application/json"]["schema"]
            if status[0] in "45":
                assert body == error, (path, status)
    unauthorized = OPENAPI["components"]["responses"]["Unauthorized"]
    assert "WWW-Authenticate" in unauthorized["headers"]
