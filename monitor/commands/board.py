"""`slamon board`: keep the Redis breach board (monitor/oncall/board.py) until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
from typing import Any

from ..oncall.board import run_board
from ..oncall.service import add_start_timeout, exit_status
from .common import add_service_parser, serve, settings_or_none


def register(sub: Any) -> None:
    p = add_service_parser(
        sub, "board",
        help="keep the Redis breach board from sla.warnings and sla.outcomes",
        description="Consume sla.warnings and sla.outcomes (consumer group <SLAMON_APP_ID>-board) and keep the "
        "breach board in Redis: open breaches by crossed_at, indexed by owner and process, and every order's runs "
        "with their level. Idempotent; offsets move on only after Redis accepted the writes. Records it cannot "
        "use are logged, counted and skipped. Serves /metrics and /healthz on SLAMON_WEB_HOST:SLAMON_WEB_PORT. "
        "Exits 1 on a fatal error (Kafka unreachable at start, the port taken).",
    )
    add_start_timeout(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    s = settings_or_none("slamon board")
    if s is None:
        return 2
    return exit_status("board", lambda: serve(lambda stop: run_board(s, stop, start_timeout=args.start_timeout)))
