"""Shared terminal output and logging set-up for the ``churn`` commands."""

from __future__ import annotations

import logging
import sys

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


def fail(message: str, code: int = 1) -> None:
    """Print an error for a person and exit with ``code``."""
    import typer

    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)
