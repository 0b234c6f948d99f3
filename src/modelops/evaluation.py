"""Metrics, plot data, explanations and the model card.

Metrics come from ``modelops.metrics`` (numpy; the numbers scikit-learn gives). Plot data
is written as lists of records that ``dvc plots show`` renders with the templates declared
in dvc.yaml. Everything here is deterministic: same model and data, same bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from modelops.bundle import Model
    from modelops.params import EvaluateParams

# Plot files that hold one record per test row are capped (a seeded sample)
# so metrics/ stays small enough for git; the exact matrix is in the card.
MAX_ROW_RECORDS = 20_000
# Every plot file dvc.yaml declares; those that do not apply to the task hold [].
PLOTS = ("roc", "precision_recall", "confusion", "predicted_vs_actual", "importance")


def classification_metrics(y: np.ndarray, proba: np.ndarray, positive_index: int | None) -> dict:
    """Accuracy, precision, recall, F1, ROC AUC and log loss (binary: of the positive class;
    more classes: macro averages); ROC AUC only when every class is in ``y``."""
    import numpy as np

    from modelops import metrics as m

    k = proba.shape[1]
    pred = proba.argmax(axis=1)
    positive = positive_index if k == 2 else None
    if k == 2:
        assert positive_index is not None
    out: dict[str, float] = {"accuracy": float(np.average(y == pred))}
    if len(set(y.tolist())) == k:  # undefined unless every class is in the test split
        out["roc_auc"] = m.roc_auc(y, proba, positive)
    out["precision"], out["recall"], out["f1"] = m.precision_recall_f1(y, pred, k, positive)
    out["log_loss"] = m.log_loss(y, proba)
    return {key: float(out[key]) for key in sorted(out)}


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict:
    """RMSE, MAE and R²."""
    from modelops import metrics as m

    return {
        "mae": m.mean_absolute_error(y, pred),
        "r2": m.r2(y, pred),
        "rmse": m.root_mean_squared_error(y, pred),
    }


def _thin(n: int, points: int) -> np.ndarray:
    import numpy as np

    if n <= points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, points).round().astype(int))


def _finite(v: float) -> float | None:
    import math

    return float(v) if math.isfinite(v) else None


def _sample(n: int) -> np.ndarray:
    import numpy as np

    if n <= MAX_ROW_RECORDS:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, MAX_ROW_RECORDS, replace=False))


def classification_plots(
    y: np.ndarray, proba: np.ndarray, classes: list[Any], positive_index: int | None, points: int
) -> dict[str, list[dict]]:
    """ROC and precision-recall curves (binary) and confusion rows."""
    from modelops.metrics import precision_recall_curve, roc_curve

    plots: dict[str, list[dict]] = {}
    if proba.shape[1] == 2:
        scores = proba[:, positive_index]
        truth = (y == positive_index).astype(int)
        fpr, tpr, thr = roc_curve(truth, scores)
        plots["roc"] = [
            {"fpr": float(fpr[i]), "tpr": float(tpr[i]), "threshold": _finite(thr[i])}
            for i in _thin(len(fpr), points)
        ]
        prec, rec, thr = precision_recall_curve(truth, scores)
        plots["precision_recall"] = [
            {
                "recall": float(rec[i]),
                "precision": float(prec[i]),
                "threshold": _finite(thr[i]) if i < len(thr) else None,
            }
            for i in _thin(len(prec), points)
        ]
    pred = proba.argmax(axis=1)
    names = [str(c) for c in classes]
    plots["confusion"] = [
        {"actual": names[y[i]], "predicted": names[pred[i]]} for i in _sample(len(y))
    ]
    return plots


def confusion_matrix(y: np.ndarray, proba: np.ndarray, classes: list[Any]) -> dict[str, Any]:
    from modelops.metrics import confusion_matrix as cm

    matrix = cm(y, proba.argmax(axis=1), len(classes))
    return {"labels": [str(c) for c in classes], "rows_actual_columns_predicted": matrix.tolist()}


def regression_plots(y: np.ndarray, pred: np.ndarray) -> dict[str, list[dict]]:
    return {
        "predicted_vs_actual": [
            {"actual": float(y[i]), "predicted": float(pred[i])} for i in _sample(len(y))
        ]
    }


def importance(
    model: Model, X: np.ndarray, y: np.ndarray, p: EvaluateParams
) -> tuple[str, list[dict]]:
    """(method, [{feature, importance}] sorted by importance): coefficients or permutation."""
    import numpy as np

    from modelops.errors import ParamsError

    names = model.preprocessor.feature_names_out
    coefs = model.estimator.importance()
    method = p.importance
    if method == "auto":
        method = "coefficients" if coefs is not None else "permutation"
    if method == "coefficients":
        if coefs is None:
            raise ParamsError(
                f"evaluate.importance: {model.estimator.kind} has no coefficients; "
                f"use permutation or auto"
            )
        values = np.asarray(coefs, dtype=float)
    else:
        rows = np.sort(np.random.default_rng(0).permutation(len(X))[: p.importance_max_rows])
        task = model.schema.task

        from sklearn.inspection import permutation_importance

        def score(est: Any, Xs: np.ndarray, ys: np.ndarray) -> float:
            if task == "regression":
                return -float(np.mean((est.predict(Xs) - ys) ** 2))
            return float(np.mean(est.predict_proba(Xs).argmax(axis=1) == ys))

        res = permutation_importance(
            model.estimator,
            X[rows],
            y[rows],
            scoring=score,
            n_repeats=p.permutation_repeats,
            random_state=0,
        )
        values = res.importances_mean
    order = sorted(range(len(names)), key=lambda i: (-values[i], names[i]))
    return method, [{"feature": names[i], "importance": float(values[i])} for i in order]


def build_card(model: Model, *, model_file: dict[str, Any], metrics: dict, extra: dict) -> dict:
    """The model card: what was trained, on what, how well, with which libraries."""
    s = model.schema
    return {
        "model": {"kind": model.estimator.kind, "task": s.task, **model_file},
        "params": model.info["params"],
        "data": {
            "source": s.source,
            "target": s.target,
            "classes": s.classes,
            "positive_class": s.positive_class,
            "rows": s.rows,
            "train_md5": model.info["train_md5"],
        },
        "features": {
            "numeric": s.numeric,
            "categorical": dict(zip(s.categorical, model.preprocessor.categories_, strict=True)),
            "dropped": s.dropped,
        },
        "training": model.info["fit"],
        "metrics": metrics,
        **extra,
        "versions": model.info["versions"],
        "lineage": (
            "The git commit, author and time of a version are recorded by "
            "`modelops register` in its tag; this file holds only what the run "
            "determines, so reproducing it gives the same bytes."
        ),
    }


def card_markdown(card: dict) -> str:
    """A human-readable rendering of the card."""
    m, d = card["model"], card["data"]
    lines = [
        f"# Model card: {m['kind']} ({m['task']})",
        "",
        f"- **Model file**: `{m['path']}` md5 `{m['md5']}`, sha256 `{m['sha256']}`, "
        f"{m['bytes']} bytes",
        f"- **Data**: {d['source'].get('path') or d['source']['kind']}, target `{d['target']}`, "
        f"{d['rows'].get('train')} train / {d['rows'].get('test')} test rows, "
        f"train md5 `{d['train_md5']}`",
    ]
    if d["classes"] is not None:
        lines.append(
            f"- **Classes**: {', '.join(map(str, d['classes']))}"
            + (f" (positive: {d['positive_class']})" if d["positive_class"] is not None else "")
        )
    lines += ["", "## Metrics (test split)", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.6g} |" for k, v in card["metrics"].items()]
    f = card["features"]
    lines += ["", "## Features", ""]
    lines.append(f"- numeric ({len(f['numeric'])}): {', '.join(f['numeric']) or 'none'}")
    for col, cats in f["categorical"].items():
        lines.append(f"- categorical `{col}`: {', '.join(cats)}")
    for col, why in f["dropped"].items():
        lines.append(f"- dropped `{col}`: {why}")
    if card.get("importance"):
        lines += ["", f"## Most important features ({card['importance_method']})", ""]
        lines += [f"1. `{r['feature']}`: {r['importance']:.4g}" for r in card["importance"][:10]]
    lines += ["", "## Parameters", "", "```json"]
    import json

    lines += [json.dumps(card["params"], indent=2), "```", "", "## Versions", ""]
    lines += [f"- {k} {v}" for k, v in card["versions"].items()]
    lines += ["", f"_{card['lineage']}_", ""]
    return "\n".join(lines)
