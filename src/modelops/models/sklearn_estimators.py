"""The allow-list of scikit-learn estimators, saved and loaded with skops (never pickle).

The types skops must trust are fixed here, per estimator, and never read from
the file being loaded. skops' own output is not byte-stable (zip timestamps,
entry names and ``__id__`` fields come from ``id()``), so ``dumps`` rewrites it
canonically: same fitted estimator, same bytes, which keeps ``dvc repro``
reproducible.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import TYPE_CHECKING, Any

from modelops.errors import BundleError

if TYPE_CHECKING:
    import numpy as np

    from modelops.params import TrainParams

# name -> task -> (module, class)
ESTIMATORS: dict[str, dict[str, tuple[str, str]]] = {
    "sklearn_logistic_regression": {
        "classification": ("sklearn.linear_model", "LogisticRegression")
    },
    "ridge": {"regression": ("sklearn.linear_model", "Ridge")},
    "random_forest": {
        "classification": ("sklearn.ensemble", "RandomForestClassifier"),
        "regression": ("sklearn.ensemble", "RandomForestRegressor"),
    },
    "hist_gradient_boosting": {
        "classification": ("sklearn.ensemble", "HistGradientBoostingClassifier"),
        "regression": ("sklearn.ensemble", "HistGradientBoostingRegressor"),
    },
}
# Beyond skops' defaults, the only types each estimator's file may contain.
TRUSTED: dict[str, list[str]] = {
    "sklearn_logistic_regression": [],
    "ridge": [],
    "random_forest": ["sklearn.tree._tree.Tree"],
    "hist_gradient_boosting": ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"],
}
# skops trusts every scikit-learn estimator by default, and ``trusted`` only adds to its
# defaults, so it cannot say "nothing else". This list does: besides the estimator class of
# ESTIMATORS[name][task], the only scikit-learn types its file may name anywhere.
_HGB = "sklearn.ensemble._hist_gradient_boosting."
_TREE = "sklearn.tree._tree.Tree"
PARTS: dict[str, dict[str, list[str]]] = {
    "sklearn_logistic_regression": {"classification": []},
    "ridge": {"regression": []},
    "random_forest": {
        "classification": ["sklearn.tree._classes.DecisionTreeClassifier", _TREE],
        "regression": ["sklearn.tree._classes.DecisionTreeRegressor", _TREE],
    },
    "hist_gradient_boosting": {
        "classification": [
            _HGB + "binning._BinMapper",
            _HGB + "predictor.TreePredictor",
            "sklearn.preprocessing._label.LabelEncoder",
            "sklearn._loss.link.Interval",
            "sklearn._loss.link.LogitLink",
            "sklearn._loss.link.MultinomialLogit",
            "sklearn._loss.loss.HalfBinomialLoss",
            "sklearn._loss.loss.HalfMultinomialLoss",
            "sklearn._loss._loss.CyHalfBinomialLoss",
            "sklearn._loss._loss.CyHalfMultinomialLoss",
        ],
        "regression": [
            _HGB + "binning._BinMapper",
            _HGB + "predictor.TreePredictor",
            "sklearn._loss.link.Interval",
            "sklearn._loss.link.IdentityLink",
            "sklearn._loss.loss.HalfSquaredError",
            "sklearn._loss._loss.CyHalfSquaredError",
        ],
    },
}
# A skops file is a zip: refuse members that would inflate beyond this ratio (a zip bomb)
# before skops reads them. Real estimators compress far less.
_MAX_INFLATION = 64
_EPOCH = (1980, 1, 1, 0, 0, 0)


def build(name: str, task: str, params: TrainParams) -> Any:
    """An unfitted allow-listed estimator with its hyper-parameters from params."""
    import importlib

    module, cls = ESTIMATORS[name][task]
    kwargs = getattr(params, name).model_dump()
    if name == "sklearn_logistic_regression" or name in ("random_forest", "hist_gradient_boosting"):
        kwargs["random_state"] = params.seed
    if name == "random_forest":
        kwargs["n_jobs"] = -1  # trees are seeded, so results do not depend on threads
    return getattr(importlib.import_module(module), cls)(**kwargs)


def _canonical(node: Any, ids: dict[int, int], files: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "__id__" and isinstance(value, int):
                out[key] = ids.setdefault(value, len(ids))
            elif key == "file" and isinstance(value, str):
                out[key] = files.setdefault(value, f"{len(files):06d}.npy")
            else:
                out[key] = _canonical(value, ids, files)
        return out
    if isinstance(node, list):
        return [_canonical(v, ids, files) for v in node]
    return node


def dumps(estimator: Any) -> bytes:
    """skops bytes, rewritten so the same estimator always gives the same bytes."""
    import skops.io as sio

    src = zipfile.ZipFile(io.BytesIO(sio.dumps(estimator)))
    files: dict[str, str] = {}
    schema = _canonical(json.loads(src.read("schema.json")), {}, files)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        entries = [("schema.json", json.dumps(schema, indent=2).encode())]
        entries += sorted((new, _zero_padding(src.read(old))) for old, new in files.items())
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            dst.writestr(info, data)
    return out.getvalue()


def _zero_padding(npy: bytes) -> bytes:
    """An ``.npy`` member with the padding bytes of its records zeroed. scikit-learn's tree
    nodes are C structs (57 bytes of fields, 64 per record) copied from uninitialised memory,
    so without this the bytes of a forest depend on what the allocator handed back."""
    import numpy as np

    try:
        array = np.lib.format.read_array(io.BytesIO(npy), allow_pickle=False)
    except ValueError:  # object arrays: skops' own encoding, no padding to clean
        return npy
    fields = array.dtype.fields
    if not fields or sum(f[0].itemsize for f in fields.values()) == array.dtype.itemsize:
        return npy
    clean = np.zeros(array.shape, dtype=array.dtype)
    for name in array.dtype.names:
        clean[name] = array[name]
    out = io.BytesIO()
    np.lib.format.write_array(out, clean, allow_pickle=False)
    return out.getvalue()


def expected_class(name: str, task: str) -> str:
    """The one estimator class a bundle of kind ``name`` for ``task`` may hold."""
    if name not in ESTIMATORS or name not in TRUSTED:
        raise BundleError(f"bundle: estimator {name!r} is not on the allow-list; retrain it")
    if task not in ESTIMATORS[name]:
        raise BundleError(
            f"bundle: a {name} estimator cannot do {task} (the bundle's schema says so); "
            f"retrain it with `dvc repro`"
        )
    import importlib

    module, cls = ESTIMATORS[name][task]
    found = getattr(importlib.import_module(module), cls)  # its path as skops writes it
    return f"{found.__module__}.{found.__qualname__}"


def _sklearn_types(node: Any, out: set[str]) -> None:
    """Every scikit-learn type a skops schema names, anywhere (memoised nodes included)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            module, cls = item.get("__module__"), item.get("__class__")
            if isinstance(module, str) and (module == "sklearn" or module.startswith("sklearn.")):
                out.add(f"{module}.{cls}")
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _audit(name: str, task: str, data: bytes) -> None:
    """Refuse, before skops builds anything, a file naming a scikit-learn type that a
    ``name`` estimator for ``task`` does not contain."""
    from modelops.files import npy_header

    allowed = {expected_class(name, task), *PARTS[name][task]}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            if sum(i.file_size for i in zf.infolist()) > _MAX_INFLATION * len(data) + (1 << 20):
                raise BundleError(f"bundle: the {name} estimator's file inflates too far")
            schema = json.loads(zf.read("schema.json"))
            for info in zf.infolist():  # numpy allocates what a header claims: check first
                if info.filename.endswith(".npy"):
                    with zf.open(info) as f:
                        npy_header(f, info)
    except (zipfile.BadZipFile, KeyError, ValueError, RecursionError, OSError) as exc:
        raise BundleError(f"bundle: the {name} estimator is malformed ({str(exc)[:200]})") from None
    found: set[str] = set()
    _sklearn_types(schema, found)
    foreign = sorted(found - allowed)
    if foreign:
        raise BundleError(
            f"bundle: a {name} estimator may not contain {', '.join(foreign[:3])}"
            f"{' ...' if len(foreign) > 3 else ''}; the bundle was not made by `modelops train`"
        )


