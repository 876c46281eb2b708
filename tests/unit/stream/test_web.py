"""The query API on the Faust web server: the reader of the order table, the /api/* views' registration."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Counter

from monitor.core.engine import Engine
from monitor.query.api import QueryApi
from monitor.settings import Settings
from monitor.stream.table import encode_value
from monitor.stream.web import add_api_views, add_health_views, local_state_reader

from ..helpers import Recorder, ev, policies

POLICY = {"process": "p", "nodes": {"n": {"commitment": "2h", "tolerance": "4h"}}}


def test_local_state_only_of_owned_partitions_after_recovery():
    engine = Engine(policies(POLICY))
    state, rejection = engine.apply(None, ev("node_started", "2026-11-21T08:00:00Z", order="o1"), Recorder())
    assert rejection is None
    table = {b"o1": encode_value(2, 7, None, state)}
    owned, recovered = {2}, [True]
    read = local_state_reader(table, engine, lambda: owned, lambda: recovered[0])
    found, partition = read("o1")
    assert partition == 2 and found is not None and (found.order_id, set(found.runs)) == ("o1", set(state.runs))
    assert read("o2") == (None, None)
    recovered[0] = False
    assert read("o1") == (None, 2)
    recovered[0], owned = True, {0, 1}
    read = local_state_reader(table, engine, lambda: owned, lambda: recovered[0])
    assert read("o1") == (None, 2)


class FakeSignal:
    def __init__(self) -> None:
        self.receivers: list = []

    def connect(self, fn):
        self.receivers.append(fn)
        return fn


class FakeApp:
    def __init__(self) -> None:
        self.pages: list[tuple[str, str, str]] = []
        self.on_before_shutdown = FakeSignal()

    def page(self, path: str, name: str | None = None):
        def register(view):
            self.pages.append((path, name, getattr(view, "what", view)))
            return view
        return register


class FakeWeb:
    def json(self, body, status=200):
        return status, body

    def bytes(self, body, headers):
        return headers["Content-Type"], body


def test_api_views_in_route_order_and_the_redis_client_closed_at_shutdown():
    class Client:
        closed = False

        async def aclose(self) -> None:
            self.closed = True

    client = Client()
    api = QueryApi(Settings.from_env({"SLAMON_APP_ID": "app"}), 4, set, lambda: True, lambda: 0,
                   lambda order_id: (None, None), redis=client)
    app = FakeApp()
    add_api_views(app, api)
    assert app.pages == [("/api/orders/{order_id:.+}", "api-order", "order"),
                         ("/api/breaches", "api-breaches", "breaches"), ("/api/{tail:.*}", "api-unknown", "unknown")]
    [close] = app.on_before_shutdown.receivers
    asyncio.run(close(app))
    assert client.closed and api._redis is None


def test_health_views():
    registry = CollectorRegistry()
    Counter("slamon_test_things", "things", registry=registry).inc()
    status = {"ready": False, "recovered": False}
    app = FakeApp()
    add_health_views(app, registry, lambda: status)
    views = {path: view for path, _, view in app.pages}
    assert list(views) == ["/metrics", "/healthz", "/readyz"]
    web = FakeWeb()
    content_type, body = asyncio.run(views["/metrics"](web, None))
    assert content_type.startswith("text/plain") and b"slamon_test_things_total 1.0" in body
    assert asyncio.run(views["/healthz"](web, None)) == (200, {"status": "ok"})
    assert asyncio.run(views["/readyz"](web, None)) == (503, status)
    status["ready"] = True
    assert asyncio.run(views["/readyz"](web, None)) == (200, status)
