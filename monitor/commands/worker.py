"""`slamon worker`: run one monitor worker (configuration from SLAMON_* environment variables)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from .common import add_service_parser, connections_refused, settings_or_none

log = logging.getLogger("slamon.worker")


def register(sub: Any) -> None:
    p = add_service_parser(
        sub, "worker", help="run one live monitor worker",
        description="Run one live monitor worker: consume workflow.events, announce crossings on sla.warnings the "
        "moment they happen, publish outcomes, dead letters and Prometheus metrics. Workers with the same "
        "SLAMON_APP_ID share the partitions. Stops gracefully on SIGTERM or Ctrl-C.",
    )
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ..catalogue import TopicsError
    from ..core.policies import PolicyError
    from ..stream.preflight import SetupError, prepare

    settings = settings_or_none("slamon worker")
    if settings is None:
        return 2
    refused = connections_refused(settings, redis=bool(settings.api_token))
    if refused:
        print(f"slamon worker: {refused}", file=sys.stderr)
        return 1
    try:
        partitions = asyncio.run(asyncio.wait_for(prepare(settings), 120))
    except PolicyError as exc:
        print(f"slamon worker: SLAMON_POLICIES rejected:\n{exc}", file=sys.stderr)
        return 2
    except SetupError as exc:
        print(f"slamon worker: {exc}", file=sys.stderr)
        return 1
    except (TimeoutError, OSError, TopicsError) as exc:
        print(f"slamon worker: cannot prepare topics at {settings.kafka_bootstrap}: {exc or type(exc).__name__}",
              file=sys.stderr)
        return 1
    from ..stream.app import run_worker

    log.info("starting worker", extra={"app_id": settings.app_id, "partitions": partitions,
                                        "web": f"http://{settings.web_host}:{settings.web_port}/metrics"})
    run_worker(settings, partitions)
    return 0
