"""The model registry: integrity checks, listing, atomic promote and rollback, and what it refuses.

Each finding of the hardening issue is a test here: an unloadable version promoted; manifest
entries reaching outside the version folder; a copied folder under another name; a tampered
artifact with a rewritten sha256 when signing is on; rollback without its precondition.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import re
import shutil
import threading
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import skops.io as sio

from models import artifact
from models.registry import (
    CURRENT_FILE,
    DECISIONS_FILE,
    LEGACY_MODEL_FILE,
    MANIFEST_FILE,
    MODEL_FILE,
    IntegrityError,
    ModelCheckError,
    ModelRegistry,
    RegistryError,
    sha256_file,
)
from training.run import TrainOutcome

KEY = b"a-signing-key-of-at-least-32-bytes!!"
HEX = re.compile(r"[0-9a-f]{8,}")


def clone_version(store: Path, source: str, name: str) -> None:
    """A second version with identical artifacts, so promote/rollback have a choice."""
    shutil.copytree(store / source, store / name)
    manifest = json.loads((store / name / MANIFEST_FILE).read_text())
    manifest["version"] = name
    (store / name / MANIFEST_FILE).write_text(json.dumps(manifest))


def rewrite_manifest(folder: Path, **changes: object) -> dict[str, object]:
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest.update(changes)
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    return manifest  # type: ignore[no-any-return]


def flip_byte(path: Path, offset: int = 100) -> None:
    with path.open("r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))


def test_trained_version_is_listed_current_and_loadable(trained: TrainOutcome) -> None:
    registry = ModelRegistry(trained.path.parent)
    assert registry.versions() == [trained.version]
    assert registry.current() == trained.version
    loaded = registry.load()
    assert loaded.version == trained.version
    assert loaded.manifest["selected_model"] == trained.selected_model
    assert loaded.manifest["model_format"] == "skops"
    assert loaded.manifest["model_file"] == MODEL_FILE == "model.skops"
    assert set(loaded.manifest["sha256"]) >= {MODEL_FILE, "report.md", "roc_curves.png"}


def test_tampered_model_is_refused_without_leaking_hashes(store_copy: Path) -> None:
    registry = ModelRegistry(store_copy)
    version = registry.current()
    assert version is not None
    flip_byte(store_copy / version / MODEL_FILE)
    with pytest.raises(IntegrityError, match=f"sha256 mismatch for {MODEL_FILE}") as caught:
        registry.load()
    assert not HEX.search(str(caught.value).replace(version, "")), str(caught.value)
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
    with pytest.raises(IntegrityError, match=f"sha256 mismatch for {MODEL_FILE}"):
        registry.load(version)


def test_a_tampered_manifest_cannot_vouch_for_nothing(store_copy: Path) -> None:
    registry = ModelRegistry(store_copy)
    version = registry.current()
    assert version is not None
    manifest = json.loads((store_copy / version / MANIFEST_FILE).read_text())
    del manifest["sha256"]
    (store_copy / version / MANIFEST_FILE).write_text(json.dumps(manifest))
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
    threads += [threading.Thread(target=lambda n=n: [registry.promote(n) for _ in range(5)]) for n in names]
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


# --- finding: an unloadable version was promoted ------------------------------------------------
def _replace_model(folder: Path, pipeline: object, model_format: str = "joblib") -> None:
    """Swap the artifact for ``pipeline`` and rewrite the manifest's sha256 (a verified but bad model)."""
    for name in artifact.FILES.values():
        (folder / name).unlink(missing_ok=True)
    name = artifact.FILES[model_format]  # type: ignore[index]
    if model_format == "joblib":
        joblib.dump(pipeline, folder / name)
    else:
        (folder / name).write_bytes(sio.dumps(pipeline))
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    hashes = {k: v for k, v in manifest["sha256"].items() if k not in artifact.FILES.values()}
    hashes[name] = sha256_file(folder / name)
    rewrite_manifest(folder, sha256=hashes, model_format=model_format, model_file=name)


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param({"not": "a pipeline"}, id="not-a-pipeline"),
        pytest.param(b"\x80\x05garbage", id="garbage-pickle-bytes"),
    ],
)
def test_promote_test_loads_and_refuses_a_version_that_cannot_serve(store_copy: Path, bad: object) -> None:
    registry = ModelRegistry(store_copy)
    first = registry.current()
    assert first is not None
    name = "99990101T000000000000Z-broken"
    clone_version(store_copy, first, name)
    if isinstance(bad, bytes):
        (store_copy / name / MODEL_FILE).unlink()
        (store_copy / name / LEGACY_MODEL_FILE).write_bytes(bad)
        manifest = json.loads((store_copy / name / MANIFEST_FILE).read_text())
        hashes = {k: v for k, v in manifest["sha256"].items() if k != MODEL_FILE}
        hashes[LEGACY_MODEL_FILE] = sha256_file(store_copy / name / LEGACY_MODEL_FILE)
        rewrite_manifest(
            store_copy / name, sha256=hashes, model_format="joblib", model_file=LEGACY_MODEL_FILE
        )
    else:
        _replace_model(store_copy / name, bad)
    registry.verify(name)  # the integrity check alone passes: the file is what the manifest says
    with pytest.raises(RegistryError):
        registry.promote(name)
    assert registry.current() == first
    assert registry.history() == [first]


