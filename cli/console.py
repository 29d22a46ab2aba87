"""Shared terminal output for the ``churn`` commands: consoles, errors for people, stop on signals."""

from __future__ import annotations

import re
import signal
import threading
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print an error for a person and exit with ``code``."""
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


def settings_problem(exc: ValueError) -> str:
    """A pydantic ``ValidationError`` of the settings as one line per variable, for people."""
    errors = getattr(exc, "errors", None)
    if errors is None:  # pydantic-settings could not even parse a variable (e.g. JSON)
        unparsed = re.search(r'field "(\w+)"', str(exc))
        if unparsed:
            return f"invalid settings: CHURN_{unparsed.group(1).upper()}: not valid JSON of the right shape"
        return str(exc)
    lines = []
    for error in errors(include_url=False):
        loc = [str(part) for part in error.get("loc", ())]
        name = f"CHURN_{loc[0].upper()}" if loc else "settings"
        reason = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        shown = error.get("input")
        got = f" (got {shown!r})" if loc and not isinstance(shown, dict) else ""
        lines.append(f"{name}: {reason}{got}")
    return "invalid settings: " + "; ".join(lines)


def overridden(settings: Any, **values: Any) -> Any:
    """``settings.with_overrides(**values)``; a value the setting refuses ends the command with why."""
    try:
        return settings.with_overrides(**values)
    except ValueError as exc:  # pydantic's ValidationError (pydantic loads only once a command runs)
        fail(settings_problem(exc))
