"""The model store on disk: versioned artifact folders, their integrity checks and the pointer files.

Layout of a store directory::

    <store>/<version>/model.skops       the fitted sklearn pipeline (model.joblib in older versions)
    <store>/<version>/manifest.json     metadata, metrics, sha256 of every artifact, [signature]
    <store>/<version>/report.md, *.png  the training report
    <store>/CURRENT                     the promoted version (one line)
    <store>/history.json                versions promoted so far, oldest first (a JSON list)
    <store>/CHALLENGER                  the shadow challenger, when one is set (one line)
    <store>/decisions.jsonl             every change of a pointer and every retrain decision, one JSON
                                        object a line: action, version, previous, who, when, why, evidence

A version folder is written under a hidden temporary name and renamed into
place when complete, so readers never see half a version. ``CURRENT`` and
``history.json`` (and ``CHALLENGER``) are replaced atomically (write, fsync, ``os.replace``) under an
exclusive lock, so concurrent promotions serialise.

What a reader accepts (:meth:`ModelStore.verify`): the manifest names the
folder's own version; with a signing key, the manifest carries a valid
signature (:mod:`models.signing`); every manifest entry is a plain file name
inside the folder (no separators, no ``..``, no symbolic links); every listed
file's sha256 matches. Nothing is deserialised before all of that holds.
Error messages name versions and file names, never store paths or hashes.

:class:`ModelStore` only reads and writes; :class:`models.registry.ModelRegistry`
adds the operations that move ``CURRENT`` (promote, roll back) after test-loading.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from config.settings import Settings
from models import artifact, signing

log = logging.getLogger(__name__)

#: The artifact of versions written now; older versions hold ``LEGACY_MODEL_FILE``.
MODEL_FILE = artifact.FILES[artifact.DEFAULT_FORMAT]
LEGACY_MODEL_FILE = artifact.FILES[artifact.JOBLIB]
MANIFEST_FILE = "manifest.json"
CURRENT_FILE = "CURRENT"
HISTORY_FILE = "history.json"
CHALLENGER_FILE = "CHALLENGER"
DECISIONS_FILE = "decisions.jsonl"
_LOCK_FILE = ".lock"
_SHA256 = re.compile(r"[0-9a-f]{64}")


class RegistryError(RuntimeError):
    """A registry operation cannot be carried out (unknown version, nothing to roll back to...)."""


class IntegrityError(RegistryError):
    """A version cannot be trusted: an artifact is missing, altered, outside its folder, or unsigned."""


@dataclass(frozen=True)
class LoadedModel:
    version: str
    pipeline: Any
    manifest: dict[str, Any]
    path: Path


def sha256_file(path: Path) -> str:
    """The sha256 of a regular file; a symbolic link is refused (``OSError``), not followed."""
    digest = hashlib.sha256()
    with _open_plain(path) as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _open_plain(path: Path) -> Any:
    """``path`` opened for reading, refusing symbolic links atomically (``O_NOFOLLOW``)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise IsADirectoryError(errno.EISDIR, "not a regular file")
    return os.fdopen(fd, "rb")


def _reason(exc: OSError) -> str:
    """An OS error without the path it carries."""
    return exc.strerror or type(exc).__name__


def atomic_write(path: Path, text: str) -> None:
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


def plain_name(name: object) -> bool:
    """Whether ``name`` can only mean a file directly inside the version folder."""
    return (
        isinstance(name, str)
        and bool(name)
        and not any(c in name for c in ("/", "\\", "\0"))
        and not name.startswith(".")  # hidden names, and so "." and ".." too
    )