def test_promote_refuses_a_model_whose_probe_predictions_are_not_probabilities(store_copy: Path) -> None:
    registry = ModelRegistry(store_copy)
    first = registry.current()
    assert first is not None
    name = "99990101T000000000000Z-nan"
    clone_version(store_copy, first, name)
    pipeline = registry.load(first).pipeline
    model = pipeline.steps[-1][1]
    # A fitted linear model whose coefficients became NaN still unpickles and runs.
    inner = model.steps[-1][1] if hasattr(model, "steps") else model
    inner.coef_ = np.full_like(inner.coef_, np.nan)
    _replace_model(store_copy / name, pipeline, model_format="joblib")
    with pytest.raises(ModelCheckError, match="not all finite"):
        registry.promote(name)
    assert registry.current() == first


def test_promote_refuses_scores_outside_0_and_1_but_accepts_certainty(store_copy: Path) -> None:
    from sklearn.ensemble import VotingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from models.encoding import FeatureEncoder
    from models.probes import probe_records
    from training.synthetic import generate

    registry = ModelRegistry(store_copy)
    first = registry.current()
    assert first is not None
    # A soft vote with a negative weight extrapolates: 2 * p(strong) - p(weak) leaves [0, 1].
    frame = generate(600, seed=9)
    vote = VotingClassifier(
        [("strong", LogisticRegression(C=100.0)), ("weak", LogisticRegression(C=1e-4))],
        voting="soft",
        weights=[2.0, -1.0],
    )
    extrapolating = Pipeline([("encode", FeatureEncoder()), ("model", vote)]).fit(frame, frame["churn"])
    clone_version(store_copy, first, "99990101T000000000000Z-outside")
    _replace_model(store_copy / "99990101T000000000000Z-outside", extrapolating)
    with pytest.raises(ModelCheckError, match="a probe prediction is outside \\[0, 1\\]"):
        registry.promote("99990101T000000000000Z-outside")
    # A model certain of its probe customers answers exactly 0 and 1: probabilities still.
    pipeline = registry.load(first).pipeline
    model = pipeline.steps[-1][1]
    inner = model.steps[-1][1] if hasattr(model, "steps") else model
    inner.coef_ = inner.coef_ * 1e6
    clone_version(store_copy, first, "99990101T000000000000Z-certain")
    _replace_model(store_copy / "99990101T000000000000Z-certain", pipeline)
    scores = registry.vet("99990101T000000000000Z-certain").predict_batch(probe_records())
    assert {0.0, 1.0} <= set(scores.tolist())
    registry.promote("99990101T000000000000Z-certain")
    assert registry.current() == "99990101T000000000000Z-certain"


# --- finding: manifest entries pointing outside the version folder ---------------------------
@pytest.mark.parametrize(
    "entry", ["../../outside.txt", "ABSOLUTE", "sub/dir.txt", "..\\..\\outside.txt", "..", ".hidden"]
)
def test_manifest_entries_must_be_plain_names_inside_the_folder(store_copy: Path, entry: str) -> None:
    registry = ModelRegistry(store_copy)
    version = registry.current()
    assert version is not None
    outside = store_copy.parent / "outside.txt"
    outside.write_text("a file a store writer wants hashed\n")
    name = str(outside) if entry == "ABSOLUTE" else entry
    manifest = json.loads((store_copy / version / MANIFEST_FILE).read_text())
    manifest["sha256"][name] = sha256_file(outside)  # the right hash: only the location is wrong
    (store_copy / version / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match="not a plain file name inside the version folder") as caught:
        registry.verify(version)
    assert not HEX.search(str(caught.value).replace(version, ""))
    assert str(outside) not in str(caught.value)


def test_a_symbolic_link_out_of_the_folder_is_refused(store_copy: Path) -> None:
    registry = ModelRegistry(store_copy)
    version = registry.current()
    assert version is not None
    outside = store_copy.parent / "hostname"
    outside.write_text("elsewhere\n")
    report = store_copy / version / "report.md"
    report.unlink()
    report.symlink_to(outside)
    manifest = json.loads((store_copy / version / MANIFEST_FILE).read_text())
    manifest["sha256"]["report.md"] = sha256_file(outside)
    (store_copy / version / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match="report.md is a symbolic link"):
        registry.verify(version)


def test_a_symbolic_link_as_the_model_file_is_refused(store_copy: Path) -> None:
    registry = ModelRegistry(store_copy)
    version = registry.current()
    assert version is not None
    real = store_copy.parent / "model-elsewhere"
    os.replace(store_copy / version / MODEL_FILE, real)
    (store_copy / version / MODEL_FILE).symlink_to(real)
    with pytest.raises(
        IntegrityError, match="cannot read model.skops \\(Too many levels of symbolic links\\)$"
    ):
        registry.load(version)