def loads(name: str, data: bytes, task: str) -> Any:
    """Load skops bytes as a ``name`` estimator for ``task``: only its own scikit-learn types
    (checked before anything is built), skops' trust list fixed here, the exact class after."""
    import skops.io as sio

    _audit(name, task, data)
    try:
        estimator = sio.loads(data, trusted=TRUSTED[name])
    except Exception as exc:  # skops raises UntrustedTypesFoundException, zip and JSON errors
        raise BundleError(f"bundle: cannot load the {name} estimator safely: {exc}") from None
    got = f"{type(estimator).__module__}.{type(estimator).__qualname__}"
    if got != expected_class(name, task):
        raise BundleError(
            f"bundle: the {name} estimator is a {got}, not {expected_class(name, task)}; "
            f"the bundle was not made by `modelops train`"
        )
    return estimator


class SklearnModel:
    """Adapter giving an allow-listed estimator the numpy models' interface."""

    def __init__(self, name: str, estimator: Any) -> None:
        self.kind = name
        self.estimator = estimator
        self.loss_curve_: list[float] = []
        self.validation_loss_curve_: list[float] = []

    def fit(self, X: np.ndarray, y: np.ndarray) -> SklearnModel:
        self.estimator.fit(X, y)
        if getattr(self.estimator, "n_jobs", None) is not None:
            # A forest sums its trees' probabilities in the order its threads finish, so
            # parallel predictions differ in the last bits from run to run; fitting is
            # seeded per tree and may stay parallel.
            self.estimator.set_params(n_jobs=None)
        # HistGradientBoosting records its training loss per iteration when it scores.
        scores = getattr(self.estimator, "train_score_", None)
        if scores is not None and len(scores):
            self.loss_curve_ = [float(-s) for s in scores]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.estimator.predict(X)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.estimator.predict_proba(X)

    def importance(self) -> np.ndarray | None:
        import numpy as np

        est = self.estimator
        if hasattr(est, "coef_"):
            c = np.abs(np.atleast_2d(est.coef_))
            return c.mean(axis=0)
        return None

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        import numpy as np

        blob = np.frombuffer(dumps(self.estimator), dtype=np.uint8)
        return {"kind": self.kind}, {"skops": blob}

    @classmethod
    def from_state(
        cls, meta: dict[str, Any], arrays: dict[str, np.ndarray], task: str
    ) -> SklearnModel:
        blob = arrays["skops"]
        if blob.dtype != "uint8" or blob.ndim != 1:
            raise BundleError(
                f"bundle: the {meta['kind']} estimator must be a 1-d uint8 array, "
                f"not {blob.dtype} {blob.shape}; retrain it"
            )
        return cls(meta["kind"], loads(meta["kind"], blob.tobytes(), task))
