"""Verdict functions on hand-made counts: each threshold on both sides, metrics against
scikit-learn, and the report assembled from an accumulator."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.stats import chisquare
from sklearn.metrics import f1_score, root_mean_squared_error

from modelops import params
from modelops.monitoring import Accumulator, Chunk, FeatureDrift, KSCounter, verdict

P = params.validate({}).monitor  # psi 0.1 / 0.25, ks 0.01 & 0.1, missing +0.1, unseen 5%


def feature(**kw) -> FeatureDrift:
    base = {"name": "x", "kind": "numeric", "psi": 0.0, "missing_rate": 0.0}
    return FeatureDrift(**{**base, "reference_missing_rate": 0.0, **kw})


@pytest.mark.parametrize(
    ("psi", "status"),
    [(0.0, "ok"), (0.099, "ok"), (0.1, "warn"), (0.2499, "warn"), (0.25, "alert")],
)
def test_psi_thresholds(psi, status):
    judged = verdict.judge(feature(psi=psi), 100, P)
    assert judged.status == status
    assert judged.why == ([] if status == "ok" else [f"PSI {psi:.3f}"])


def test_missing_rate_increase_alerts_only_beyond_the_threshold():
    assert verdict.judge(feature(missing_rate=0.15, reference_missing_rate=0.05), 10, P).status == (
        "ok"
    )
    judged = verdict.judge(feature(missing_rate=0.3, reference_missing_rate=0.05), 10, P)
    assert judged.status == "alert" and judged.why == ["missing 30.0% vs 5.0% in training"]


def test_unseen_categories_warn_then_alert_by_their_share_of_rows():
    few = verdict.judge(feature(kind="categorical", unseen={"new": 5}), 100, P)
    assert few.status == "warn" and few.why == ["1 unseen category (5.0% of rows)"]
    many = verdict.judge(feature(kind="categorical", unseen={"n1": 4, "n2": 3}), 100, P)
    assert many.status == "alert" and many.why == ["2 unseen categories (7.0% of rows)"]


@pytest.mark.parametrize(
    ("stat", "pvalue", "status"),
    [(0.2, 0.001, "warn"), (0.05, 0.001, "ok"), (0.2, 0.5, "ok"), (math.nan, math.nan, "ok")],
)
def test_ks_warns_only_when_significant_and_large(stat, pvalue, status):
    judged = verdict.judge(feature(ks_statistic=stat, ks_pvalue=pvalue), 100, P)
    assert judged.status == status


def test_judge_returns_a_new_record():
    f = feature(psi=0.3)
    judged = verdict.judge(f, 100, P)
    assert f.status == "ok" and f.why == [] and judged.status == "alert"


def test_categorical_drift_puts_unseen_values_in_one_extra_bin():
    meta = {"freq": {"a": 60, "b": 40}, "missing_rate": 0.0}
    f = verdict.categorical_drift("c", meta, {"b": 30, "new": 10, "a": 60}, 20, 120)
    assert f.unseen == {"new": 10} and f.missing_rate == pytest.approx(20 / 120)
    e = np.array([0.6, 0.4, 1e-4])  # the empty bin is floored at EPS
    a = np.array([60, 30, 10]) / 100
    assert f.psi == pytest.approx(float(np.sum((a - e) * np.log(a / e))))
    expected = e / e.sum() * 100
    assert f.chi2_pvalue == pytest.approx(chisquare([60, 30, 10], expected).pvalue)
    empty = verdict.categorical_drift("c", meta, {}, 5, 5)
    assert empty.chi2_pvalue is None and empty.psi == pytest.approx(
        float(np.sum((1e-4 - e) * np.log(1e-4 / e)))
    )


def test_prediction_drift_of_classes_and_of_scores():
    classes = verdict.prediction_drift({"kind": "class", "freq": [50, 50]}, np.array([50, 50]), P)
    assert classes == {"kind": "class", "psi": 0.0, "status": "ok"}
    scores = verdict.prediction_drift({"kind": "score", "counts": [10, 90]}, np.array([90, 10]), P)
    assert scores["kind"] == "score" and scores["status"] == "alert" and scores["psi"] > 1


def test_performance_against_scikit_learn_and_the_direction_of_the_drop():
    y = np.array([0, 1, 1, 0, 1, 1])
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.4, 0.6], [0.1, 0.9], [0.2, 0.8]])
    perf = verdict.performance("classification", 1, y, proba, {"f1": 0.95}, P)
    f1 = f1_score(y, proba.argmax(axis=1))
    assert perf["metric"] == "f1" and perf["batch"] == pytest.approx(f1)
    assert perf["drop"] == pytest.approx(0.95 - f1) and perf["status"] == "alert"
    assert perf["labelled_rows"] == 6

    yr, pred = np.array([1.0, 2.0, 3.0]), np.array([1.5, 2.0, 2.0])
    rmse = root_mean_squared_error(yr, pred)
    lower = params.validate({"monitor": {"metric": "rmse", "max_metric_drop": 0.1}}).monitor
    worse = verdict.performance("regression", None, yr, pred, {"rmse": rmse - 0.2}, lower)
    assert worse["drop"] == pytest.approx(0.2) and worse["status"] == "alert"
    better = verdict.performance("regression", None, yr, pred, {"rmse": rmse + 0.2}, lower)
    assert better["drop"] == pytest.approx(-0.2) and better["status"] == "ok"
    auto = verdict.performance("regression", None, yr, pred, {}, P)  # auto: r2 for regression
    assert auto["metric"] == "r2" and auto["reference"] is None and auto["drop"] is None
    f1 = params.validate({"monitor": {"metric": "f1"}}).monitor  # not a regression metric
    unknown = verdict.performance("regression", None, yr, pred, {}, f1)
    assert unknown["metric"] == "mae" and unknown["reference"] is None and unknown["drop"] is None


def test_a_metric_the_batch_cannot_define_is_null_and_a_warning_not_nan():
    """R² of one labelled row is NaN: the monitor stage's drift.json could not be written
    (a traceback) and the CLI said "r2 fell from 0.88 to nan" (an alert)."""
    import json

    perf = verdict.performance(
        "regression", None, np.array([3.0]), np.array([2.5]), {"r2": 0.88}, P
    )
    assert perf["batch"] is None and perf["drop"] is None and perf["status"] == "warn"
    assert perf["metrics"]["r2"] is None and perf["metrics"]["mae"] == 0.5
    json.dumps(perf, allow_nan=False)  # strict JSON: raises on a NaN
    quiet = {"kind": "value", "psi": 0.0, "status": "ok"}
    assert verdict.recommendation([feature(name="a", status="ok")], quiet, perf) == (
        "warn",
        "watch: r2 is not defined on the batch's 1 labelled row(s)",
    )


def test_recommendation_says_what_to_do():
    ok, warn, alert = (
        feature(name=n, status=s) for n, s in [("a", "ok"), ("b", "warn"), ("c", "alert")]
    )
    quiet = {"kind": "class", "psi": 0.0, "status": "ok"}
    assert verdict.recommendation([ok], quiet, None) == (
        "ok",
        "no action needed: the batch looks like the training data",
    )
    assert verdict.recommendation([ok, warn], quiet, None) == (
        "warn",
        "watch: 1 feature(s) moved (b)",
    )
    moved = {"kind": "class", "psi": 0.3, "status": "alert"}
    perf = {"metric": "f1", "reference": 0.9, "batch": 0.5, "status": "alert"}
    assert verdict.recommendation([warn, alert], moved, perf) == (
        "alert",
        "retrain: 1 feature drifted (c), prediction PSI 0.300, f1 fell from 0.90 to 0.50",
    )


def test_report_from_an_accumulator():
    profile = {
        "numeric": {"x": {"counts": [5, 5], "missing_rate": 0.0}},
        "categorical": {"c": {"freq": {"a": 10}, "missing_rate": 0.0}},
        "prediction": {"kind": "class", "freq": [5, 5]},
    }
    acc = Accumulator(
        edges={"x": np.array([0.0])},
        ks={"x": KSCounter(np.array([-1.0, 1.0]))},
        categorical=["c"],
        prediction_edges=None,
        n_classes=2,
    )
    cats = np.array(["a", "a", "new", None], dtype=object)
    acc.add(
        Chunk(4, {"x": np.array([-1.0, 1.0, 2.0, np.nan])}, {"c": cats}, np.array([0, 1, 0, 1]))
    )
    schema = SimpleNamespace(task="classification", classes=["n", "y"], positive_class="y")
    report = verdict.report(acc, profile, schema, P, {}, "b.csv", ["id"])
    assert list(report) == [
        "batch", "rows", "ignored_columns", "verdict", "recommendation", "causes",
        "features", "prediction", "performance", "thresholds",
    ]  # fmt: skip
    x, c = report["features"]
    assert x["missing_rate"] == 0.25 and x["status"] == "alert"  # 25% missing vs 0%
    assert c["unseen"] == {"new": 1} and c["status"] == "alert"  # 25% of rows unseen
    assert report["causes"] == ["x", "c"] and report["verdict"] == "alert"
    assert report["performance"] is None and report["prediction"]["psi"] == 0.0
    assert report["thresholds"] == P.model_dump()
