"""The served pipeline on disk: skops, which loads only trusted types, or joblib for older versions.

A skops file is a zip of JSON and numpy arrays; loading it rebuilds only the types
named in :data:`TRUSTED_TYPES` (plus the numpy, scipy and scikit-learn types skops
trusts by default) and refuses a file that holds anything else, so a file in the
store cannot run code when it is loaded. A joblib file is a pickle: loading it
runs whatever it says, so readers accept one only when pickles are allowed
(``CHURN_MODEL_ALLOW_PICKLE``, on by default for the versions trained before skops).

Both formats give back the same objects: the probabilities are bit-identical and
scoring costs the same (``churn bench format``); loading a skops file takes longer.
"""

from __future__ import annotations

import io
import logging
import zipfile
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

ModelFormat = Literal["skops", "joblib"]
SKOPS: ModelFormat = "skops"
JOBLIB: ModelFormat = "joblib"
#: The artifact file of each format; a version holds exactly one of them.
FILES: dict[ModelFormat, str] = {SKOPS: "model.skops", JOBLIB: "model.joblib"}
#: The format new versions are written in.
DEFAULT_FORMAT: ModelFormat = SKOPS

#: Types beyond skops' defaults that a served pipeline may hold: this project's own estimators
#: and the tree structures of sklearn's forests and gradient boosting. A pipeline holding
#: anything else is refused when it is saved, and a file holding anything else when it is loaded.
TRUSTED_TYPES: tuple[str, ...] = (
    "models.basis.NumericBasis",
    "models.blend.LogOddsBlend",
    "models.calibration.IsotonicCalibrated",
    "models.calibration.SigmoidCalibrated",
    "models.encoding.FeatureEncoder",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
)


class ArtifactError(RuntimeError):
    """A pipeline cannot be saved or loaded in its format; the message holds no paths."""


def dump(pipeline: Any, folder: Path, model_format: ModelFormat = DEFAULT_FORMAT) -> str:
    """Write ``pipeline`` into ``folder`` in ``model_format``; return the file name.

    A skops file is checked after writing: a type outside :data:`TRUSTED_TYPES` would make
    every reader refuse the version, so it is refused here, when the model is trained.
    """
    name = FILES[model_format]
    if model_format == JOBLIB:
        import joblib  # heavy; only when a model is really written

        joblib.dump(pipeline, folder / name, compress=3)
        return name
    import skops.io as sio  # heavy; only when a model is really written

    data = sio.dumps(pipeline, compression=zipfile.ZIP_DEFLATED)
    untrusted = sorted(set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES))
    if untrusted:
        raise ArtifactError(
            "the pipeline holds types that readers would refuse; add them to "
            f"models.artifact.TRUSTED_TYPES if they are this project's own: {', '.join(untrusted)}"
        )
    (folder / name).write_bytes(data)
    return name


def load(blob: bytes, model_format: str, *, allow_pickle: bool) -> Any:
    """The pipeline in ``blob`` (already checked against its sha256), read as ``model_format``."""
    if model_format == SKOPS:
        import skops.io as sio  # heavy; only when a model is really loaded

        try:
            untrusted = sorted(set(sio.get_untrusted_types(data=blob)) - set(TRUSTED_TYPES))
        except Exception as exc:
            raise ArtifactError(f"{FILES[SKOPS]} is not a skops file ({type(exc).__name__})") from exc
        if untrusted:
            listed = ", ".join(untrusted)
            raise ArtifactError(f"{FILES[SKOPS]} holds types outside the trusted list: {listed}")
        try:
            return sio.loads(blob, trusted=list(TRUSTED_TYPES))
        except Exception as exc:
            raise ArtifactError(f"cannot load {FILES[SKOPS]} ({type(exc).__name__})") from exc
    if model_format == JOBLIB:
        if not allow_pickle:
            raise ArtifactError(
                f"{FILES[JOBLIB]} is a pickle, and pickles are refused (CHURN_MODEL_ALLOW_PICKLE=false)"
            )
        import joblib  # heavy; only when a model is really loaded

        try:
            return joblib.load(io.BytesIO(blob))
        except Exception as exc:  # a verified file that still fails to load is corrupt
            raise ArtifactError(f"cannot load {FILES[JOBLIB]} ({type(exc).__name__})") from exc
    raise ArtifactError(f"unknown model format {model_format[:40]!r}")
