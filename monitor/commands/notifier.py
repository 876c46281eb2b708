"""`slamon notifier`: send breaches to Alertmanager (monitor/oncall/notifier.py) until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..oncall.notifier import run_notifier
from ..oncall.service import add_start_timeout, exit_status
from .common import add_service_parser, serve, settings_or_none


def register(sub: Any) -> None:
    p = add_service_parser(
        sub, "notifier",
        help="send breaches to Alertmanager",
        description="Consume sla.warnings (consumer group <SLAMON_APP_ID>-notifier) and post commitment and "
        "tolerance breaches to Alertmanager's v2 API at SLAMON_ALERTMANAGER_URL, re-sending active alerts before "
        "their lease expires and ending them when the run ends. Records it cannot use are logged, counted and "
        "skipped. Serves /metrics and /healthz on SLAMON_WEB_HOST:SLAMON_WEB_PORT. Exits 1 on a fatal error "
        "(Kafka unreachable at start, the port taken).",
    )
    p.add_argument("--lease", type=float, default=300, help="seconds an alert stays active without a re-send (300)")
    p.add_argument("--resend", type=float, default=60, help="seconds between re-sends of active alerts (60)")
    p.add_argument("--keep-resolved", type=float, default=900, help="seconds resolutions are re-sent (900)")
    add_start_timeout(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    s = settings_or_none("slamon notifier")
    if s is None:
        return 2
    if not s.alertmanager_url:
        print("slamon notifier: set SLAMON_ALERTMANAGER_URL (e.g. http://127.0.0.1:9093)", file=sys.stderr)
        return 2
    if args.resend >= args.lease:
        print("slamon notifier: --resend must be shorter than --lease", file=sys.stderr)
        return 2
    return exit_status("notifier", lambda: serve(lambda stop: run_notifier(
        s, args.lease, args.resend, args.keep_resolved, stop, start_timeout=args.start_timeout)))
