"""The model registry: versioned artifact folders, integrity checks, promote and roll back.

Layout of a store directory::

    <store>/<version>/model.joblib      the fitted sklearn pipeline
    <store>/<version>/manifest.json     metadata, metrics, sha256 of every artifact
    <store>/<version>/report.md, *.png  the training report
    <store>/CURRENT                     the promoted version (one line)
    <store>/history.json                versions promoted so far, oldest first

A version folder is written under a hidden temporary name and renamed into
place when complete, so readers never see half a version. ``CURRENT`` and
``history.json`` are replaced atomically (write, fsync, ``os.replace``) under an
exclusive lock, so concurrent promotions serialise. Nothing is unpickled until
its sha256 matches the manifest.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MODEL_FILE = "model.joblib"
MANIFEST_FILE = "manifest.json"
CURRENT_FILE = "CURRENT"
HISTORY_FILE = "history.json"
_LOCK_FILE = ".lock"


class RegistryError(RuntimeError):
    """A registry operation cannot be carried out (unknown version, nothing to roll back to...)."""


class IntegrityError(RegistryError):
    """An artifact is missing or its sha256 does not match the manifest."""


@dataclass(frozen=True)
class LoadedModel:
    version: str
    pipeline: Any
    manifest: dict[str, Any]
    path: Path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class ModelRegistry:
    """Versioned model artifacts in one store directory."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    # ----------------------------------------------------------------- writing
    @contextlib.contextmanager
    def stage(self, version: str) -> Iterator[Path]:
        """A scratch folder for a new version; published atomically when the block ends."""
        if not _valid_version(version):
            raise RegistryError(f"invalid version name {version!r}")
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / version
        if final.exists():
            raise RegistryError(f"version {version} already exists")
        staging = Path(tempfile.mkdtemp(dir=self.root, prefix=f".staging-{version}-"))
        try:
            yield staging
            self._seal(staging, version)
            os.rename(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        log.info("saved model version %s in %s", version, final)

    def _seal(self, folder: Path, version: str) -> None:
        """Record the sha256 of every artifact in the manifest, which must already exist."""
        manifest_path = folder / MANIFEST_FILE
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if not (folder / MODEL_FILE).is_file():
            raise RegistryError(f"version {version} has no {MODEL_FILE}")
        manifest["version"] = version
        manifest["sha256"] = {
            p.name: sha256_file(p)
            for p in sorted(folder.iterdir())
            if p.is_file() and p.name != MANIFEST_FILE
        }
        _atomic_write(manifest_path, json.dumps(manifest, indent=2, sort_keys=False) + "\n")

    # ----------------------------------------------------------------- reading
    def versions(self) -> list[str]:
        """All complete versions, oldest first (names sort by creation time)."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST_FILE).is_file()
        )

    def manifest(self, version: str) -> dict[str, Any]:
        path = self._version_dir(version) / MANIFEST_FILE
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise IntegrityError(f"version {version}: unreadable manifest ({exc})") from exc
        return data

    def current(self) -> str | None:
        """The promoted version, or ``None`` when nothing has been promoted."""
        try:
            text = (self.root / CURRENT_FILE).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return text or None

    def history(self) -> list[str]:
        try:
            data = json.loads((self.root / HISTORY_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        return [str(v) for v in data]

    def verify(self, version: str, *, preloaded: dict[str, bytes] | None = None) -> dict[str, Any]:
        """Check every artifact against the manifest's sha256; return the manifest.

        ``preloaded`` holds contents already read into memory: those bytes, not the
        file on disk, are checked, so what is verified is exactly what gets loaded.
        """
        folder = self._version_dir(version)
        manifest = self.manifest(version)
        hashes = manifest.get("sha256")
        if not isinstance(hashes, dict) or MODEL_FILE not in hashes:
            raise IntegrityError(f"version {version}: manifest lists no sha256 for {MODEL_FILE}")
        for name, expected in hashes.items():
            path = folder / name
            if preloaded and name in preloaded:
                actual = hashlib.sha256(preloaded[name]).hexdigest()
            elif not path.is_file():
                raise IntegrityError(f"version {version}: artifact {name} is missing")
            else:
                actual = sha256_file(path)
            if actual != expected:
                raise IntegrityError(
                    f"version {version}: sha256 mismatch for {name} "
                    f"(manifest {expected[:12]}..., file {actual[:12]}...)"
                )
        return manifest

    def load(self, version: str | None = None) -> LoadedModel:
        """Verify, then unpickle, the given version (the promoted one by default)."""
        import joblib  # heavy; only when a model is really loaded

        chosen = version or self.current()
        if chosen is None:
            raise RegistryError(f"no model has been promoted in {self.root}; run `churn train`")
        folder = self._version_dir(chosen)
        try:
            blob = (folder / MODEL_FILE).read_bytes()
        except OSError as exc:
            raise IntegrityError(f"version {chosen}: cannot read {MODEL_FILE} ({exc})") from exc
        manifest = self.verify(chosen, preloaded={MODEL_FILE: blob})
        try:
            pipeline = joblib.load(io.BytesIO(blob))
        except Exception as exc:  # a verified file that still fails to load is corrupt
            raise IntegrityError(f"version {chosen}: cannot load {MODEL_FILE} ({exc})") from exc
        return LoadedModel(version=chosen, pipeline=pipeline, manifest=manifest, path=folder)

    # ----------------------------------------------------------- promote/rollback
    def promote(self, version: str) -> None:
        """Make ``version`` the current one (after verifying it)."""
        self.verify(version)
        with self._locked():
            history = self.history()
            if history and history[-1] == version:
                _atomic_write(self.root / CURRENT_FILE, version + "\n")
                return
            history.append(version)
            _atomic_write(self.root / HISTORY_FILE, json.dumps(history) + "\n")
            _atomic_write(self.root / CURRENT_FILE, version + "\n")
        log.info("promoted model version %s", version)

    def rollback(self) -> str:
        """Return to the version promoted before the current one; return that version."""
        with self._locked():
            history = self.history()
            if len(history) < 2:
                raise RegistryError("nothing to roll back to: fewer than two promotions recorded")
            previous = history[-2]
            self.verify(previous)
            _atomic_write(self.root / HISTORY_FILE, json.dumps(history[:-1]) + "\n")
            _atomic_write(self.root / CURRENT_FILE, previous + "\n")
        log.info("rolled back to model version %s", previous)
        return previous

    # ----------------------------------------------------------------- helpers
    def _version_dir(self, version: str) -> Path:
        if not _valid_version(version):
            raise RegistryError(f"invalid version name {version!r}")
        folder = self.root / version
        if not folder.is_dir():
            known = ", ".join(self.versions()) or "none"
            raise RegistryError(f"unknown version {version!r} (known: {known})")
        return folder

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / _LOCK_FILE).open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _valid_version(version: str) -> bool:
    return (
        bool(version)
        and not version.startswith(".")
        and "/" not in version
        and "\\" not in version
        and version not in (CURRENT_FILE, HISTORY_FILE)
    )
