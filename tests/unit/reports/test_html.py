"""The HTML report: one self-contained page (nothing fetched), flags highlighted, the charts' data, and a real
browser (headless Chromium) renders it without a console message."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser

import pytest

from monitor.core.policies import load_policy_dir
from monitor.eventlog import read_events
from monitor.reports.analyses import period_report
from monitor.reports.html import report_html

from ..runs_oracle import generate, write_events, write_policies

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def doc(tmp_path):
    policies, _ = load_policy_dir(write_policies(tmp_path / "policies"))
    path = str(write_events(tmp_path / "events.jsonl", generate(3, orders=120)))
    doc, _ = period_report(policies, lambda: read_events(path), "day", "America/New_York", by_segment=True)
    return doc


class Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_the_page_needs_nothing_from_outside(doc):
    page = report_html(doc, {"malformed": 2, "unknown_node": 0})
    parser = Collect()
    parser.feed(page)
    tags = [t for t, _ in parser.tags]
    assert "script" not in tags and "iframe" not in tags and "img" not in tags
    for tag, attrs in parser.tags:
        for name in ("src", "href"):
            assert attrs.get(name) in (None, "data:,"), (tag, attrs)
    assert "url(" not in page and "@import" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    assert "invalid events: malformed 2" in page


def test_every_period_has_its_tables_and_flags_are_highlighted(doc):
    page = report_html(doc)
    assert page.count("<h3>Status table</h3>") == sum(1 for p in doc["periods"] if p["summary"])
    assert page.count("<h3>Owners</h3>") == page.count("<h3>Status table</h3>")
    flagged = [r["flag"] for p in doc["periods"] for r in p["summary"] if r["flag"]]
    assert flagged  # the sample has both kinds
    for flag in set(flagged):
        assert page.count(f'<tr class="{flag}">') >= flagged.count(flag)
        assert page.count(f'<span class="flag {flag}">{flag}</span>') >= flagged.count(flag)
    # the attainment chart: one polyline or point per process series, one x label per period at most
    assert page.count("<svg") == 2
    assert "p (order)" in page and re.search(r"<polyline points=\"[0-9., ]+\"", page)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_headless_chromium_renders_it_without_console_messages(doc, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(report_html(doc))
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--window-size=1280,1600",
             f"--screenshot={tmp_path / 'shot.png'}", page.as_uri()],
            capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    assert (tmp_path / "shot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "shot.png").stat().st_size > 20_000  # a picture, not a blank page


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_the_console_check_would_see_an_error(tmp_path):
    """The check above can fail: a page with a script error is logged on the console."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><link rel="icon" href="data:,"><script>undefinedFunction()</script>')
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
             "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert any(":CONSOLE" in line and "undefinedFunction" in line for line in proc.stderr.splitlines())