# --- finding: the version name came from the manifest, not the folder --------------------------
def test_a_copied_folder_under_another_name_is_refused(store_copy: Path) -> None:
    registry = ModelRegistry(store_copy)
    first = registry.current()
    assert first is not None
    copy = "99990101T000000000000Z-copy"
    shutil.copytree(store_copy / first, store_copy / copy)  # the manifest still names `first`
    with pytest.raises(IntegrityError) as refused:
        registry.promote(copy)
    assert str(refused.value) == (
        f"version {copy}: its manifest names '{first}'; a folder copied or renamed from "
        "another version is not that version (train, or promote the original)"
    )
    assert registry.current() == first
    with pytest.raises(RegistryError, match=f"^unknown version 'nope' \\(known: {first}, {copy}\\)$"):
        registry.load("nope")


# --- finding: whoever writes the store could rewrite both the pickle and its sha256 ----------
def _forge(folder: Path) -> None:
    """What a writer of the store can do: change the model and rewrite the manifest's sha256."""
    flip_byte(folder / MODEL_FILE, offset=200)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["sha256"][MODEL_FILE] = sha256_file(folder / MODEL_FILE)
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))


def test_signing_refuses_a_tampered_artifact_with_a_rewritten_sha256(store_copy: Path) -> None:
    signed = ModelRegistry(store_copy, signing_key=KEY)
    version = signed.current()
    assert version is not None
    signed.sign(version)
    signed.load(version)
    _forge(store_copy / version)
    with pytest.raises(IntegrityError, match="signature does not match"):
        signed.load(version)
    # without a key the forgery passes the sha256 check: that is the threat signing closes
    ModelRegistry(store_copy).verify(version)


def test_signing_refuses_unsigned_and_wrongly_signed_versions(store_copy: Path) -> None:
    version = ModelRegistry(store_copy).current()
    assert version is not None
    with pytest.raises(IntegrityError, match="not signed"):
        ModelRegistry(store_copy, signing_key=KEY).load(version)
    ModelRegistry(store_copy, signing_key=b"another-key-another-key-another-key").sign(version)
    with pytest.raises(IntegrityError, match="signature does not match"):
        ModelRegistry(store_copy, signing_key=KEY).promote(version)
    ModelRegistry(store_copy, signing_key=KEY).sign(version)
    ModelRegistry(store_copy, signing_key=KEY).promote(version)


def test_signing_covers_the_version_name(store_copy: Path) -> None:
    registry = ModelRegistry(store_copy, signing_key=KEY)
    first = registry.current()
    assert first is not None
    registry.sign(first)
    renamed = "99990101T000000000000Z-renamed"
    clone_version(store_copy, first, renamed)  # version field rewritten, signature kept
    with pytest.raises(IntegrityError, match="signature does not match"):
        registry.load(renamed)


def test_training_with_a_key_signs(tmp_path: Path) -> None:
    from training.run import TrainConfig, train

    outcome = train(
        TrainConfig(
            store=tmp_path / "s", candidates=["logistic_regression"], plots=False, rows=600, signing_key=KEY
        )
    )
    assert outcome.manifest["signature"]["algorithm"] == "hmac-sha256"
    ModelRegistry(tmp_path / "s", signing_key=KEY).vet(outcome.version)


def test_sign_checks_the_sha256_first(store_copy: Path) -> None:
    registry = ModelRegistry(store_copy, signing_key=KEY)
    version = registry.current()
    assert version is not None
    flip_byte(store_copy / version / MODEL_FILE)
    with pytest.raises(IntegrityError, match="sha256 mismatch"):
        registry.sign(version)
    with pytest.raises(RegistryError, match="no signing key"):
        ModelRegistry(store_copy).sign(version)


# --- finding: rollback did not check that CURRENT is the history's last entry ---------------
def test_rollback_refuses_when_current_was_moved_by_hand(store_copy: Path) -> None:
    registry = ModelRegistry(store_copy)
    first = registry.current()
    assert first is not None
    second, third = "99990101T000000000000Z-second", "99990101T000000000000Z-third"
    clone_version(store_copy, first, second)
    clone_version(store_copy, first, third)
    registry.promote(second)
    (store_copy / CURRENT_FILE).write_text(third + "\n")  # moved outside `churn models`
    with pytest.raises(RegistryError, match=f"CURRENT names {third} but the last promotion .* is {second}"):
        registry.rollback()
    assert registry.current() == third
    assert registry.history() == [first, second]


def test_rollback_test_loads_its_target(store_copy: Path) -> None:
    registry = ModelRegistry(store_copy)
    first = registry.current()
    assert first is not None
    second = "99990101T000000000000Z-second"
    clone_version(store_copy, first, second)
    registry.promote(second)
    flip_byte(store_copy / first / MODEL_FILE)
    with pytest.raises(IntegrityError):
        registry.rollback()
    assert registry.current() == second


# --- the served format: skops, only trusted types; joblib for older versions --------------------
class NotTrusted:
    """A type no reader trusts."""


