"""`slamon demo`: run the local stack, a worker and an order generator, and show warnings live."""

from __future__ import annotations

import argparse
from typing import Any

from .common import settings_or_none


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="run the local stack, a worker and an order generator, and show warnings live",
        description="Start (or reuse) the local Kafka and Redis, start one worker with the sample policies in "
        "deploy/demo/policies, generate realistic orders (slow nodes, pauses, cancellations, a little bad "
        "input) and print every warning as it happens. Ctrl-C, SIGTERM or SIGHUP stop everything it started.",
    )
    p.add_argument("--rate", type=float, default=1.5, help="new orders per second (default 1.5)")
    p.add_argument("--duration", type=float, default=0, help="stop after this many seconds (default: until Ctrl-C)")
    p.add_argument("--web-port", type=int, default=None,
                   help="worker web port for /metrics (default $SLAMON_WEB_PORT or 6066; 0 = any free port)")
    p.add_argument("--seed", type=int, default=None, help="random seed of the generator")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ..demo.run import run_demo

    settings = settings_or_none("slamon demo", log=False)
    if settings is None:
        return 2
    web_port = settings.web_port if args.web_port is None else args.web_port
    return run_demo(args.rate, args.duration, web_port, args.seed)
