"""modelops.metrics against scikit-learn itself: the same floats, bit for bit, on inputs with
ties, absent classes, one predicted class, float32 probabilities and constant targets."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from modelops import evaluation, metrics


def probabilities(rng: np.random.Generator, n: int, k: int, ties: bool, dtype) -> np.ndarray:
    z = rng.normal(size=(n, k)) * 2
    if ties:  # few distinct scores: many thresholds shared
        z = np.round(z, 0)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return p.astype(dtype)


CASES = [
    # (n, k, ties, dtype, labels drawn from)
    (50, 2, False, np.float64, None),
    (200, 2, True, np.float64, None),
    (7, 2, True, np.float32, None),
    (300, 3, False, np.float64, None),
    (120, 4, True, np.float32, None),
    (90, 5, False, np.float64, [0, 1, 3]),  # classes 2 and 4 absent from y
    (12, 2, False, np.float64, [1]),  # a test split holding one class: no ROC AUC
]


def _quiet():
    warnings.simplefilter("ignore")  # scikit-learn's warnings about ill-defined scores


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("n", "k", "ties", "dtype", "drawn"), CASES)
def test_classification_metrics_are_scikit_learns(seed, n, k, ties, dtype, drawn):
    rng = np.random.default_rng(seed)
    proba = probabilities(rng, n, k, ties, dtype)
    y = rng.choice(drawn or list(range(k)), n)
    if seed == 3:  # a model that predicts one class only: zero divisions
        proba = np.zeros_like(proba)
        proba[:, 0] = 1
    labels = list(range(k))
    pred = proba.argmax(axis=1)
    with warnings.catch_warnings():
        _quiet()
        auc_ref = None  # undefined unless every class is in y: not reported
        if k == 2:
            pos = int(seed % 2)
            kw = {"pos_label": pos, "average": "binary", "zero_division": 0}
            if len(set(y.tolist())) == k:
                auc_ref = skm.roc_auc_score((y == pos).astype(int), proba[:, pos])
        else:
            pos = None
            kw = {"average": "macro", "labels": labels, "zero_division": 0}
            if len(set(y.tolist())) == k:
                auc_ref = skm.roc_auc_score(y, proba, multi_class="ovr", labels=labels)
        ref = {
            "accuracy": skm.accuracy_score(y, pred),
            "precision": skm.precision_score(y, pred, **kw),
            "recall": skm.recall_score(y, pred, **kw),
            "f1": skm.f1_score(y, pred, **kw),
            "log_loss": skm.log_loss(y, y_proba=proba, labels=labels),
        }
        got = evaluation.classification_metrics(y, proba, pos)
    if auc_ref is not None:
        ref["roc_auc"] = auc_ref
    assert got == {key: float(ref[key]) for key in sorted(ref)}
    assert (
        metrics.confusion_matrix(y, pred, k).tolist()
        == skm.confusion_matrix(y, pred, labels=labels).tolist()
    )


@pytest.mark.parametrize("seed", range(6))
def test_curves_are_scikit_learns(seed):
    rng = np.random.default_rng(seed)
    n = [2, 3, 40, 500, 1000, 64][seed]
    scores = rng.random(n)
    if seed % 2:
        scores = np.round(scores, 1)  # ties
    truth = rng.integers(0, 2, n)
    truth[0], truth[-1] = 0, 1  # both classes
    for mine, theirs in (
        (metrics.roc_curve, skm.roc_curve),
        (metrics.precision_recall_curve, skm.precision_recall_curve),
    ):
        got, ref = mine(truth, scores), theirs(truth, scores)
        assert len(got) == len(ref) == 3
        for a, b in zip(got, ref, strict=True):
            assert a.dtype == b.dtype and a.tolist() == b.tolist(), mine.__name__


def test_one_class_only_gives_an_undefined_auc_and_all_recall():
    """Curves of a test split without positives (scikit-learn warns; we return its values)."""
    truth, scores = np.zeros(5, dtype=int), np.linspace(0, 1, 5)
    with warnings.catch_warnings():
        _quiet()
        ref = skm.precision_recall_curve(truth, scores)
        ref_roc = skm.roc_curve(truth, scores)
    got = metrics.precision_recall_curve(truth, scores)
    assert [a.tolist() for a in got] == [a.tolist() for a in ref]
    got_roc = metrics.roc_curve(truth, scores)
    np.testing.assert_array_equal(got_roc[0], ref_roc[0])
    np.testing.assert_array_equal(got_roc[1], ref_roc[1])  # NaN where scikit-learn has NaN
    assert np.isnan(metrics.roc_auc(truth, np.column_stack([1 - scores, scores]), 1))


@pytest.mark.parametrize("seed", range(5))
def test_regression_metrics_are_scikit_learns(seed):
    rng = np.random.default_rng(seed)
    n = [2, 10, 333, 5000, 4][seed]
    y = rng.normal(size=n) * 100
    pred = y + rng.normal(size=n) * [0.1, 10, 50, 1, 0][seed]
    if seed == 4:  # a constant target: 1.0 for the exact fit, 0.0 otherwise
        y = np.full(n, 3.0)
        for p, want in ((y.copy(), 1.0), (y + 1, 0.0)):
            assert metrics.r2(y, p) == skm.r2_score(y, p) == want
        pred = y + 1
    got = evaluation.regression_metrics(y, pred)
    assert got == {
        "mae": float(skm.mean_absolute_error(y, pred)),
        "r2": float(skm.r2_score(y, pred)),
        "rmse": float(skm.root_mean_squared_error(y, pred)),
    }


def test_r2_of_one_row_is_undefined():
    with warnings.catch_warnings():
        _quiet()
        assert np.isnan(skm.r2_score([1.0], [2.0]))
    assert np.isnan(metrics.r2(np.array([1.0]), np.array([2.0])))
