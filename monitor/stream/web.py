"""The worker's web server (Faust's): /metrics, /healthz, /readyz, and the query API's /api/* views with the
reader of this worker's order table it answers from (`monitor.query` knows neither Faust nor the table).

It serves only these: Faust's own views (`/` status, `/router/*` cluster topology, `/table/*` table contents,
`/stats/`, `/assignment/`, `/graph/`, `/performance/`) come in blueprints the web driver mounts at start, and
the driver of WEB_URL (`OwnViewsOnly`) mounts none, so every other path answers 404.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from faust.web.drivers import DRIVERS
from faust.web.drivers import aiohttp as faust_aiohttp
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from ..core.engine import Engine, OrderState, load_state
from ..query import LocalState, QueryApi
from .table import decode_header

WEB_URL = "slamon-web://"  # the `web` setting of the worker's Faust app


class OwnViewsOnly(faust_aiohttp.Web):
    """Faust's aiohttp web server without any of Faust's built-in blueprints (whatever the web_*_enabled settings
    say): only the pages the app adds itself are served."""

    default_blueprints = production_blueprints = debug_blueprints = optional_blueprints = ()


# registered the way Faust registers its own web drivers, under the scheme of WEB_URL
DRIVERS.aliases.setdefault(WEB_URL.partition(":")[0], f"{__name__}:OwnViewsOnly")


def local_state_reader(table: Mapping[bytes, bytes], engine: Engine, owned: Callable[[], set[int]],
                       recovered: Callable[[], bool]) -> LocalState:
    """`local_state(order_id)`: the order's state if this worker owns it now (its table recovered), and the
    partition its table value names (if any)."""

    def local_state(order_id: str) -> tuple[OrderState | None, int | None]:
        value = table.get(order_id.encode("utf-8"))
        if not value:
            return None, None
        partition, _, _, body = decode_header(value)
        if not recovered() or partition not in owned():
            return None, partition
        return load_state(body, engine), partition

    return local_state


def add_api_views(app: Any, api: QueryApi) -> None:
    """Add the /api/* views to the Faust app's web server (and close the API's Redis client at shutdown)."""
    from faust.web import View

    async def reply(view: Any, request: Any, what: str, **kwargs: Any) -> Any:
        status, body, headers = await api.handle(request.method, request.headers.get("Authorization"), what,
                                                 **kwargs)
        return view.json(body, status=status, headers={"Cache-Control": "no-store", **headers})

    class ApiView(View):
        what = ""

        async def get(self, request: Any, **kwargs: Any) -> Any:
            return await reply(self, request, self.what, **self.arguments(request, kwargs))

        def arguments(self, request: Any, match: dict[str, str]) -> dict[str, Any]:
            return {}

        post = put = patch = delete = get

    class OrderView(ApiView):
        what = "order"

        def arguments(self, request: Any, match: dict[str, str]) -> dict[str, Any]:
            return {"order_id": match["order_id"], "path": request.raw_path}

    class BreachesView(ApiView):
        what = "breaches"

        def arguments(self, request: Any, match: dict[str, str]) -> dict[str, Any]:
            return {"query": list(request.query.items())}

    class UnknownView(ApiView):
        what = "unknown"

    # registration order matters: aiohttp tries routes in the order they were added
    app.page("/api/orders/{order_id:.+}", name="api-order")(OrderView)
    app.page("/api/breaches", name="api-breaches")(BreachesView)
    app.page("/api/{tail:.*}", name="api-unknown")(UnknownView)

    @app.on_before_shutdown.connect
    async def close_api_redis(sender: Any, **kwargs: Any) -> None:
        await api.close()


def add_health_views(app: Any, registry: CollectorRegistry, status: Callable[[], dict[str, Any]]) -> None:
    """/metrics (the Prometheus registry), /healthz (always ok), /readyz (`status()`, 503 until it is ready)."""

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        body = status()
        return web.json(body, status=200 if body["ready"] else 503)
