"""Shared terminal output and logging set-up for the ``churn`` commands."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import NoReturn

from rich.console import Console

console = Console()
err_console = Console(stderr=True)

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


def fail(message: str, code: int = 1) -> NoReturn:
    """Print an error for a person and exit with ``code``."""
    import typer
    from rich.markup import escape

    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def stop_on_signals() -> threading.Event:
    """An event that SIGINT (Ctrl-C) or SIGTERM sets, so a command can leave its loop and clean up.

    Install it before starting children: a signal during start-up then still stops cleanly.
    """
    stop = threading.Event()

    def _stop(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    return stop
