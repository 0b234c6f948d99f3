"""The estimators: numpy linear/logistic regression and the scikit-learn allow-list.

Every model offers ``fit(X, y)``, ``predict(X)``, ``state()`` and
``from_state(meta, arrays)``; classifiers add ``predict_proba(X)`` with one
column per class index; ``loss_curve_`` holds the training loss per epoch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelops.errors import BundleError

if TYPE_CHECKING:
    import numpy as np

    from modelops.params import TrainParams


def build(params: TrainParams, task: str) -> Any:
    """An unfitted model for ``params.model`` and the task (``auto`` resolved for it; a
    model that cannot fit the task is a ParamsError)."""
    from modelops.models.gd import GDConfig
    from modelops.models.linear import LinearRegression, LogisticRegression
    from modelops.models.sklearn_estimators import SklearnModel
    from modelops.models.sklearn_estimators import build as build_sklearn

    params = params.for_task(task)
    gd = GDConfig(
        lr=params.lr,
        epochs=params.epochs,
        batch_size=params.batch_size,
        momentum=params.momentum,
        l2=params.l2,
        tol=params.tol,
        early_stopping=params.early_stopping,
        validation_fraction=params.validation_fraction,
        n_iter_no_change=params.n_iter_no_change,
        dtype=params.dtype,
        random_state=params.seed,
    )
    if params.model == "linear_regression":
        return LinearRegression(solver=params.solver, gd=gd)
    if params.model == "logistic_regression":
        return LogisticRegression(gd=gd)
    return SklearnModel(params.model, build_sklearn(params.model, task, params))


def input_dtype(params: TrainParams, task: str | None = None) -> str:
    """The precision the model trains in: ``train.dtype`` for gradient descent, else float64.
    The train stage builds the design matrix in it, so there is no float64 copy to convert.
    ``train.model: auto`` needs the task."""
    if task is not None:
        params = params.for_task(task)
    elif params.model == "auto":
        raise ValueError("input_dtype: train.model is auto; pass the task")
    gd = params.model == "logistic_regression" or (
        params.model == "linear_regression" and params.solver == "gd"
    )
    return params.dtype if gd else "float64"


def from_state(meta: dict[str, Any], arrays: dict[str, np.ndarray], task: str) -> Any:
    """Rebuild a fitted model for ``task`` from a bundle's metadata and arrays."""
    from modelops.models.linear import LinearRegression, LogisticRegression
    from modelops.models.sklearn_estimators import ESTIMATORS, SklearnModel

    kind = meta.get("kind")
    if kind == "linear_regression":
        return LinearRegression.from_state(meta, arrays)
    if kind == "logistic_regression":
        return LogisticRegression.from_state(meta, arrays)
    if kind in ESTIMATORS:
        return SklearnModel.from_state(meta, arrays, task)
    raise BundleError(f"bundle: unknown model kind {kind!r}; retrain with a supported train.model")