def test_a_skops_file_with_an_untrusted_type_is_refused(store_copy: Path) -> None:
    registry = ModelRegistry(store_copy)
    first = registry.current()
    assert first is not None
    name = "99990101T000000000000Z-untrusted"
    clone_version(store_copy, first, name)
    pipeline = registry.load(first).pipeline
    pipeline.steps[0][1].extra = NotTrusted()
    _replace_model(store_copy / name, pipeline, model_format="skops")
    with pytest.raises(IntegrityError, match="types outside the trusted list: .*NotTrusted"):
        registry.load(name)
    with pytest.raises(artifact.ArtifactError, match="NotTrusted"):
        artifact.dump(pipeline, store_copy)


def test_older_joblib_versions_still_load_unless_pickles_are_refused(store_copy: Path) -> None:
    registry = ModelRegistry(store_copy)
    first = registry.current()
    assert first is not None
    legacy = "99990101T000000000000Z-legacy"
    clone_version(store_copy, first, legacy)
    pipeline = registry.load(first).pipeline
    _replace_model(store_copy / legacy, pipeline, model_format="joblib")
    manifest = json.loads((store_copy / legacy / MANIFEST_FILE).read_text())
    del manifest["model_format"], manifest["model_file"]  # as versions written before skops
    (store_copy / legacy / MANIFEST_FILE).write_text(json.dumps(manifest))
    assert registry.model_file(legacy) == LEGACY_MODEL_FILE
    assert registry.model_file(first) == MODEL_FILE
    records = [dict(r) for r in __import__("models.probes", fromlist=["x"]).probe_records(20)]
    assert np.array_equal(
        registry.vet(legacy).predict_batch(records), registry.vet(first).predict_batch(records)
    )
    strict = ModelRegistry(store_copy, allow_pickle=False)
    with pytest.raises(IntegrityError, match="pickles are refused"):
        strict.load(legacy)
    strict.load(first)


def test_every_candidate_saves_as_skops_with_bit_identical_probabilities(tmp_path: Path) -> None:
    """TRUSTED_TYPES covers every candidate (and the calibrated ones) and skops changes no probability."""
    from sklearn.pipeline import Pipeline

    from models.calibration import IsotonicCalibrated, SigmoidCalibrated
    from models.probes import probe_records
    from schemas.features import FEATURES
    from training import candidates
    from training.run import _single_threaded
    from training.synthetic import generate

    frame = generate(800, seed=4)
    x, y = frame[["customer_id", *FEATURES]], frame["churn"].to_numpy()
    pipelines = {}
    for name, pipeline in candidates.build().items():
        pipeline.fit(x, y)
        _single_threaded(pipeline)
        pipelines[name] = pipeline
    spline = pipelines["spline_logistic"]
    encoded = spline.steps[0][1].transform(x)
    for kind in (SigmoidCalibrated, IsotonicCalibrated):
        calibrated = kind(spline.steps[1][1], cv=3).fit(encoded, y)
        pipelines[kind.__name__] = Pipeline([spline.steps[0], ("model", calibrated)])
    records = probe_records(200)
    for name, pipeline in pipelines.items():
        folder = tmp_path / name
        folder.mkdir()
        artifact.dump(pipeline, folder)
        loaded = artifact.load((folder / MODEL_FILE).read_bytes(), "skops", allow_pickle=False)
        before = pipeline.predict_proba(x)[:, 1]
        after = loaded.predict_proba(x)[:, 1]
        assert np.array_equal(before, after), name
        encoder = loaded.steps[0][1]
        assert np.array_equal(
            pipeline[1:].predict_proba(encoder.encode_records(records)),
            loaded[1:].predict_proba(encoder.encode_records(records)),
        ), name


def test_trusted_types_name_real_classes() -> None:
    import importlib

    for dotted in artifact.TRUSTED_TYPES:
        module, _, name = dotted.rpartition(".")
        assert isinstance(getattr(importlib.import_module(module), name), type), dotted


def test_the_signature_is_over_the_canonical_manifest() -> None:
    from models import signing

    manifest = {"version": "v", "sha256": {"model.skops": "0" * 64}, "metrics": {"a": 0.1}}
    signed = {**manifest, "signature": signing.signature(manifest, KEY)}
    assert signing.problem(signed, KEY) is None
    reordered = dict(reversed(list(signed.items())))
    assert signing.problem(reordered, KEY) is None
    assert signing.problem({**signed, "threshold": 0.9}, KEY) is not None
    expected = hashlib.sha256  # noqa: F841 - the algorithm named in the field
    assert signed["signature"]["algorithm"] == "hmac-sha256"


# --- what a reader of the store refuses, with the message an operator reads ----------------------
@pytest.mark.parametrize("entry", ["sub\\dir.txt", "nul\0name.txt", ""])
def test_backslashes_nuls_and_empty_names_are_not_plain_names(store_copy: Path, entry: str) -> None:
    registry = ModelRegistry(store_copy)
    version = registry.current()
    assert version is not None
    hashes = json.loads((store_copy / version / MANIFEST_FILE).read_text())["sha256"]
    rewrite_manifest(store_copy / version, sha256={entry: "0" * 64, **hashes})  # checked first
    with pytest.raises(IntegrityError, match="not a plain file name inside the version folder"):
        registry.verify(version)


