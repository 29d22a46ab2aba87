"""Each benchmark writes its own section of docs/benchmarks.md, between markers, leaving the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def replace_section(path: Path, begin: str, end: str, section: str, *, heading: str | None = None) -> None:
    """Put ``section`` where the text from ``begin`` to ``end`` stands in ``path``, or append it.

    ``section`` holds both markers. With ``heading``, a heading written just before the
    ``begin`` marker is replaced too. One blank line separates the section from what follows.
    """
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    start, stop = text.find(begin), text.find(end)
    body = section.strip("\n") + "\n"
    if start != -1 and stop > start:
        if heading is not None:
            above = text.rfind(heading, 0, start)
            start = above if above != -1 else start
        rest = text[stop + len(end) :].lstrip("\n")
        text = text[:start] + body + ("\n" + rest if rest else "")
    else:
        text = text.rstrip("\n") + "\n\n" + body
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def measured_header(title: str, marker: str, results: dict[str, Any]) -> list[str]:
    """The opening lines of a section: its heading, its begin ``marker``, when, where and the command."""
    return [
        title,
        "",
        marker,
        f"Measured {results['date']} on {results['machine']}, with:",
        "",
        "```",
        results["command"],
        "```",
        "",
    ]
