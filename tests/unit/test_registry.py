"""The model registry: integrity checks, listing, atomic promote and rollback."""

from __future__ import annotations

import itertools
import json
import shutil
import threading
from pathlib import Path

import pytest

from models.registry import (
    CURRENT_FILE,
    MANIFEST_FILE,
    MODEL_FILE,
    IntegrityError,
    ModelRegistry,
    RegistryError,
)
from training.run import TrainOutcome


def clone_version(store: Path, source: str, name: str) -> None:
    """A second version with identical artifacts, so promote/rollback have a choice."""
    shutil.copytree(store / source, store / name)
    manifest = json.loads((store / name / MANIFEST_FILE).read_text())
    manifest["version"] = name
    (store / name / MANIFEST_FILE).write_text(json.dumps(manifest))


def test_trained_version_is_listed_current_and_loadable(trained: TrainOutcome) -> None:
    registry = ModelRegistry(trained.path.parent)
    assert registry.versions() == [trained.version]
    assert registry.current() == trained.version
    loaded = registry.load()
    assert loaded.version == trained.version
    assert loaded.manifest["selected_model"] == trained.selected_model
    assert set(loaded.manifest["sha256"]) >= {MODEL_FILE, "report.md", "roc_curves.png"}


def test_tampered_model_is_refused(store_copy: Path) -> None:
    registry = ModelRegistry(store_copy)
    version = registry.current()
    assert version is not None
    with (store_copy / version / MODEL_FILE).open("r+b") as handle:
        handle.seek(100)
        byte = handle.read(1)
        handle.seek(100)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(IntegrityError, match="sha256 mismatch for model.joblib"):
        registry.load()
    with pytest.raises(IntegrityError):
        registry.promote(version)


def test_truncated_or_missing_artifacts_are_refused(store_copy: Path) -> None:
    registry = ModelRegistry(store_copy)
    version = registry.current()
    assert version is not None
    (store_copy / version / "roc_curves.png").unlink()
    with pytest.raises(IntegrityError, match="roc_curves.png is missing"):
        registry.verify(version)
    model = store_copy / version / MODEL_FILE
    model.write_bytes(model.read_bytes()[:1000])
    with pytest.raises(IntegrityError, match="sha256 mismatch for model.joblib"):
        registry.load(version)


def test_a_tampered_manifest_cannot_vouch_for_nothing(store_copy: Path) -> None:
    registry = ModelRegistry(store_copy)
    version = registry.current()
    assert version is not None
    manifest_path = store_copy / version / MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text())
    del manifest["sha256"]
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match="no sha256"):
        registry.load(version)


def test_promote_and_rollback(store_copy: Path) -> None:
    registry = ModelRegistry(store_copy)
    first = registry.current()
    assert first is not None
    clone_version(store_copy, first, "99990101T000000000000Z-second")
    registry.promote("99990101T000000000000Z-second")
    assert registry.current() == "99990101T000000000000Z-second"
    assert registry.history() == [first, "99990101T000000000000Z-second"]
    assert registry.rollback() == first
    assert registry.current() == first
    with pytest.raises(RegistryError, match="nothing to roll back"):
        registry.rollback()


def test_unknown_and_malicious_versions_are_rejected(store_copy: Path) -> None:
    registry = ModelRegistry(store_copy)
    with pytest.raises(RegistryError, match="unknown version"):
        registry.promote("nope")
    for bad in ("../etc", ".hidden", CURRENT_FILE, ""):
        with pytest.raises(RegistryError):
            registry.load(bad) if bad else registry.promote(bad)


def test_empty_store(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "none")
    assert registry.versions() == []
    assert registry.current() is None
    with pytest.raises(RegistryError, match="no model has been promoted"):
        registry.load()


def test_failed_staging_leaves_no_version_behind(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    with pytest.raises(RuntimeError, match="boom"), registry.stage("v1") as folder:
        (folder / MODEL_FILE).write_bytes(b"x")
        raise RuntimeError("boom")
    assert registry.versions() == []
    assert [p.name for p in tmp_path.iterdir()] == []


def test_concurrent_promotions_never_leave_a_torn_pointer(store_copy: Path) -> None:
    registry = ModelRegistry(store_copy)
    first = registry.current()
    assert first is not None
    names = [f"99990101T0000000000{i:02d}Z-v" for i in range(4)]
    for name in names:
        clone_version(store_copy, first, name)
    seen: set[str | None] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.add(registry.current())

    threads = [threading.Thread(target=reader)]
    threads += [threading.Thread(target=lambda n=n: [registry.promote(n) for _ in range(20)]) for n in names]
    for t in threads:
        t.start()
    for t in threads[1:]:
        t.join()
    stop.set()
    threads[0].join()
    assert seen <= {first, *names}
    assert registry.current() in names
    history = registry.history()
    assert set(history) <= {first, *names}
    assert all(a != b for a, b in itertools.pairwise(history))