class ModelStore:
    """Versioned model artifacts in one store directory.

    ``signing_key``: manifests written here are signed with it and every version read must
    carry a valid signature. ``allow_pickle``: whether joblib (pickle) artifacts may be loaded.
    """

    def __init__(
        self, root: Path | str, *, signing_key: bytes | None = None, allow_pickle: bool = True
    ) -> None:
        self.root = Path(root)
        self.signing_key = signing_key
        self.allow_pickle = allow_pickle

    @classmethod
    def from_settings(cls, settings: Settings, root: Path | None = None) -> Self:
        """The store of ``settings`` (``root`` overrides ``CHURN_MODEL_STORE``) with its signing key."""
        key = settings.model_signing_key
        return cls(
            root if root is not None else settings.model_store,
            signing_key=key.get_secret_value().encode() if key is not None else None,
            allow_pickle=settings.model_allow_pickle,
        )

    # ----------------------------------------------------------------- writing
    @contextlib.contextmanager
    def stage(self, version: str) -> Iterator[Path]:
        """A scratch folder for a new version; sealed and published atomically when the block ends.

        The block writes the pipeline (:func:`models.artifact.dump`) and ``manifest.json``.
        """
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
        """Record the version, the model format and the sha256 of every artifact; sign with a key."""
        manifest_path = folder / MANIFEST_FILE
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        present = [fmt for fmt, name in artifact.FILES.items() if (folder / name).is_file()]
        if len(present) != 1:
            names = " or ".join(sorted(artifact.FILES.values()))
            raise RegistryError(f"version {version} must hold exactly one of {names}")
        manifest["version"] = version
        manifest["model_format"] = present[0]
        manifest["model_file"] = artifact.FILES[present[0]]
        manifest["sha256"] = {
            p.name: sha256_file(p)
            for p in sorted(folder.iterdir())
            if p.is_file() and not p.is_symlink() and p.name != MANIFEST_FILE
        }
        manifest.pop(signing.SIGNATURE_FIELD, None)
        if self.signing_key is not None:
            manifest[signing.SIGNATURE_FIELD] = signing.signature(_as_read(manifest), self.signing_key)
        atomic_write(manifest_path, json.dumps(manifest, indent=2, sort_keys=False) + "\n")

    def sign(self, version: str) -> None:
        """Sign an existing version with this store's key, after checking its artifacts' sha256."""
        if self.signing_key is None:
            raise RegistryError("no signing key is configured (CHURN_MODEL_SIGNING_KEY or _FILE)")
        folder = self._version_dir(version)
        manifest = self.verify(version, require_signature=False)
        # the signature covers every field but itself (signing.canonical): a re-sign replaces it
        manifest[signing.SIGNATURE_FIELD] = signing.signature(_as_read(manifest), self.signing_key)
        atomic_write(folder / MANIFEST_FILE, json.dumps(manifest, indent=2, sort_keys=False) + "\n")
        log.info("signed model version %s", version)

    # ----------------------------------------------------------------- reading
    def versions(self) -> list[str]:
        """All complete versions, oldest first (names sort by creation time)."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if _valid_version(p.name) and p.is_dir() and (p / MANIFEST_FILE).is_file()
        )

    def manifest(self, version: str) -> dict[str, Any]:
        """The manifest of ``version`` as written (not verified: see :meth:`verify`)."""
        path = self._version_dir(version) / MANIFEST_FILE
        try:
            with _open_plain(path) as handle:
                data = json.loads(handle.read().decode("utf-8"))
        except OSError as exc:
            raise IntegrityError(f"version {version}: unreadable manifest ({_reason(exc)})") from exc
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise IntegrityError(f"version {version}: the manifest is not JSON") from exc
        if not isinstance(data, dict):
            raise IntegrityError(f"version {version}: the manifest is not a JSON object")
        return data

    def current(self) -> str | None:
        """The promoted version, or ``None`` when nothing has been promoted."""
        try:
            text = (self.root / CURRENT_FILE).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return text or None

    def challenger(self) -> str | None:
        """The shadow challenger, or ``None`` when none is set."""
        try:
            text = (self.root / CHALLENGER_FILE).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return text or None

    def decisions(self) -> list[dict[str, Any]]:
        """Every entry of ``decisions.jsonl``, oldest first (a line that is not a JSON object is skipped)."""
        try:
            lines = (self.root / DECISIONS_FILE).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        entries: list[dict[str, Any]] = []
        for line in lines:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                log.warning("skipping a line of %s that is not JSON", DECISIONS_FILE)
                continue
            if isinstance(entry, dict):
                entries.append(entry)
        return entries

    def history(self) -> list[str]:
        """Versions promoted so far, oldest first; a roll back removes the last one."""
        try:
            data = json.loads((self.root / HISTORY_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        return [str(v) for v in data]

    def model_file(self, version: str) -> str:
        """The artifact file name of ``version`` (``model.skops``, or ``model.joblib`` when older)."""
        name = self.manifest(version).get("model_file")  # absent in versions saved before skops
        return name if isinstance(name, str) else LEGACY_MODEL_FILE

    def verify(self, version: str, *, require_signature: bool = True) -> dict[str, Any]:
        """Check the manifest and every artifact (see the module docstring); return the manifest."""
        return self._checked(version, self.manifest(version), None, require_signature=require_signature)

    def _checked(
        self,
        version: str,
        manifest: dict[str, Any],
        preloaded: dict[str, bytes] | None,
        *,
        require_signature: bool = True,
    ) -> dict[str, Any]:
        """:meth:`verify` on a manifest already read.

        ``preloaded`` holds contents already read into memory: those bytes, not the
        file on disk, are checked, so what is verified is exactly what gets loaded.
        """
        folder = self._version_dir(version)
        if self.signing_key is not None and require_signature:
            problem = signing.problem(manifest, self.signing_key)
            if problem is not None:
                raise IntegrityError(f"version {version} is refused: {problem}")
        named = manifest.get("version")
        if named != version:
            shown = repr(named)[:80] if isinstance(named, str) else "no version"
            raise IntegrityError(
                f"version {version}: its manifest names {shown}; a folder copied or renamed from "
                "another version is not that version (train, or promote the original)"
            )
        _, model_file = _model_artifact(version, manifest)
        hashes = manifest.get("sha256")
        if not isinstance(hashes, dict) or model_file not in hashes:
            raise IntegrityError(f"version {version}: manifest lists no sha256 for {model_file}")
        for name, expected in hashes.items():
            if not plain_name(name):
                raise IntegrityError(
                    f"version {version}: a manifest entry is not a plain file name inside the "
                    "version folder (path separators, '..', hidden or absolute names are refused)"
                )
            if not isinstance(expected, str) or not _SHA256.fullmatch(expected):
                raise IntegrityError(f"version {version}: the sha256 listed for {name} is malformed")
            if preloaded and name in preloaded:
                actual = hashlib.sha256(preloaded[name]).hexdigest()
            else:
                actual = self._digest(version, folder, name)
            if actual != expected:
                raise IntegrityError(f"version {version}: sha256 mismatch for {name}")
        return manifest

    def _digest(self, version: str, folder: Path, name: str) -> str:
        path = folder / name
        if path.is_symlink():
            raise IntegrityError(f"version {version}: artifact {name} is a symbolic link")
        try:
            return sha256_file(path)
        except FileNotFoundError as exc:
            raise IntegrityError(f"version {version}: artifact {name} is missing") from exc
        except OSError as exc:
            raise IntegrityError(f"version {version}: cannot read {name} ({_reason(exc)})") from exc

    def load(self, version: str | None = None) -> LoadedModel:
        """Verify, then deserialise, the given version (the promoted one by default)."""
        chosen = self.current() if version is None else version
        if chosen is None:
            raise RegistryError(f"no model has been promoted in {self.root}; run `churn train`")
        folder = self._version_dir(chosen)
        manifest = self.manifest(chosen)  # read once: the file it names is the file verified and loaded
        model_format, model_file = _model_artifact(chosen, manifest)
        try:
            with _open_plain(folder / model_file) as handle:
                blob = handle.read()
        except FileNotFoundError as exc:
            raise IntegrityError(f"version {chosen}: artifact {model_file} is missing") from exc
        except OSError as exc:
            raise IntegrityError(f"version {chosen}: cannot read {model_file} ({_reason(exc)})") from exc
        self._checked(chosen, manifest, {model_file: blob})
        try:
            pipeline = artifact.load(blob, model_format, allow_pickle=self.allow_pickle)
        except artifact.ArtifactError as exc:
            raise IntegrityError(f"version {chosen}: {exc}") from exc
        return LoadedModel(version=chosen, pipeline=pipeline, manifest=manifest, path=folder)

    # ----------------------------------------------------------------- pointer
    def _write_pointer(self, version: str, history: list[str]) -> None:
        """``history.json`` then ``CURRENT``; call with the lock held."""
        atomic_write(self.root / HISTORY_FILE, json.dumps(history) + "\n")
        atomic_write(self.root / CURRENT_FILE, version + "\n")

    def _write_challenger(self, version: str | None) -> None:
        """Set (or, with ``None``, remove) ``CHALLENGER``; call with the lock held."""
        path = self.root / CHALLENGER_FILE
        if version is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        else:
            atomic_write(path, version + "\n")

    def _record(self, entry: dict[str, Any]) -> None:
        """Append one decision to ``decisions.jsonl`` and fsync it; call with the lock held."""
        line = json.dumps(entry, sort_keys=False, default=str) + "\n"
        with (self.root / DECISIONS_FILE).open("a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    # ----------------------------------------------------------------- helpers
    def _version_dir(self, version: str) -> Path:
        if not _valid_version(version):
            raise RegistryError(f"invalid version name {version[:80]!r}")
        folder = self.root / version
        if folder.is_symlink():
            raise IntegrityError(f"version {version}: the version folder is a symbolic link")
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


def _model_artifact(version: str, manifest: dict[str, Any]) -> tuple[str, str]:
    """The model format and file a manifest declares (joblib and ``model.joblib`` when it says none)."""
    model_format = manifest.get("model_format", artifact.JOBLIB)
    expected = {str(k): v for k, v in artifact.FILES.items()}.get(str(model_format))
    if expected is None:
        raise IntegrityError(f"version {version}: unknown model format {str(model_format)[:40]!r}")
    if manifest.get("model_file", expected) != expected:
        raise IntegrityError(f"version {version}: a {model_format} model must be in {expected}")
    return model_format, expected


def _as_read(manifest: dict[str, Any]) -> dict[str, Any]:
    """``manifest`` as a reader will parse it back from JSON (what the signature must cover)."""
    parsed: dict[str, Any] = json.loads(json.dumps(manifest))
    return parsed


def _valid_version(version: str) -> bool:
    return (
        plain_name(version)
        and len(version) <= 200
        and version not in (CURRENT_FILE, HISTORY_FILE, CHALLENGER_FILE, DECISIONS_FILE)
    )