def test_a_manifest_that_is_not_a_json_object_is_refused(store_copy: Path) -> None:
    registry = ModelRegistry(store_copy)
    version = registry.current()
    assert version is not None
    manifest = store_copy / version / MANIFEST_FILE
    manifest.write_text("[1, 2]")
    with pytest.raises(IntegrityError, match=f"^version {version}: the manifest is not a JSON object$"):
        registry.load(version)
    manifest.write_bytes(b'{"version": "\xff"}')
    with pytest.raises(IntegrityError, match=f"^version {version}: the manifest is not JSON$"):
        registry.load(version)
    manifest.unlink()
    manifest.mkdir()
    with pytest.raises(IntegrityError, match=f"^version {version}: unreadable manifest \\(.+\\)$"):
        registry.load(version)


def test_a_manifest_must_name_its_version_and_list_well_formed_hashes(store_copy: Path) -> None:
    registry = ModelRegistry(store_copy)
    version = registry.current()
    assert version is not None
    folder = store_copy / version
    original = json.loads((folder / MANIFEST_FILE).read_text())
    rewrite_manifest(folder, version=None)
    with pytest.raises(IntegrityError, match=f"^version {version}: its manifest names no version; "):
        registry.verify(version)
    rewrite_manifest(folder, version="x" * 500)
    with pytest.raises(IntegrityError, match=f"its manifest names '{'x' * 79}; a folder") as caught:
        registry.verify(version)
    assert "x" * 80 not in str(caught.value)  # a hostile name is cut, not echoed whole
    hashes = dict(original["sha256"])
    hashes["report.md"] = hashes["report.md"].upper()
    rewrite_manifest(folder, version=version, sha256=hashes)
    malformed = f"^version {version}: the sha256 listed for report.md is malformed$"
    with pytest.raises(IntegrityError, match=malformed):
        registry.verify(version)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model_format": "onnx"}, "unknown model format 'onnx'"),
        ({"model_format": "x" * 100}, f"unknown model format '{'x' * 40}'$"),
        ({"model_file": LEGACY_MODEL_FILE}, f"a skops model must be in {MODEL_FILE}$"),
    ],
)
def test_the_declared_model_format_and_file_must_agree(
    store_copy: Path, changes: dict[str, object], message: str
) -> None:
    registry = ModelRegistry(store_copy)
    version = registry.current()
    assert version is not None
    rewrite_manifest(store_copy / version, **changes)
    with pytest.raises(IntegrityError, match=f"^version {version}: {message}"):
        registry.load(version)
    with pytest.raises(IntegrityError, match=f"^version {version}: {message}"):
        registry.verify(version)


def test_a_listed_artifact_that_is_a_folder_cannot_be_read(store_copy: Path) -> None:
    registry = ModelRegistry(store_copy)
    version = registry.current()
    assert version is not None
    (store_copy / version / "report.md").unlink()
    (store_copy / version / "report.md").mkdir()
    with pytest.raises(
        IntegrityError, match=f"^version {version}: cannot read report.md \\(not a regular file\\)$"
    ):
        registry.verify(version)
    (store_copy / version / MODEL_FILE).unlink()
    (store_copy / version / MODEL_FILE).mkdir()
    with pytest.raises(
        IntegrityError, match=f"^version {version}: cannot read {MODEL_FILE} \\(not a regular file\\)$"
    ):
        registry.load(version)
    os.rmdir(store_copy / version / MODEL_FILE)
    with pytest.raises(IntegrityError, match=f"^version {version}: artifact {MODEL_FILE} is missing$"):
        registry.load(version)


def test_a_version_folder_that_is_a_symbolic_link_is_refused(store_copy: Path) -> None:
    registry = ModelRegistry(store_copy)
    version = registry.current()
    assert version is not None
    linked = "99990101T000000000000Z-linked"
    (store_copy / linked).symlink_to(store_copy / version)
    with pytest.raises(IntegrityError, match=f"^version {linked}: the version folder is a symbolic link$"):
        registry.load(linked)


def test_version_names_are_plain_names_of_at_most_200_characters(store_copy: Path, tmp_path: Path) -> None:
    registry = ModelRegistry(store_copy)
    version = registry.current()
    with pytest.raises(RegistryError, match=f"unknown version '{'v' * 200}' \\(known: {version}\\)"):
        registry.load("v" * 200)
    with pytest.raises(RegistryError, match=f"^invalid version name '{'v' * 80}'$"):
        registry.load("v" * 201)
    with pytest.raises(RegistryError, match="unknown version 'nope' \\(known: none\\)"):
        ModelRegistry(tmp_path).load("nope")


