"""Logging for every churn process: one line per event on stderr."""

from __future__ import annotations

import logging
import sys

LOG_FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"


def setup_logging(level: str = "INFO") -> None:
    """One line per event on stderr; idempotent."""
    root = logging.getLogger()
    if any(getattr(h, "_churn", False) for h in root.handlers):
        root.setLevel(level.upper())
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler._churn = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
