"""Structured logs: JSON lines, and no log call that logging itself refuses."""

from __future__ import annotations

import ast
import json
import logging
import threading
from pathlib import Path

import monitor
from monitor import logs

PACKAGE = Path(monitor.__file__).parent
RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def test_no_log_call_uses_a_field_name_logging_reserves():
    # logging raises KeyError for an `extra` key such as "process" or "thread": a log call must never be what
    # stops a component (it once stopped every worker on a rejected policy)
    bad = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "extra" and isinstance(node.value, ast.Dict):
                for key in node.value.keys:
                    if isinstance(key, ast.Constant) and key.value in RESERVED:
                        bad.append(f"{path.relative_to(PACKAGE)}:{key.lineno}: {key.value}")
    assert bad == []


def test_a_thread_that_fails_is_logged_as_one_json_line(capsys):
    logs.setup("info")
    t = threading.Thread(target=lambda: 1 / 0, name="boom")
    t.start()
    t.join()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    [record] = [r for r in lines if r["msg"] == "uncaught in a thread"]
    assert record["level"] == "critical" and record["thread_name"] == "boom" and "ZeroDivisionError" in record["exc"]