def test_staging_refuses_a_taken_name_and_a_folder_without_exactly_one_model(store_copy: Path) -> None:
    registry = ModelRegistry(store_copy)
    version = registry.current()
    assert version is not None
    with pytest.raises(RegistryError, match=f"^version {version} already exists$"), registry.stage(version):
        pass
    with pytest.raises(RegistryError, match="^invalid version name '.hidden'$"), registry.stage(".hidden"):
        pass
    one_model = "^version v2 must hold exactly one of model.joblib or model.skops$"
    for files in ([], [MODEL_FILE, LEGACY_MODEL_FILE]):
        with pytest.raises(RegistryError, match=one_model), registry.stage("v2") as folder:
            (folder / MANIFEST_FILE).write_text("{}")
            for name in files:
                (folder / name).write_bytes(b"x")
    assert registry.versions() == [version]
    assert sorted(p.name for p in store_copy.iterdir() if p.name.startswith(".staging")) == []


def test_a_staged_version_is_sealed_with_its_format_and_hashes(tmp_path: Path) -> None:
    root = tmp_path / "new" / "store"  # created, parents included
    registry = ModelRegistry(root)
    with registry.stage("v1") as folder:
        (folder / LEGACY_MODEL_FILE).write_bytes(b"model bytes")
        (folder / "notes.txt").write_text("notes")
        (folder / "link.txt").symlink_to(folder / "notes.txt")  # not an artifact: never hashed
        stale = {"algorithm": "hmac-sha256", "value": "0" * 64}  # from a copied manifest
        manifest = {"version": "not this", "metrics": {}, "signature": stale}
        (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    manifest = registry.manifest("v1")
    assert manifest["version"] == "v1"
    assert (manifest["model_format"], manifest["model_file"]) == ("joblib", LEGACY_MODEL_FILE)
    assert manifest["sha256"] == {
        LEGACY_MODEL_FILE: hashlib.sha256(b"model bytes").hexdigest(),
        "notes.txt": hashlib.sha256(b"notes").hexdigest(),
    }
    assert "signature" not in manifest
    assert registry.model_file("v1") == LEGACY_MODEL_FILE
    assert registry.verify("v1") == manifest
    assert registry.versions() == ["v1"]
    (root / "v0-incomplete").mkdir()  # no manifest: not a version
    (root / "v0-file").write_text("")  # not a folder
    assert registry.versions() == ["v1"]


def test_pointers_that_are_blank_name_nothing(store_copy: Path) -> None:
    registry = ModelRegistry(store_copy)
    (store_copy / CURRENT_FILE).write_text("\n")
    (store_copy / "CHALLENGER").write_text("  \n")
    assert registry.current() is None
    assert registry.challenger() is None
    with pytest.raises(RegistryError, match="no model has been promoted"):
        registry.load()


def test_the_store_of_the_settings_signs_and_refuses_pickles(store_copy: Path, tmp_path: Path) -> None:
    from config.settings import Settings

    settings = Settings(model_store=store_copy, model_signing_key=KEY.decode(), model_allow_pickle=False)
    store = ModelRegistry.from_settings(settings)
    assert (store.root, store.signing_key, store.allow_pickle) == (store_copy, KEY, False)
    elsewhere = ModelRegistry.from_settings(Settings(model_store=store_copy), root=tmp_path)
    assert (elsewhere.root, elsewhere.signing_key, elsewhere.allow_pickle) == (tmp_path, None, True)


# --- the audit trail and the log: what moved, from what, and why --------------------------------
def _three_versions(store: Path) -> tuple[str, str, str]:
    """The trained version (promoted) and two clones; no decision recorded yet."""
    first = ModelRegistry(store).current()
    assert first is not None
    second, third = "99990101T000000000000Z-second", "99990101T000000000000Z-third"
    clone_version(store, first, second)
    clone_version(store, first, third)
    (store / DECISIONS_FILE).unlink(missing_ok=True)
    return first, second, third


def _logged(caplog: pytest.LogCaptureFixture, logger: str = "models.registry") -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger]


def test_every_pointer_move_is_recorded_with_what_it_replaced_and_why(
    store_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="models.registry")
    first, second, third = _three_versions(store_copy)
    registry = ModelRegistry(store_copy)
    registry.set_challenger(second)
    registry.set_challenger(third, reason="newer data", evidence={"roc_auc": 0.8})
    registry.promote(third, evidence={"gate": "passed"})  # the challenger: cleared as it is promoted
    registry.promote(second, reason="by hand")
    assert registry.clear_challenger() is None  # nothing to clear: nothing recorded or logged
    registry.set_challenger(first)
    assert registry.clear_challenger() == first
    kept = registry.record_decision("retrain_kept", third, reason="no better", evidence={"diff": -0.01})
    registry.record_decision("retrain_skipped", None)
    assert registry.rollback() == third
    assert registry.history() == [first, third]
    decisions = registry.decisions()
    fields = ("action", "version", "previous", "reason", "evidence")
    assert [tuple(d.get(k) for k in fields) for d in decisions] == [
        ("challenger_set", second, None, "", None),
        ("challenger_set", third, second, "newer data", {"roc_auc": 0.8}),
        ("promote", third, first, "", {"gate": "passed"}),
        ("challenger_clear", None, third, "promoted to champion", None),
        ("promote", second, third, "by hand", None),
        ("challenger_set", first, None, "", None),
        ("challenger_clear", None, first, "", None),
        ("retrain_kept", third, second, "no better", {"diff": -0.01}),
        ("retrain_skipped", None, second, "", None),
        ("rollback", third, second, "", None),
    ]
    assert decisions[7] == kept
    assert _logged(caplog) == [
        f"challenger model version {second} (was none)",
        f"challenger model version {third} (was {second})",
        f"promoted model version {third}",
        f"promoted model version {second}",
        f"challenger model version {first} (was none)",
        f"challenger model version {first} cleared",
        f"rolled back to model version {third}",
    ]


