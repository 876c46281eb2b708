"""The query API on each worker's web server (the Faust web server, aiohttp): an order's runs, the open breaches.

- `GET /api/orders/{order_id}`: the order's runs. From this worker's table when it owns the order's partition
  (open runs judged at the wall clock now, merged with the ended runs the breach board recorded); else a 307 to
  the worker that owns the partition according to the `{ns}:workers` registry; else from the board alone.
- `GET /api/breaches?owner=&process=&kind=&limit=`: the board's open breaches, oldest crossing first.

Bearer-token auth (`SLAMON_API_TOKEN`); with no token the API is off (every /api/* answers 404), never open.
JSON everywhere; errors are `{"error": "<message>"}`. Redis (the board, the registry) unreachable: 503.
The Redis layout is `monitor.oncall.keys`. The document of record is `deploy/api/openapi.yaml`.

Workers record the partitions they own in `{ns}:workers` after each table recovery (`register_partitions`).

- `requests`: auth and the parameters of a request;
- `runs`: the runs and breach records as the API shows them;
- `registry`: the worker registry and the partition of an order;
- `api`: `QueryApi`, the answers. It knows neither Faust nor the order table: `monitor.stream.web` adds its
  views to the Faust app and gives it the reader of the table (`local_state`).
"""

from __future__ import annotations

from .api import LocalState, QueryApi, Reply
from .registry import partition_for, register_partitions
from .requests import API_DISABLED, ApiError, BreachQuery, check_auth, parse_breach_query
from .runs import board_run, merge_runs, table_run

__all__ = [
    "API_DISABLED",
    "ApiError",
    "BreachQuery",
    "LocalState",
    "QueryApi",
    "Reply",
    "board_run",
    "check_auth",
    "merge_runs",
    "parse_breach_query",
    "partition_for",
    "register_partitions",
    "table_run",
]
