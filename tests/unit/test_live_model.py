"""LiveModel: load, swap, refuse a tampered artifact, fall back loudly, stay consistent under threads."""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from pathlib import Path

import pytest

from models.live import LiveModel
from models.predictor import Predictor
from models.probes import probe_records
from models.registry import MANIFEST_FILE, MODEL_FILE, ModelRegistry, RegistryError
from schemas.events import CustomerEvent
from schemas.features import CATEGORIES
from tests.support.api_support import Store, records, store_copy, tamper


@pytest.fixture
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return store_copy(tmp_path_factory)


def test_empty_store_has_no_model(tmp_path: Path) -> None:
    live = LiveModel(ModelRegistry(tmp_path / "empty"))
    result = live.refresh()
    assert result.status == "no_model"
    assert live.predictor is None
    assert live.version is None


class Events:
    """Records what a LiveModel tells its metrics."""

    def __init__(self) -> None:
        self.loaded: list[tuple[str, str]] = []
        self.refused = 0
        self.fallback: list[bool] = []

    def model_loaded(self, version: str, model: str) -> None:
        self.loaded.append((version, model))

    def model_refused(self) -> None:
        self.refused += 1

    def model_is_fallback(self, active: bool) -> None:
        self.fallback.append(active)


def point_current_at(store: Store, version: str) -> None:
    """Move the CURRENT pointer without the registry's checks (as a bad deploy or a hand edit would)."""
    tmp = store.path / ".CURRENT.tmp"
    tmp.write_text(version + "\n")
    os.replace(tmp, store.path / "CURRENT")


def test_empty_store_cannot_be_loaded_for_serving(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="no promoted model"):
        LiveModel.load(ModelRegistry(tmp_path / "empty"))
    with pytest.raises(RegistryError, match="no model is loaded"):
        _ = LiveModel(ModelRegistry(tmp_path / "empty")).current


def test_loads_the_promoted_version_then_reports_unchanged(store: Store) -> None:
    events = Events()
    live = LiveModel(store.registry, events=events)
    first = live.refresh()
    assert (first.status, first.serving, first.previous) == ("loaded", store.v1, None)
    assert live.predictor is not None
    assert live.predictor.fast_path  # the compiled path agreed with sklearn on the probes
    second = live.refresh()
    assert (second.status, second.serving) == ("unchanged", store.v1)
    assert events.loaded == [(store.v1, "spline_logistic")]
    assert events.refused == 0
    assert LiveModel.load(store.registry).current.version == store.v1


def test_swaps_to_a_newly_promoted_version(store: Store) -> None:
    live = LiveModel(store.registry)
    live.refresh()
    old = live.predictor
    store.registry.promote(store.v2)
    result = live.refresh()
    assert (result.status, result.serving, result.previous) == ("loaded", store.v2, store.v1)
    assert live.version == store.v2
    # a reference taken before the swap still scores with the old model
    assert old is not None
    assert old.version == store.v1
    rows = records(20)
    assert not (old.predict_batch(rows) == live.predictor.predict_batch(rows)).all()  # type: ignore[union-attr]


def test_refuses_a_tampered_artifact_and_keeps_the_old_model(store: Store) -> None:
    events = Events()
    live = LiveModel(store.registry, events=events)
    live.refresh()
    store.registry.promote(store.v2)
    original = tamper(store.path / store.v2 / MODEL_FILE)

    result = live.refresh()
    assert result.status == "refused"
    assert result.candidate == store.v2
    assert result.serving == store.v1
    assert result.error is not None
    assert "sha256 mismatch" in result.error
    assert live.version == store.v1
    assert live.failures == 1
    assert events.refused == 1
    assert result.fallback and live.fallback and events.fallback[-1] is True

    # the poll loop does not retry the same broken version over and over
    assert live.refresh().status == "unchanged"
    assert live.failures == 1
    assert events.refused == 1

    # once the file is repaired, a forced refresh loads it
    (store.path / store.v2 / MODEL_FILE).write_bytes(original)
    assert live.refresh().status == "unchanged"
    assert live.refresh(force=True).status == "loaded"
    assert live.version == store.v2
    assert not live.fallback and events.fallback[-1] is False


