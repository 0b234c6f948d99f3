"""Bundles: deterministic bytes, no pickle, md5 checked before parsing."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from modelops import bundle, data, models, params
from modelops.errors import BundleError
from modelops.features import Preprocessor
from modelops.files import md5_bytes


def fitted(model="logistic_regression", **train):
    p = params.validate({"train": {"model": model, "epochs": 50, **train}})
    tr, te, schema = data.prepare(p.data, p.split)
    pre = Preprocessor(schema.numeric, schema.categorical).fit(tr)
    est = models.build(p.train, schema.task).fit(
        pre.transform(tr), schema.encode_labels(tr[schema.target])
    )
    return bundle.Model(schema, pre, est, info={"params": {}}), te


@pytest.mark.parametrize("model", ["logistic_regression", "hist_gradient_boosting"])
def test_round_trip_predicts_the_same(tmp_path, model):
    m, test = fitted(model)
    data_ = bundle.save(tmp_path / "m.npz", m)
    again = bundle.load(tmp_path / "m.npz", expected_md5=md5_bytes(data_))
    np.testing.assert_array_equal(again.predict_proba(test), m.predict_proba(test))
    assert set(again.predict(test)) <= {"benign", "malignant"}


def test_same_model_same_bytes():
    assert fitted()[0].to_bytes() == fitted()[0].to_bytes()


def test_md5_mismatch_is_refused_before_parsing(tmp_path):
    m, _ = fitted()
    path = tmp_path / "m.npz"
    bundle.save(path, m)
    with pytest.raises(BundleError, match=r"does not match 0+ recorded in dvc.lock"):
        bundle.load(path, expected_md5="0" * 32)


def test_object_arrays_are_never_unpickled(tmp_path):
    m, _ = fitted()
    raw = m.to_bytes()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            if item.filename != "model_coef.npy":
                dst.writestr(item, src.read(item))
        buf = io.BytesIO()
        np.save(buf, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
        dst.writestr("model_coef.npy", buf.getvalue())
    with pytest.raises(BundleError, match=r"not a modelops bundle"):
        bundle.Model.from_bytes(out.getvalue())


def test_garbage_and_missing_files(tmp_path):
    with pytest.raises(BundleError, match=r"not a modelops bundle"):
        bundle.Model.from_bytes(b"not a zip")
    with pytest.raises(BundleError, match=r"no model bundle here"):
        bundle.load(tmp_path / "missing.npz")


def test_lock_md5_reads_the_outs():
    lock = (
        "schema: '2.0'\nstages:\n  train:\n    outs:\n    - path: models/model.npz\n"
        "      md5: abc\n"
    )
    assert bundle.lock_md5(lock, "models/model.npz") == "abc"
    assert bundle.lock_md5(lock, "models/other.npz") is None
