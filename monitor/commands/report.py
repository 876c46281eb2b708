"""`slamon report`: the status table of the method period by period (CONTRACTS.md section 8)."""

from __future__ import annotations

import argparse
from datetime import date
from typing import Any

import orjson

from ..core.periods import PERIOD_KINDS, PeriodError, zone_of
from ..reports.analyses import period_report
from .eventsource import add_analysis, event_items, guarded, now_of, policies_of, write_output
from .framing import fail

PROG = "slamon report"
FORMATS = ("table", "json", "csv", "html")
EXAMPLE = """example (the BPIC 2017 work items, week by week in Amsterdam time, as one HTML page):
  slamon report --policies ../shared/datasets/bpic2017-workitems/policies \\
                --events ../shared/datasets/bpic2017-workitems/events.jsonl.gz \\
                --period week --timezone Europe/Amsterdam --format html --out report.html

Each row counts the runs that ended in the period (completed_*, cancelled) and the runs started before its end
and not ended before it (in_progress_*, judged at the period's end, or at --now for the period holding it).
Exit status: 0 on success (invalid events do not fail it), 2 on unusable arguments, policies or events."""


HELP = "period status tables (day, week, month) per process and node, with the owners' roll-up"
DESCRIPTION = (
    "Replay the events against the policies once and print the seven-state table of each calendar period (day, "
    "week or month in a time zone) per process and node, with rates, flags and duration statistics, and per "
    "owner: as text, JSON, CSV or a self-contained HTML page with charts.")


def register(sub: Any) -> None:
    p = add_analysis(sub, "report", HELP, DESCRIPTION, EXAMPLE, _run, kafka=True,
                     policies="policy directory (one YAML per process)")
    p.add_argument("--period", required=True, choices=PERIOD_KINDS, help="calendar period of the rows")
    p.add_argument("--timezone", default="UTC", metavar="TZ", help="time zone of the periods (default UTC)")
    p.add_argument("--from", dest="from_date", metavar="DATE", help="first local date to report (inclusive; "
                   "default: the first event's)")
    p.add_argument("--to", dest="to_date", metavar="DATE", help="last local date to report (inclusive; default: "
                   "--now's); no period starting after --now is reported")
    p.add_argument("--by-segment", action="store_true", help="one row per process, node and segment")
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    p.add_argument("--out", metavar="FILE", help="write to FILE instead of standard output")


def _date(text: str | None, flag: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise fail(PROG, f"{flag}: {text!r} is not a date like 2026-11-01") from None


def render(fmt: str, doc: dict[str, Any], invalid: dict[str, int]) -> str | bytes:
    if fmt == "json":
        return orjson.dumps(doc) + b"\n"
    if fmt == "csv":
        from ..reports.csvfile import report_csv

        return report_csv(doc)
    if fmt == "html":
        from ..reports.html import report_html

        return report_html(doc, invalid)
    from ..reports.text import render_report

    return render_report(doc, invalid)


def _run(args: argparse.Namespace) -> None:
    now = now_of(args, PROG)
    from_date, to_date = _date(args.from_date, "--from"), _date(args.to_date, "--to")
    if from_date is not None and to_date is not None and from_date > to_date:
        raise fail(PROG, f"--from {from_date} is after --to {to_date}")
    try:
        zone_of(args.timezone)
    except PeriodError as exc:
        raise fail(PROG, f"--timezone: {exc}") from None
    policies = policies_of(args.policies, PROG)
    items = event_items(args, PROG)
    doc, done = guarded(PROG, args.events, lambda: period_report(
        policies, items, args.period, args.timezone, now, from_date, to_date, args.by_segment))
    write_output(render(args.format, doc, done.result["invalid"]), args.out, PROG)
