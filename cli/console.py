"""Shared terminal output for the ``churn`` commands: consoles, errors for people, stop on signals."""

from __future__ import annotations

import re
import signal
import threading
import unicodedata
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

console = Console()
err_console = Console(stderr=True)


def printable(text: str) -> str:
    """``text`` (from a record, a header, anything outside this program) safe to print through rich.

    Control characters (C0, C1 — ESC starts every ANSI/OSC sequence — and DEL), format
    characters (bidi controls such as U+202E, zero-width characters), line and paragraph
    separators and unassigned code points are shown as escapes (``\\x1b``, ``\\u202e``), so
    they cannot move the cursor, recolour or reorder the terminal; then rich markup such as
    ``[/]`` or ``[red]`` is escaped, so it prints as written.
    """
    if text.isprintable() and "[" not in text:
        return text  # the common case, checked in C
    return escape("".join(_visible(c) for c in text))


def _visible(char: str) -> str:
    if char == " " or unicodedata.category(char)[0] not in "CZ" or unicodedata.category(char) == "Zs":
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


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
    # Only on an error: the settings model is not needed for `churn --help`.
    from config.settings import Settings, secret_fields

    secrets = set(secret_fields(Settings))
    lines = []
    for error in errors(include_url=False):
        loc = [str(part) for part in error.get("loc", ())]
        name = f"CHURN_{loc[0].upper()}" if loc else "settings"
        reason = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        shown = error.get("input")
        hidden = not loc or isinstance(shown, dict) or loc[0] in secrets  # never echo a secret
        got = "" if hidden else f" (got {shown!r})"
        lines.append(f"{name}: {reason}{got}")
    return "invalid settings: " + "; ".join(lines)


def overridden(settings: Any, **values: Any) -> Any:
    """``settings.with_overrides(**values)``; a value the setting refuses ends the command with why."""
    try:
        return settings.with_overrides(**values)
    except ValueError as exc:  # pydantic's ValidationError (pydantic loads only once a command runs)
        fail(settings_problem(exc))
