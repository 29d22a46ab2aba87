"""``churn contract export``: write the published contract documents under ``docs/``.

The JSON Schemas (``docs/schemas/*.json``) and the AsyncAPI document
(``docs/asyncapi.yaml``) are generated from the code (:mod:`schemas.published`);
``tests/unit/test_published_contract.py`` fails when the committed files differ.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from cli.console import console

app = typer.Typer(help="The published input/output contract.", no_args_is_help=True)


def rendered() -> dict[str, str]:
    """Each published document's path under ``docs/`` and its text."""
    import yaml  # PyYAML comes with uvicorn[standard]; loaded only when the documents are written

    from schemas.published import documents

    class Dumper(yaml.SafeDumper):
        """Text with line breaks as literal blocks (``|``), so paragraphs read as written."""

    def text_block(dumper: yaml.SafeDumper, value: str) -> Any:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text_block)

    def text(path: str, document: dict[str, Any]) -> str:
        if path.endswith(".yaml"):
            return str(yaml.dump(document, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=100))
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"

    return {path: text(path, document) for path, document in documents().items()}


@app.command("export")
def export(
    out: Path = typer.Option(
        Path("docs"), "--out", help="Folder to write into (schemas/ and asyncapi.yaml)."
    ),
) -> None:
    """Write the JSON Schemas and the AsyncAPI document generated from the code."""
    for path, content in rendered().items():
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        console.print(f"wrote {target}")
