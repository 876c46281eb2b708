"""Structured logs: one JSON object per line on stderr."""

from __future__ import annotations

import logging
import sys
import threading
from datetime import UTC, datetime
from typing import Any

import orjson

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in vars(record).items():
            if k not in _STANDARD and not k.startswith("_"):
                out[k] = v
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def logging_config(level: str = "info") -> dict[str, Any]:
    """A dictConfig sending every logger (ours, Faust's, aiokafka's) as JSON lines to stderr."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {"aiokafka": {"level": "WARNING"}, "faust": {"level": level.upper()},
                    "mode": {"level": level.upper()}},
    }


def setup(level: str = "info") -> None:
    import logging.config

    logging.config.dictConfig(logging_config(level))
    log = logging.getLogger("slamon")
    sys.excepthook = lambda t, v, tb: log.critical("uncaught", exc_info=(t, v, tb))
    # exceptions in threads (aiokafka and Faust run threads) as JSON lines too, not plain tracebacks
    threading.excepthook = lambda a: log.critical("uncaught in a thread", exc_info=(a.exc_type, a.exc_value,
                                                                                     a.exc_traceback),
                                                  extra={"thread_name": a.thread.name if a.thread else None})
