"""The scikit-learn allow-list: canonical skops bytes, trusted types fixed in code."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from sklearn.datasets import make_classification, make_regression

from modelops import bundle, params
from modelops.data import Schema
from modelops.errors import BundleError
from modelops.features import Preprocessor
from modelops.files import md5_bytes
from modelops.models import sklearn_estimators as ske


@pytest.mark.parametrize(("name", "task"), [(n, t) for n, ts in ske.ESTIMATORS.items() for t in ts])
def test_every_allowed_estimator_round_trips_with_its_fixed_trust_list(name, task):
    if task == "classification":
        X, y = make_classification(120, 4, random_state=0)
    else:
        X, y = make_regression(120, 4, random_state=0)
    p = params.validate(
        {
            "train": {
                "model": name,
                "random_forest": {"n_estimators": 5},
                "hist_gradient_boosting": {"max_iter": 5},
            },
            "data": {"task": task},
        }
    )
    est = ske.build(name, task, p.train).fit(X, y)
    first = ske.dumps(est)
    assert first == ske.dumps(ske.build(name, task, p.train).fit(X, y))  # same fit, same bytes
    # the fixed list covers exactly what skops reports as untrusted
    assert sorted(sio.get_untrusted_types(data=first)) == sorted(ske.TRUSTED[name])
    again = ske.loads(name, first, task)
    np.testing.assert_allclose(again.predict(X), est.predict(X), rtol=1e-12)


def test_a_file_with_types_outside_the_list_is_refused():
    X, y = make_classification(60, 4, random_state=0)
    p = params.validate({"train": {"model": "random_forest", "random_forest": {"n_estimators": 2}}})
    blob = ske.dumps(ske.build("random_forest", "classification", p.train).fit(X, y))
    # a bundle claiming to be a logistic regression may not smuggle in tree types
    with pytest.raises(
        BundleError, match=r"a sklearn_logistic_regression estimator may not contain .*RandomForest"
    ):
        ske.loads("sklearn_logistic_regression", blob, "classification")
    with pytest.raises(BundleError, match="not on the allow-list"):
        ske.loads("gradient_boosting", blob, "classification")


def test_multiclass_boosting_needs_only_its_listed_parts():
    """The multinomial loss and link are the parts a 3-class boosting model names."""
    X, y = make_classification(90, 4, n_informative=3, n_redundant=0, n_classes=3, random_state=0)
    p = params.validate({"train": {"model": "hist_gradient_boosting"}})
    est = ske.build("hist_gradient_boosting", "classification", p.train).set_params(max_iter=3)
    blob = ske.dumps(est.fit(X, y))
    np.testing.assert_array_equal(
        ske.loads("hist_gradient_boosting", blob, "classification").predict(X), est.predict(X)
    )


def crafted_bundle(tmp_path, kind: str, task: str, foreign) -> tuple[Path, str]:
    """A bundle as `modelops train` writes it for ``kind``, whose skops blob is then replaced
    by ``foreign`` (fitted on the same inputs), its md5 recomputed: a registered version
    built by someone else, whose bytes match their record."""
    import pandas as pd

    if task == "classification":
        X, y = make_classification(80, 3, n_informative=2, n_redundant=0, random_state=0)
    else:
        X, y = make_regression(80, 3, random_state=0)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    schema = Schema(
        task=task,
        target="y",
        numeric=["a", "b", "c"],
        categorical=[],
        dropped={},
        classes=[0, 1] if task == "classification" else None,
        positive_class=1 if task == "classification" else None,
        source={},
    )
    pre = Preprocessor(schema.numeric, []).fit(frame)
    p = params.validate({"train": {"model": kind, "random_forest": {"n_estimators": 2}}})
    honest = ske.SklearnModel(kind, ske.build(kind, task, p.train)).fit(pre.transform(frame), y)
    raw = bundle.Model(schema, pre, honest, info={}).to_bytes()
    blob = ske.dumps(foreign.fit(pre.transform(frame), y))
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            if item.filename == "model_skops.npy":
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.frombuffer(blob, dtype=np.uint8))
                dst.writestr(item, buf.getvalue())
            else:
                dst.writestr(item, src.read(item))
    path = tmp_path / "model.npz"
    path.write_bytes(out.getvalue())
    return path, md5_bytes(out.getvalue())


def _pipeline():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    return make_pipeline(FunctionTransformer(np.negative), LogisticRegression())


def _dummy():
    from sklearn.dummy import DummyClassifier

    return DummyClassifier()


def _knn():
    from sklearn.neighbors import KNeighborsClassifier

    return KNeighborsClassifier(3)


def _tree():
    from sklearn.tree import DecisionTreeClassifier

    return DecisionTreeClassifier(random_state=0)


def _forest_regressor():
    from sklearn.ensemble import RandomForestRegressor

    return RandomForestRegressor(2, random_state=0)


@pytest.mark.parametrize(
    ("kind", "foreign", "names"),
    [
        ("random_forest", _dummy, "sklearn.dummy.DummyClassifier"),
        ("random_forest", _knn, "KNeighborsClassifier"),
        ("sklearn_logistic_regression", _pipeline, "FunctionTransformer"),
        ("sklearn_logistic_regression", _knn, "KNeighborsClassifier"),
        # the right family for the other task: its class is not this task's
        ("random_forest", _forest_regressor, "RandomForestRegressor"),
    ],
)
def test_a_bundle_holding_another_estimator_is_refused_before_it_is_built(
    tmp_path, monkeypatch, kind, foreign, names
):
    """skops trusts every scikit-learn estimator by default; the allow-list must not: these
    bundles loaded and were served as random_forest or sklearn_logistic_regression."""
    path, md5 = crafted_bundle(tmp_path, kind, "classification", foreign())
    built = []
    real = sio.loads
    monkeypatch.setattr(sio, "loads", lambda *a, **k: built.append(1) or real(*a, **k))
    with pytest.raises(BundleError) as info:
        bundle.load(path, expected_md5=md5)
    msg = str(info.value)
    assert f"a {kind} estimator may not contain" in msg and names in msg
    assert "\n" not in msg
    assert built == []  # refused from the schema, before skops constructed anything


def test_a_part_of_the_estimator_in_its_place_is_refused_after_loading(tmp_path):
    """A single tree names only types a forest contains; the exact class check catches it."""
    path, md5 = crafted_bundle(tmp_path, "random_forest", "classification", _tree())
    with pytest.raises(
        BundleError,
        match=r"is a sklearn.tree._classes.DecisionTreeClassifier, "
        r"not sklearn.ensemble._forest.RandomForestClassifier",
    ):
        bundle.load(path, expected_md5=md5)


def test_an_honest_crafted_bundle_loads(tmp_path):
    """The same construction with the estimator the kind names loads (the tests above fail
    for the estimator, not for the construction)."""
    from sklearn.ensemble import RandomForestClassifier

    path, md5 = crafted_bundle(
        tmp_path, "random_forest", "classification", RandomForestClassifier(2, random_state=0)
    )
    assert type(bundle.load(path, expected_md5=md5).estimator.estimator) is RandomForestClassifier


def test_a_skops_zip_bomb_is_refused_before_it_is_inflated():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("schema.json", b" " * (32 * 2**20) + b"{}")  # 32 MiB in about 32 KiB
    with pytest.raises(BundleError, match="the ridge estimator's file inflates too far"):
        ske.loads("ridge", out.getvalue(), "regression")


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_a_kind_for_a_task_it_cannot_do_is_refused(task):
    other = "regression" if task == "classification" else "classification"
    kind = {"classification": "ridge", "regression": "sklearn_logistic_regression"}[task]
    with pytest.raises(BundleError, match=rf"a {kind} estimator cannot do {task}"):
        ske.loads(kind, b"", task)
    assert other in ske.ESTIMATORS[kind]


def test_an_array_header_inside_the_skops_file_claiming_10_to_the_13_is_refused():
    """numpy allocates what a header claims before reading; skops reads its arrays with it."""
    X, y = make_regression(40, 3, random_state=0)
    p = params.validate({"data": {"source": "diabetes"}, "train": {"model": "ridge"}})
    blob = ske.dumps(ske.build("ridge", "regression", p.train).fit(X, y))
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (10**13,)}
    )
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(blob)) as src, zipfile.ZipFile(out, "w") as dst:
        npy = sorted(n for n in src.namelist() if n.endswith(".npy"))
        for item in src.infolist():
            payload = src.read(item)
            dst.writestr(
                item, header.getvalue() + bytes(24) if item.filename == npy[0] else payload
            )
    with pytest.raises(BundleError, match=r"the ridge estimator is malformed \(.*claims shape"):
        ske.loads("ridge", out.getvalue(), "regression")
