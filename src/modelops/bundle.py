"""Model bundles: one ``.npz`` file holding arrays plus a ``meta.json`` member.

No code is ever loaded: arrays go through ``np.load(allow_pickle=False)`` and
scikit-learn estimators through skops with trusted types fixed in our code.
The file is written deterministically (sorted members, fixed timestamps), so
the same fit gives the same bytes, and it is hashed before it is parsed: the
bytes that were checked against dvc.lock are the bytes that get loaded.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.errors import BundleError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from modelops.data import Schema
    from modelops.features import Preprocessor

FORMAT = "modelops.bundle/1"
_EPOCH = (1980, 1, 1, 0, 0, 0)
# Recorded in every bundle (and copied into the card): the libraries its numbers came from.
LIBRARIES = ("numpy", "pandas", "pyarrow", "scikit-learn", "scipy", "skops")


@dataclass
class Model:
    """A fitted preprocessor and estimator with the schema they were trained on."""

    schema: Schema
    preprocessor: Preprocessor
    estimator: Any
    info: dict[str, Any]
    profile: dict[str, Any] | None = None  # reference profile of the training split
    profile_arrays: dict[str, Any] | None = None

    def design_matrix(self, frame: pd.DataFrame) -> np.ndarray:
        return self.preprocessor.transform(frame)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        if self.schema.task != "classification":
            raise BundleError("bundle: a regression model has no class probabilities")
        return self.estimator.predict_proba(self.design_matrix(frame))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Predicted values, or class labels as they appear in the data."""
        import numpy as np

        X = self.design_matrix(frame)
        if self.schema.task == "regression":
            return np.asarray(self.estimator.predict(X), dtype=np.float64)
        classes = np.asarray(self.schema.classes, dtype=object)
        return classes[self.estimator.predict_proba(X).argmax(axis=1)]

    def to_bytes(self) -> bytes:
        import numpy as np

        pre_meta, pre_arrays = self.preprocessor.state()
        model_meta, model_arrays = self.estimator.state()
        meta = {
            "format": FORMAT,
            "schema": self.schema.to_dict(),
            "preprocessor": pre_meta,
            "model": model_meta,
            "info": self.info,
            "profile": self.profile,
        }
        arrays = {
            **pre_arrays,
            **{f"model_{k}": v for k, v in model_arrays.items()},
            **(self.profile_arrays or {}),
        }
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
            _member(zf, "meta.json", json.dumps(meta, indent=2, sort_keys=True).encode())
            for name in sorted(arrays):
                buf = io.BytesIO()
                # asarray(order="C"), not ascontiguousarray: that one turns a 0-d array
                # (a scalar intercept) into shape (1,), and the loader must get back the
                # shape that was saved.
                np.lib.format.write_array(
                    buf, np.asarray(arrays[name], order="C"), allow_pickle=False
                )
                _member(zf, f"{name}.npy", buf.getvalue())
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, where: str = "bundle") -> Model:
        import numpy as np

        from modelops import models
        from modelops.data import Schema
        from modelops.features import Preprocessor

        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                meta = json.loads(zf.read("meta.json"))
            npz = np.load(io.BytesIO(data), allow_pickle=False)
            arrays = {k: npz[k] for k in npz.files if k != "meta.json"}
        except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
            raise BundleError(f"{where}: not a modelops bundle ({exc}); run `dvc repro`") from None
        if meta.get("format") != FORMAT:
            raise BundleError(
                f"{where}: bundle format {meta.get('format')!r} is not {FORMAT!r}; "
                f"retrain with this version of modelops (`dvc repro`)"
            )
        model_arrays = {k[len("model_") :]: v for k, v in arrays.items() if k.startswith("model_")}
        try:
            return cls(
                schema=Schema.from_dict(meta["schema"]),
                preprocessor=Preprocessor.from_state(meta["preprocessor"], arrays),
                estimator=models.from_state(meta["model"], model_arrays),
                info=meta["info"],
                profile=meta.get("profile"),
                profile_arrays={k: v for k, v in arrays.items() if k.startswith("profile_")},
            )
        except KeyError as exc:  # a member or field this version writes is not there
            raise BundleError(
                f"{where}: incomplete modelops bundle (no {exc.args[0]!r}); run `dvc repro`"
            ) from None


def library_versions() -> dict[str, str]:
    """Python's feature release, modelops and each of ``LIBRARIES``, as installed. Not
    Python's patch level: bundles stay byte-identical across 3.11.x (CI images and laptops
    rarely share one); the libraries are pinned."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    import modelops

    python = ".".join(platform.python_version_tuple()[:2])
    out = {"python": python, "modelops": modelops.__version__}
    for lib in LIBRARIES:
        try:
            out[lib] = version(lib)
        except PackageNotFoundError:
            out[lib] = "not installed"
    return out


def _member(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def save(path: str | Path, model: Model) -> bytes:
    """Write the bundle atomically; return its bytes (for hashing)."""
    from modelops.files import write_bytes

    data = model.to_bytes()
    write_bytes(path, data)
    return data


def read_verified(path: str | Path, expected_md5: str | None) -> bytes:
    """Read a bundle's bytes, refusing them if their md5 is not the recorded one."""
    from modelops.files import md5_bytes

    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise BundleError(f"{path}: no model bundle here; run `dvc repro` or `dvc pull`") from None
    if expected_md5 is not None:
        actual = md5_bytes(data)
        if actual != expected_md5:
            raise BundleError(
                f"{path}: md5 {actual} does not match {expected_md5} recorded in dvc.lock; "
                f"the file was changed or is stale: run `dvc checkout {path}` or `dvc repro`"
            )
    return data


def load(path: str | Path, expected_md5: str | None = None) -> Model:
    """Load a bundle from disk, verifying its md5 first when one is given."""
    return Model.from_bytes(read_verified(path, expected_md5), where=str(path))


def load_locked(path: str | Path, lock: str | Path) -> tuple[Model, bytes]:
    """Load a pipeline output bundle, checked against the md5 that ``lock`` (a dvc.lock)
    records for it. Outside DVC (no lock, or no entry) there is nothing to check against."""
    lock = Path(lock)
    expected = lock_md5(lock.read_text(encoding="utf-8"), str(path)) if lock.exists() else None
    data = read_verified(path, expected)
    return Model.from_bytes(data, where=str(path)), data


def lock_md5(lock_text: str, path: str) -> str | None:
    """The md5 that a dvc.lock text records for output ``path`` (None if absent)."""
    from modelops.params import yaml_loads

    lock = yaml_loads(lock_text) or {}
    want = Path(path).as_posix()
    for stage in (lock.get("stages") or {}).values():
        for out in stage.get("outs") or []:
            if Path(out.get("path", "")).as_posix() == want:
                return out.get("md5")
    return None
