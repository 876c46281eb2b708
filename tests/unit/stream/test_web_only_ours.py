"""The worker's web server mounts only slamon's views: none of Faust's built-in blueprints (index, router, tables,
statistics, assignment, graph, performance), whatever Faust's settings ask for. (The integration test
tests/integration/test_security.py asks a running worker for each of them: 404.)"""

from __future__ import annotations

import faust
from prometheus_client import CollectorRegistry

from monitor.settings import Settings
from monitor.stream.web import WEB_URL, OwnViewsOnly, add_health_views


def routes(app: faust.App) -> list[str]:
    app.web.init_server()
    return sorted({r.resource.canonical for r in app.web.web_app.router.routes()})


def test_plain_faust_would_serve_its_own_views():  # what the driver is there to prevent
    app = faust.App("plain", debug=True, web_metrics_enabled=True)
    assert {"/", "/router/", "/table/", "/assignment/", "/graph/", "/performance/"} <= set(routes(app))


def test_only_our_views_even_when_faust_is_asked_for_its_own():
    app = faust.App("ours", web=WEB_URL, debug=True, web_router_enabled=True, web_tables_enabled=True,
                    web_stats_enabled=True, web_graph_enabled=True, web_metrics_enabled=True)
    add_health_views(app, CollectorRegistry(), lambda: {"ready": True})
    assert isinstance(app.web, OwnViewsOnly)
    assert routes(app) == ["/healthz", "/metrics", "/readyz"]


def test_the_worker_app_uses_that_driver():
    from monitor.stream.app import WorkerApp

    worker = WorkerApp(Settings.from_env({"SLAMON_STORE": "memory://", "SLAMON_APP_ID": "web-test"}), 2)
    assert isinstance(worker.app.web, OwnViewsOnly)
    assert not [r for r in routes(worker.app) if not r.startswith(("/api/", "/metrics", "/healthz", "/readyz"))]
