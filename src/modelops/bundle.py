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

from modelops import files
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

    def design_matrix(self, frame: pd.DataFrame, scratch: Path | None = None) -> np.ndarray:
        """The model's input for ``frame``; a large one in a scratch file under ``scratch``
        (``Preprocessor.transform``)."""
        return self.preprocessor.transform(frame, scratch=scratch)

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
        """Parse a bundle, refusing (one BundleError line) anything this version does not
        write: wrong JSON types, missing members, non-numeric arrays, and array headers that
        claim more bytes than their member holds (checked before anything is allocated)."""
        from modelops import models
        from modelops.data import Schema
        from modelops.features import Preprocessor

        meta, arrays = _read_members(data, where)
        if meta.get("format") != FORMAT:
            raise BundleError(
                f"{where}: bundle format {str(meta.get('format'))[:80]!r} is not {FORMAT!r}; "
                f"retrain with this version of modelops (`dvc repro`)"
            )
        for key, kind in (("schema", dict), ("preprocessor", dict), ("model", dict)):
            if not isinstance(meta.get(key, {}), kind):
                raise BundleError(
                    f"{where}: malformed bundle: meta.json's {key!r} is not a mapping"
                )
        model_arrays = {k[len("model_") :]: v for k, v in arrays.items() if k.startswith("model_")}
        try:
            schema = Schema.from_dict(meta["schema"])
            _check_schema(schema)
            pre = Preprocessor.from_state(meta["preprocessor"], arrays)
            model = cls(
                schema=schema,
                preprocessor=pre,
                estimator=models.from_state(meta["model"], model_arrays, schema.task),
                info=meta["info"],
                profile=meta.get("profile"),
                profile_arrays={k: v for k, v in arrays.items() if k.startswith("profile_")},
            )
        except KeyError as exc:  # a member or field this version writes is not there
            raise BundleError(
                f"{where}: incomplete modelops bundle (no {str(exc.args[0])[:80]!r}); "
                f"run `dvc repro`"
            ) from None
        except (TypeError, ValueError, AttributeError, IndexError) as exc:
            # a field of the wrong JSON type (a list for a mapping, a number for a list, ...)
            raise BundleError(
                f"{where}: malformed modelops bundle ({type(exc).__name__}: "
                f"{str(exc)[:200]}); run `dvc repro`"
            ) from None
        model._check_widths(where)
        return model

    def _check_widths(self, where: str) -> None:
        """The parts must fit together, or the first request fails instead of the load."""
        import numpy as np

        pre = self.preprocessor
        if not isinstance(self.info, dict) or not (
            self.profile is None or isinstance(self.profile, dict)
        ):
            raise BundleError(f"{where}: malformed bundle: meta.json's info or profile is wrong")
        n = len(pre.numeric)
        for name in ("fill_", "mean_", "scale_"):
            value = getattr(pre, name)
            if value.dtype.kind != "f" or value.shape != (n,):
                raise BundleError(
                    f"{where}: malformed bundle: pre_{name[:-1]} is {value.dtype} "
                    f"{value.shape}, not float64 ({n},) for {n} numeric columns; run `dvc repro`"
                )
        if len(pre.categorical) != len(pre.categories_) or not all(
            isinstance(c, list) for c in pre.categories_
        ):
            raise BundleError(f"{where}: malformed bundle: categories do not match the columns")
        width = n + sum(len(c) for c in pre.categories_)
        est = self.estimator
        coef = getattr(est, "coef_", None)
        got = getattr(getattr(est, "estimator", None), "n_features_in_", None)
        if got is None and coef is not None:
            got = np.shape(coef)[0]
        if got is not None and got != width:
            raise BundleError(
                f"{where}: malformed bundle: the model takes {got} inputs but the preprocessor "
                f"makes {width}; run `dvc repro`"
            )
        if self.schema.task == "classification":
            k = len(self.schema.classes or [])
            classes = getattr(getattr(est, "estimator", None), "classes_", None)
            outputs = (
                len(classes)
                if classes is not None
                else (1 if coef is None or np.ndim(coef) == 1 else np.shape(coef)[1])
            )
            if k < 2 or outputs != (k if k > 2 or classes is not None else 1):
                raise BundleError(
                    f"{where}: malformed bundle: the model has {outputs} outputs for {k} "
                    f"classes; run `dvc repro`"
                )


# Array dtypes a bundle may hold: booleans, integers, floats and fixed-width text.
_DTYPE_KINDS = "biufU"


def _read_members(data: bytes, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """meta.json and the arrays, in memory bounded by the bundle's size: members must be
    stored (no inflating), and each array's header must describe exactly its member's bytes."""
    import numpy as np

    def bad(why: str) -> BundleError:
        return BundleError(f"{where}: not a modelops bundle ({why}); run `dvc repro`")

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            for info in infos:
                if info.compress_type != zipfile.ZIP_STORED or info.file_size > len(data):
                    raise bad(f"member {info.filename[:80]!r} is compressed or oversized")
            try:
                meta = json.loads(zf.read("meta.json"))
            except KeyError:
                raise bad("no meta.json") from None
            if not isinstance(meta, dict):
                raise bad(f"meta.json is a JSON {type(meta).__name__}, not an object")
            arrays: dict[str, Any] = {}
            for info in infos:
                if info.filename == "meta.json":
                    continue
                if not info.filename.endswith(".npy"):
                    raise bad(f"unexpected member {info.filename[:80]!r}")
                with zf.open(info) as f:
                    shape, fortran, dtype, expected = files.npy_header(f, info)
                    if dtype.hasobject or dtype.kind not in _DTYPE_KINDS or dtype.names:
                        raise bad(f"{info.filename[:80]} holds {dtype}, not numbers")
                    raw = bytearray(expected)  # writable, like np.load's arrays
                    if f.readinto(raw) != expected:
                        raise bad(f"{info.filename[:80]} is truncated")
                arrays[info.filename[: -len(".npy")]] = np.frombuffer(raw, dtype=dtype).reshape(
                    shape, order="F" if fortran else "C"
                )
    except BundleError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, RecursionError) as exc:
        raise bad(str(exc)[:200]) from None
    return meta, arrays


def _check_schema(schema: Any) -> None:
    if schema.task not in ("classification", "regression"):
        raise ValueError(f"task {str(schema.task)[:40]!r} is not classification or regression")
    for name in ("numeric", "categorical"):
        value = getattr(schema, name)
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            raise ValueError(f"schema.{name} is not a list of column names")
    if schema.task == "classification" and not isinstance(schema.classes, list):
        raise ValueError("schema.classes is not a list")


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