def test_rollback_says_why_it_refuses(store_copy: Path) -> None:
    first, second, third = _three_versions(store_copy)
    registry = ModelRegistry(store_copy)
    with pytest.raises(RegistryError) as alone:
        registry.rollback()
    assert str(alone.value) == "nothing to roll back to: fewer than two promotions recorded"
    registry.promote(second)
    registry.promote(third)
    hint = (
        "the pointer was moved outside `churn models`. "
        "Promote the version you want instead: churn models promote VERSION"
    )
    for pointer, named in ((second, second), ("", "nothing")):
        (store_copy / CURRENT_FILE).write_text(pointer + "\n")
        with pytest.raises(RegistryError) as moved:
            registry.rollback()
        assert str(moved.value) == (
            f"CURRENT names {named} but the last promotion recorded in history.json is {third}: {hint}"
        )
    assert registry.history() == [first, second, third]


def test_vet_checks_the_given_probes_and_scores_one_alone(
    store_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models.predictor import Predictor
    from models.probes import probe_records

    checked: dict[str, list[object]] = {}

    def spy(kind: str) -> Any:
        def check(self: Predictor, records: list[object], tolerance: float = 0.0) -> None:
            checked[kind] = list(records)

        return check

    monkeypatch.setattr(Predictor, "check_fast_path", spy("fast_path"))
    monkeypatch.setattr(Predictor, "check_reasons", spy("reasons"))
    probes = probe_records()[:1]
    version = ModelRegistry(store_copy).current()
    assert version is not None
    ModelRegistry(store_copy).vet(version, probes)
    assert checked == {"fast_path": probes, "reasons": probes}


def test_a_version_whose_model_raises_is_refused_naming_the_exception(
    store_copy: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from models.predictor import Predictor

    def broken(self: Predictor, records: object) -> object:
        raise ValueError("boom")

    monkeypatch.setattr(Predictor, "predict_batch", broken)
    version = ModelRegistry(store_copy).current()
    with pytest.raises(ModelCheckError) as refused:
        ModelRegistry(store_copy).vet(str(version))
    assert str(refused.value) == f"version {version}: the model cannot score the probe customers (ValueError)"
    assert _logged(caplog) == [f"model_check_failed version={version} error=ValueError('boom')"]


@pytest.mark.parametrize(
    ("bad", "words"),
    [(None, "are not all finite numbers"), (1.5, "is outside [0, 1]")],
    ids=["none", "above-one"],
)
def test_probe_predictions_must_be_probabilities(
    store_copy: Path, monkeypatch: pytest.MonkeyPatch, bad: object, words: str
) -> None:
    """A custom model may answer with None or values past 1: refused, never a crash."""
    from models.predictor import Predictor

    monkeypatch.setattr(Predictor, "predict_batch", lambda self, records: [0.5] * (len(records) - 1) + [bad])
    version = ModelRegistry(store_copy).current()
    with pytest.raises(ModelCheckError, match=re.escape(words)):
        ModelRegistry(store_copy).vet(str(version))


# --- the files the store writes: atomic, readable, never half-written ----------------------------
def test_a_pointer_is_written_beside_itself_then_renamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rename is atomic only within one folder; the temporary file is hidden and named for its target."""
    from models.store import atomic_write

    renamed: list[tuple[Path, Path]] = []
    replace = os.replace

    def spy(source: str, target: Path) -> None:
        renamed.append((Path(source), Path(target)))
        replace(source, target)

    monkeypatch.setattr(os, "replace", spy)
    atomic_write(tmp_path / CURRENT_FILE, "v1\n")
    [(source, target)] = renamed
    assert source.parent == target.parent == tmp_path
    assert source.name.startswith(f".{CURRENT_FILE}.")
    assert (tmp_path / CURRENT_FILE).read_text() == "v1\n"


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path: Path) -> None:
    from models.store import atomic_write

    atomic_write(tmp_path / CURRENT_FILE, "v1\n")
    with pytest.raises(TypeError):
        atomic_write(tmp_path / CURRENT_FILE, b"v2\n")  # type: ignore[arg-type]
    assert [p.name for p in tmp_path.iterdir()] == [CURRENT_FILE]
    assert (tmp_path / CURRENT_FILE).read_text() == "v1\n"


def test_a_decision_keeps_its_field_order_and_writes_any_evidence(store_copy: Path) -> None:
    from datetime import UTC, datetime

    (store_copy / DECISIONS_FILE).unlink(missing_ok=True)
    registry = ModelRegistry(store_copy)
    when = datetime(2026, 12, 2, tzinfo=UTC)
    registry.record_decision("retrain_rejected", None, evidence={"rows": np.int64(3), "at": when})
    [line] = (store_copy / DECISIONS_FILE).read_text(encoding="utf-8").splitlines()
    entry = json.loads(line)
    assert list(entry) == ["action", "version", "previous", "who", "at", "reason", "evidence"]
    assert entry["evidence"] == {"rows": "3", "at": str(when)}


def test_the_decisions_around_a_torn_line_are_all_read(
    store_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (store_copy / DECISIONS_FILE).write_text('{"action": "a"}\n{"action": "torn\n{"action": "b"}\n')
    assert [d["action"] for d in ModelRegistry(store_copy).decisions()] == ["a", "b"]
    assert _logged(caplog, "models.store") == ["skipping a line of decisions.jsonl that is not JSON"]


def test_manifests_are_written_for_people_in_their_own_field_order(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two-space indents, fields in the order training wrote them; signing appends its field."""
    caplog.set_level(logging.INFO, logger="models.store")
    registry = ModelRegistry(tmp_path, signing_key=KEY)
    with registry.stage("v1") as folder:
        (folder / LEGACY_MODEL_FILE).write_bytes(b"model bytes")
        (folder / MANIFEST_FILE).write_text(json.dumps({"version": "", "selected_model": "x", "metrics": {}}))
    sealed = (tmp_path / "v1" / MANIFEST_FILE).read_text(encoding="utf-8")
    manifest = json.loads(sealed)
    assert list(manifest) == [
        "version", "selected_model", "metrics", "model_format", "model_file", "sha256", "signature"
    ]  # fmt: skip
    assert sealed == json.dumps(manifest, indent=2) + "\n"
    caplog.clear()
    ModelRegistry(tmp_path, signing_key=b"another-key-another-key-another-key").sign("v1")
    signed = (tmp_path / "v1" / MANIFEST_FILE).read_text(encoding="utf-8")
    resigned = json.loads(signed)
    assert list(resigned) == list(manifest) and resigned["signature"] != manifest["signature"]
    assert signed == json.dumps(resigned, indent=2) + "\n"
    assert _logged(caplog, "models.store") == ["signed model version v1"]


def test_signing_without_a_key_and_verifying_unsigned_versions_are_refused(store_copy: Path) -> None:
    version = ModelRegistry(store_copy).current()
    assert version is not None
    with pytest.raises(RegistryError) as no_key:
        ModelRegistry(store_copy).sign(version)
    assert str(no_key.value) == "no signing key is configured (CHURN_MODEL_SIGNING_KEY or _FILE)"
    with pytest.raises(IntegrityError, match=f"^version {version} is refused: it is not signed$"):
        ModelRegistry(store_copy, signing_key=KEY).verify(version)


def test_a_manifest_without_a_model_file_names_the_older_joblib_file(store_copy: Path) -> None:
    """Versions saved before skops have no ``model_file`` field: theirs is model.joblib."""
    version = ModelRegistry(store_copy).current()
    assert version is not None
    manifest = json.loads((store_copy / version / MANIFEST_FILE).read_text())
    del manifest["model_file"]
    (store_copy / version / MANIFEST_FILE).write_text(json.dumps(manifest))
    assert ModelRegistry(store_copy).model_file(version) == LEGACY_MODEL_FILE


def test_clearing_an_absent_challenger_pointer_is_a_no_op(store_copy: Path) -> None:
    ModelRegistry(store_copy)._write_challenger(None)
    assert ModelRegistry(store_copy).challenger() is None


def test_load_checks_the_bytes_it_deserialises_not_the_file_again(
    store_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model file is read once: a file swapped after that read cannot pass for the checked one."""
    registry = ModelRegistry(store_copy)
    version = registry.current()
    assert version is not None
    hashed: list[str] = []
    digest = ModelRegistry._digest

    def spy(self: ModelRegistry, version: str, folder: Path, name: str) -> str:
        hashed.append(name)
        return digest(self, version, folder, name)

    monkeypatch.setattr(ModelRegistry, "_digest", spy)
    loaded = registry.load(version)
    assert MODEL_FILE not in hashed and hashed  # the other artifacts are read from disk
    assert loaded.path == store_copy / version


def test_an_os_error_without_words_is_named_by_its_kind(
    store_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from models import store

    def unreadable(path: Path) -> str:
        raise PermissionError  # no errno, no words: what some file systems' errors carry

    version = ModelRegistry(store_copy).current()
    monkeypatch.setattr(store, "sha256_file", unreadable)
    with pytest.raises(IntegrityError, match=r"cannot read \S+ \(PermissionError\)$"):
        ModelRegistry(store_copy).verify(str(version))
