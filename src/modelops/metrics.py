"""Metrics and curves in numpy alone, the same numbers scikit-learn gives.

The stages that score a model (train, evaluate, the monitor) would otherwise import
``sklearn.metrics`` and with it scipy, which costs more than the rest of a small stage
together. Each function follows the computation of the scikit-learn function it names
(scikit-learn 1.9, ``sklearn/metrics/_classification.py``, ``_ranking.py`` and
``_regression.py``): the same sorting, cumulative sums, divisions and averages in the same
order, so the results are the same floats, which ``tests/test_metrics.py`` checks against
scikit-learn itself on many inputs. Labels are class indices ``0..k-1``. Regression values
are taken as float64 (scikit-learn would reduce float32 inputs in float32); probabilities
keep their precision, as scikit-learn's do. NaN or infinite predictions are the caller's to
refuse (the evaluate stage does) before they reach these functions."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den``, and 0 where ``den`` is 0 (scikit-learn's ``zero_division=0``)."""
    import numpy as np

    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    mask = den == 0
    out = num / np.where(mask, 1.0, den)
    out[mask] = 0.0
    return out


def confusion_matrix(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """Counts of (actual, predicted) pairs: rows actual, columns predicted."""
    import numpy as np

    y, pred = np.asarray(y, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    return np.bincount(y * k + pred, minlength=k * k).reshape(k, k)


def precision_recall_f1(
    y: np.ndarray, pred: np.ndarray, k: int, positive: int | None
) -> tuple[float, float, float]:
    """Precision, recall and F1 of class ``positive`` (binary), or their macro averages over
    the ``k`` classes (``positive`` None); 0 where a denominator is 0."""
    import numpy as np

    cm = confusion_matrix(y, pred, k)
    tp = np.diag(cm)
    pred_sum, true_sum = cm.sum(axis=0), cm.sum(axis=1)
    precision = _divide(tp, pred_sum)
    recall = _divide(tp, true_sum)
    f1 = _divide(2.0 * tp.astype(np.float64), 1.0 * true_sum + pred_sum)
    if positive is not None:
        return float(precision[positive]), float(recall[positive]), float(f1[positive])
    return float(np.average(precision)), float(np.average(recall)), float(np.average(f1))


def log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    """Mean negative log-likelihood of the true class, probabilities clipped to [eps, 1-eps]."""
    import numpy as np

    proba = np.asarray(proba)
    if proba.dtype.kind != "f":
        proba = proba.astype(np.float64)
    eps = np.finfo(proba.dtype).eps
    clipped = np.clip(proba, eps, 1 - eps)
    loss = -np.log(clipped[np.arange(len(clipped)), np.asarray(y, dtype=np.int64)])
    return float(np.average(loss))


def _clf_curve(truth: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, ...]:
    """False and true positives at each distinct score, highest first, and those scores."""
    import numpy as np

    # Highest score first; the order among equal scores does not matter, since only the
    # counts at the end of each run of equal scores are kept (integers, summed exactly).
    order = np.argsort(-scores, kind="stable")
    scores, truth = scores[order], truth[order].astype(np.float64)
    idx = np.r_[np.nonzero(np.diff(scores))[0], truth.size - 1]
    tps = np.cumsum(truth, dtype=np.float64)[idx]
    fps = 1 + idx.astype(np.float64) - tps
    return fps, tps, scores[idx]


def roc_curve(truth: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, ...]:
    """(fpr, tpr, thresholds) with collinear points dropped and a first point at
    threshold +inf; ``truth`` is 1 for the positive class."""
    import numpy as np

    fps, tps, thresholds = _clf_curve(np.asarray(truth), np.asarray(scores))
    if fps.shape[0] > 2:
        keep = np.where(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])[0]
        fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    thresholds = np.r_[np.inf, thresholds.astype(np.float64)]
    fpr = fps / fps[-1] if fps[-1] > 0 else np.full(fps.shape, np.nan)
    tpr = tps / tps[-1] if tps[-1] > 0 else np.full(tps.shape, np.nan)
    return fpr, tpr, thresholds


def precision_recall_curve(truth: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, ...]:
    """(precision, recall, thresholds), recall decreasing, ending at (precision 1, recall 0)."""
    import numpy as np

    fps, tps, thresholds = _clf_curve(np.asarray(truth), np.asarray(scores))
    ps = tps + fps
    precision = np.where(ps != 0, np.divide(tps, ps, where=ps != 0, out=np.zeros_like(tps)), 0.0)
    recall = np.full(tps.shape, 1.0) if tps[-1] == 0 else tps / tps[-1]
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0], thresholds[::-1]


def _binary_auc(truth: np.ndarray, scores: np.ndarray) -> float:
    import numpy as np

    if len(np.unique(truth)) != 2:
        return float("nan")  # one class only: undefined
    fpr, tpr, _ = roc_curve(truth, scores)
    return float(np.trapezoid(tpr, fpr))


def roc_auc(y: np.ndarray, proba: np.ndarray, positive: int | None) -> float:
    """Area under the ROC curve of class ``positive`` (binary), or the macro average of
    one-vs-rest areas over every class (``positive`` None)."""
    import numpy as np

    y = np.asarray(y)
    if positive is not None:
        return _binary_auc((y == positive).astype(np.int32), proba[:, positive])
    areas = [_binary_auc((y == c).astype(np.int32), proba[:, c]) for c in range(proba.shape[1])]
    return float(np.average(areas))


def _column(v: np.ndarray) -> np.ndarray:
    import numpy as np

    # scikit-learn reduces a one-output target as an (n, 1) column, along axis 0
    return np.asarray(v, dtype=np.float64).reshape(len(v), -1)


def mean_absolute_error(y: np.ndarray, pred: np.ndarray) -> float:
    import numpy as np

    return float(np.average(np.average(np.abs(_column(pred) - _column(y)), axis=0)))


def root_mean_squared_error(y: np.ndarray, pred: np.ndarray) -> float:
    import numpy as np

    mse = np.average((_column(y) - _column(pred)) ** 2, axis=0)
    return float(np.average(np.sqrt(mse)))


def r2(y: np.ndarray, pred: np.ndarray) -> float:
    """1 - residual sum of squares / total sum of squares (1.0 for a perfect fit of a
    constant target, 0.0 for an imperfect one, NaN for fewer than two rows, as scikit-learn)."""
    import numpy as np

    if len(y) < 2:
        return float("nan")
    yc, pc = _column(y), _column(pred)
    num = np.sum((yc - pc) ** 2, axis=0)
    den = np.sum((yc - np.average(yc, axis=0)) ** 2, axis=0)
    if den[0] != 0:
        return float(np.average(1 - num / den))
    return 1.0 if num[0] == 0 else 0.0
