"""`slamon board`: keep the Redis breach board (monitor/oncall/board.py) until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
from typing import Any

from ..oncall.board import run_board
from .common import add_service_parser, serve, settings_or_none


def register(sub: Any) -> None:
    add_service_parser(
        sub, "board",
        help="keep the Redis breach board from sla.warnings and sla.outcomes",
        description="Consume sla.warnings and sla.outcomes (consumer group <SLAMON_APP_ID>-board) and keep the "
        "breach board in Redis: open breaches by crossed_at, indexed by owner and process, and every order's runs "
        "with their level. Idempotent; offsets move on only after Redis accepted the writes.",
    ).set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    s = settings_or_none("slamon board")
    if s is None:
        return 2
    return serve(lambda stop: run_board(s, stop))
