"""Ending the worker on a fatal error: at once, with a non-zero status, so that a supervisor (Kubernetes, systemd,
compose) restarts it. Never alive and deaf. Safe at any point of the batch path: nothing uncommitted is kept, and
a partition's next owner aborts whatever transaction this worker left open."""

from __future__ import annotations

import logging
import os
from typing import NoReturn

log = logging.getLogger("slamon.worker")

EXIT_FATAL = 1


def fatal(message: str, exc: BaseException | None = None) -> NoReturn:
    log.critical(message, exc_info=exc)
    logging.shutdown()
    os._exit(EXIT_FATAL)
