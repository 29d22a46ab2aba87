"""docs/configuration.md lists every setting (and the _FILE form of every secret), and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

from config.settings import Settings, secret_fields

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_setting_is_documented_and_every_documented_one_exists() -> None:
    documented = set(re.findall(r"`(CHURN_[A-Z0-9_]+)`", DOC.read_text(encoding="utf-8")))
    actual = {f"CHURN_{name.upper()}" for name in Settings.model_fields}
    actual |= {f"CHURN_{name.upper()}_FILE" for name in secret_fields(Settings)}
    assert actual - documented == set(), "undocumented settings"
    assert documented - actual == set(), "documented settings that do not exist"