def test_concurrent_refreshes_load_once(store: Store) -> None:
    live = LiveModel(store.registry)
    barrier = threading.Barrier(8)
    statuses: list[str] = []

    def refresh() -> None:
        barrier.wait()
        statuses.append(live.refresh().status)

    threads = [threading.Thread(target=refresh) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == ["loaded"] + ["unchanged"] * 7
    assert live.reloads == 1


def test_predictions_match_a_directly_loaded_predictor(store: Store) -> None:
    live = LiveModel(store.registry)
    live.refresh()
    direct = Predictor.from_registry(store.registry)
    rows = records(50)
    assert live.predictor is not None
    assert (live.predictor.predict_batch(rows) == direct.predict_batch(rows)).all()


def test_refuses_a_verified_artifact_that_is_not_a_pipeline(store: Store) -> None:
    """Right sha256, wrong content (not a churn pipeline): refused, the old model stays."""
    import json
    import shutil

    import joblib

    from models.registry import MANIFEST_FILE, sha256_file

    live = LiveModel(store.registry)
    live.refresh()
    odd = "29990101T000000000000Z-notapipe"
    folder = store.path / odd
    shutil.copytree(store.path / store.v2, folder)
    joblib.dump({"not": "a pipeline"}, folder / MODEL_FILE)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["version"] = odd
    manifest["sha256"][MODEL_FILE] = sha256_file(folder / MODEL_FILE)
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    store.registry.verify(odd)  # passes the integrity check...
    with pytest.raises(RegistryError):
        store.registry.promote(odd)  # ...but promote test-loads it and refuses
    point_current_at(store, odd)  # as if promoted by hand

    result = live.refresh()
    assert result.status == "refused"
    assert result.candidate == odd
    assert live.version == store.v1


def test_probe_records_are_valid_customers_covering_every_level() -> None:
    probes = probe_records()
    assert probes == probe_records()  # the same probes on every load
    for record in probes:
        CustomerEvent.model_validate(record)
    for name, levels in CATEGORIES.items():
        assert {record[name] for record in probes} == set(levels), name
    assert any(record["total_charges"] is None for record in probes)
    assert {record["senior_citizen"] for record in probes} == {0, 1}


# --- readers fall back to the last good version, loudly ---------------------------------------------
def test_a_fresh_process_falls_back_to_the_last_good_version(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """CURRENT cannot load at start-up: serve the newest good version of the history, and say so."""
    store.registry.promote(store.v2)  # history: v1, v2
    tamper(store.path / store.v2 / MODEL_FILE)
    events = Events()
    with caplog.at_level(logging.ERROR):
        live = LiveModel.load(store.registry, events=events)  # what `churn score` does at start-up
    assert live.version == store.v1
    assert live.fallback
    assert events.loaded == [(store.v1, "spline_logistic")]
    assert events.fallback == [True]
    assert live.last_result is not None
    assert (live.last_result.status, live.last_result.candidate) == ("refused", store.v2)
    assert any("model_fallback serving=" + store.v1 in r.getMessage() for r in caplog.records)
    # the broken CURRENT is not retried every poll; a fixed or new promotion ends the fallback
    assert live.refresh().status == "unchanged"
    assert live.fallback
    point_current_at(store, store.v1)
    assert live.refresh().status == "unchanged"
    assert not live.fallback


def test_nothing_good_in_the_history_means_no_model(store: Store) -> None:
    store.registry.promote(store.v2)
    tamper(store.path / store.v2 / MODEL_FILE)
    tamper(store.path / store.v1 / MODEL_FILE)
    with pytest.raises(RegistryError, match="sha256 mismatch"):
        LiveModel.load(store.registry)


def test_a_copied_folder_is_refused_once_not_reloaded_every_poll(store: Store) -> None:
    """A folder copied under a new name (manifest naming the original) used to reload on every poll."""
    live = LiveModel(store.registry)
    live.refresh()
    copy = "29990101T000000000000Z-copy"
    shutil.copytree(store.path / store.v1, store.path / copy)
    point_current_at(store, copy)
    statuses = [live.refresh().status for _ in range(5)]
    assert statuses == ["refused", "unchanged", "unchanged", "unchanged", "unchanged"]
    assert live.reloads == 1
    assert live.version == store.v1
    manifest = json.loads((store.path / copy / MANIFEST_FILE).read_text())
    assert manifest["version"] == store.v1
