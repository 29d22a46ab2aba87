"""JSON Schema documents of the wire contract, generated from the models into ``docs/schemas/``.

``python -m schemas.json_schema [DIR]`` writes one file per document (default
``docs/schemas``); ``--check`` exits non-zero when a committed file differs from what
the models generate. A unit test runs the same comparison.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from schemas.outcomes import CustomerOutcome

#: File name (without ``.json``) -> (model, what the document describes).
DOCUMENTS: dict[str, tuple[type[BaseModel], str]] = {
    "outcome": (
        CustomerOutcome,
        "A record on the customer-outcomes topic (key = customer_id): whether a customer churned, "
        "as observed at observed_at.",
    ),
}
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def document(name: str) -> dict[str, Any]:
    """The JSON Schema document ``name`` (validation mode: what a producer may send)."""
    model, description = DOCUMENTS[name]
    schema = model.model_json_schema(mode="validation")
    return {"$schema": DRAFT, "$id": f"{name}.json", **schema, "description": description}


def render(name: str) -> str:
    return json.dumps(document(name), indent=2, ensure_ascii=False) + "\n"


def write(directory: Path) -> list[Path]:
    """Write every document into ``directory``; the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in DOCUMENTS:
        path = directory / f"{name}.json"
        path.write_text(render(name), encoding="utf-8")
        written.append(path)
    return written


def stale(directory: Path) -> list[str]:
    """Names of the documents whose file in ``directory`` is missing or differs from the models."""
    return [
        name
        for name in DOCUMENTS
        if not (directory / f"{name}.json").is_file()
        or (directory / f"{name}.json").read_text(encoding="utf-8") != render(name)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schemas.json_schema", description=__doc__)
    parser.add_argument("directory", nargs="?", default="docs/schemas", type=Path)
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if a file is stale")
    args = parser.parse_args(argv)
    if args.check:
        names = stale(args.directory)
        for name in names:
            sys.stderr.write(f"{args.directory / name}.json is stale: run python -m schemas.json_schema\n")
        return 1 if names else 0
    for path in write(args.directory):
        sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
