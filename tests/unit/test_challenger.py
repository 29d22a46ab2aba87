"""The challenger pointer: set after a test-load, cleared, recorded with who/when/why, followed live."""

from __future__ import annotations

import getpass
import json

import pytest
from typer.testing import CliRunner

from cli.main import app
from models.live import LiveModel
from models.registry import CHALLENGER_FILE, MODEL_FILE, ModelRegistry, RegistryError
from tests.support.api_support import Store, store_copy, tamper


@pytest.fixture
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """A trained store with its training's entries removed from ``decisions.jsonl``."""
    copy = store_copy(tmp_path_factory)
    (copy.path / "decisions.jsonl").unlink(missing_ok=True)
    return copy


def test_set_and_clear_the_challenger_are_recorded(store: Store) -> None:
    registry = store.registry
    assert registry.challenger() is None
    registry.set_challenger(store.v2, reason="try the new features")
    assert registry.challenger() == store.v2
    assert registry.current() == store.v1  # the champion does not move
    assert registry.clear_challenger(reason="seen enough") == store.v2
    assert registry.challenger() is None
    assert not (store.path / CHALLENGER_FILE).exists()
    assert registry.clear_challenger() is None  # nothing to clear: no entry
    decisions = registry.decisions()
    assert [(d["action"], d["version"], d["previous"], d["reason"]) for d in decisions] == [
        ("challenger_set", store.v2, None, "try the new features"),
        ("challenger_clear", None, store.v2, "seen enough"),
    ]
    for d in decisions:
        assert d["who"] and d["at"].endswith("+00:00")


def test_the_champion_cannot_be_its_own_challenger(store: Store) -> None:
    with pytest.raises(RegistryError, match="champion"):
        store.registry.set_challenger(store.v1)
    assert store.registry.challenger() is None


def test_a_challenger_that_cannot_serve_is_refused(store: Store) -> None:
    tamper(store.path / store.v2 / MODEL_FILE)
    with pytest.raises(RegistryError):
        store.registry.set_challenger(store.v2)
    assert store.registry.challenger() is None
    assert store.registry.decisions() == []


def test_promoting_the_challenger_clears_it_and_rollback_is_recorded(store: Store) -> None:
    registry = store.registry
    registry.set_challenger(store.v2)
    registry.promote(store.v2, reason="won the comparison", evidence={"roc_auc_diff": 0.03})
    assert registry.current() == store.v2
    assert registry.challenger() is None
    assert registry.rollback(reason="paged at night") == store.v1
    actions = [(d["action"], d["version"], d["previous"]) for d in registry.decisions()]
    assert actions == [
        ("challenger_set", store.v2, None),
        ("promote", store.v2, store.v1),
        ("challenger_clear", None, store.v2),
        ("rollback", store.v1, store.v2),
    ]
    assert registry.decisions()[1]["evidence"] == {"roc_auc_diff": 0.03}


def test_a_torn_decision_line_is_skipped(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    registry = store.registry
    registry.record_decision("retrain_rejected", store.v2, reason="gate", evidence={"n": 1})
    with (store.path / "decisions.jsonl").open("a") as handle:
        handle.write('["not", "an", "entry"]\n')  # JSON, but not an entry
        handle.write('{"action": "promo')  # a write cut short by a crash
    assert [d["action"] for d in registry.decisions()] == ["retrain_rejected"]
    assert caplog.text.count("skipping a line of decisions.jsonl that is not JSON") == 1


def test_reserved_pointer_names_are_not_versions(store: Store) -> None:
    for name in (CHALLENGER_FILE, "decisions.jsonl", "CURRENT", "history.json"):
        with pytest.raises(RegistryError, match="invalid version"):
            store.registry.load(name)


def test_a_live_challenger_follows_set_replace_and_clear(store: Store) -> None:
    registry = ModelRegistry(store.path)
    live = LiveModel(registry, role="challenger")
    assert live.refresh().status == "no_model"
    assert live.predictor is None
    registry.set_challenger(store.v2)
    assert live.refresh().status == "loaded"
    assert live.version == store.v2
    registry.clear_challenger()
    result = live.refresh()
    assert (result.status, result.serving, result.previous) == ("no_model", None, store.v2)
    assert live.predictor is None
    # Replaced by a version that fails its checks: no fallback, no challenger at all.
    registry.set_challenger(store.v2)
    live.refresh()
    (store.path / CHALLENGER_FILE).write_text(store.v1 + "\n")  # a pointer moved by hand
    tamper(store.path / store.v1 / MODEL_FILE)
    result = live.refresh()
    assert result.status == "refused"
    assert live.predictor is None and not live.fallback


def test_the_champion_role_still_ignores_the_challenger(store: Store) -> None:
    registry = ModelRegistry(store.path)
    registry.set_challenger(store.v2)
    live = LiveModel.load(registry)
    assert live.version == store.v1


def test_cli_promote_challenger_clear_and_history(store: Store) -> None:
    runner = CliRunner()
    where = ["--store", str(store.path)]
    result = runner.invoke(
        app, ["models", "promote", store.v2, "--challenger", "--reason", "shadow it", *where]
    )
    assert result.exit_code == 0, result.output
    assert store.registry.challenger() == store.v2
    assert store.registry.current() == store.v1
    listing = runner.invoke(app, ["models", "list", *where])
    assert listing.exit_code == 0 and "challenger" in listing.output
    cleared = runner.invoke(app, ["models", "challenger", "clear", *where])
    assert cleared.exit_code == 0 and store.v2 in cleared.output
    history = runner.invoke(app, ["models", "history", "--json", *where])
    lines = [json.loads(line) for line in history.output.splitlines()]
    assert [(e["action"], e["reason"]) for e in lines] == [
        ("challenger_set", "shadow it"),
        ("challenger_clear", ""),
    ]
    refused = runner.invoke(app, ["models", "promote", store.v1, "--challenger", *where])
    assert refused.exit_code != 0 and "CHALLENGER is unchanged" in refused.output


@pytest.mark.parametrize("error", [KeyError("uid 4242"), OSError("no login name")])
def test_a_process_user_without_a_name_is_recorded_as_unknown(
    store: Store, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    """In a container the uid often has no passwd entry: the decision is still recorded."""

    def nameless() -> str:
        raise error

    monkeypatch.setattr(getpass, "getuser", nameless)
    entry = store.registry.record_decision("retrain_skipped", None, reason="no drift")
    assert (entry["who"], entry["previous"]) == ("unknown", store.v1)
    assert store.registry.decisions() == [entry]
