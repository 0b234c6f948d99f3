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
from modelops.models.sklearn_estimators import ESTIMATORS
from tests.helpers import fitted_on, kinds, messy_csv


def fitted(model="logistic_regression", **train):
    p = params.validate({"train": {"model": model, "epochs": 50, **train}})
    tr, te, schema = data.prepare(p.data, p.split)
    pre = Preprocessor(schema.numeric, schema.categorical).fit(tr)
    est = models.build(p.train, schema.task).fit(
        pre.transform(tr), schema.encode_labels(tr[schema.target])
    )
    return bundle.Model(schema, pre, est, info={"params": {}}), te


@pytest.mark.parametrize(("model", "task", "train"), kinds())
def test_every_model_kind_round_trips_exactly(tmp_path, model, task, train):
    """Save, load (md5-checked), and get the same predictions bit for bit, every array back
    with its shape, and the same bytes when saved again (for scikit-learn: the same arrays;
    skops numbers shared objects by identity, which a loaded estimator does not keep)."""
    m, test = fitted_on(messy_csv(tmp_path / "d.csv", task), model, **train)
    assert m.schema.task == ("regression" if task == "regression" else "classification")
    saved = bundle.save(tmp_path / "m.npz", m)
    again = bundle.load(tmp_path / "m.npz", expected_md5=md5_bytes(saved))
    if model in ESTIMATORS:
        assert skops_arrays(again.to_bytes()) == skops_arrays(saved)
    else:
        assert again.to_bytes() == saved
    stored = np.load(tmp_path / "m.npz")
    arrays = {**m.preprocessor.state()[1], **(m.profile_arrays or {})}
    arrays |= {f"model_{k}": v for k, v in m.estimator.state()[1].items()}
    for name, value in arrays.items():
        assert stored[name].shape == np.shape(value), name
    np.testing.assert_array_equal(again.predict(test), m.predict(test))
    if task == "regression":
        assert again.predict(test).dtype == np.float64
        return
    np.testing.assert_array_equal(again.predict_proba(test), m.predict_proba(test))
    labels = {"binary": {"churned", "stayed"}, "multiclass": {"low", "mid", "high"}}[task]
    assert set(m.schema.classes) == labels and set(again.predict(test)) <= labels


def skops_arrays(raw: bytes) -> dict[str, bytes]:
    """The ``.npy`` members of the skops blob inside a bundle, by name."""
    blob = np.load(io.BytesIO(raw))["model_skops"].tobytes()
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return {n: zf.read(n) for n in zf.namelist() if n.endswith(".npy")}


def test_tree_records_are_saved_with_zeroed_padding():
    """scikit-learn's tree nodes are structs with padding copied from uninitialised memory; the
    saved bytes must not depend on it (a forest's bundle changed on re-saving before)."""
    from modelops.models.sklearn_estimators import _zero_padding

    dtype = np.dtype({"names": ["a", "b"], "formats": ["<i8", "u1"], "itemsize": 16})
    dirty = np.frombuffer(bytes(range(32)), dtype=dtype)
    buf = io.BytesIO()
    np.save(buf, dirty)
    cleaned = np.load(io.BytesIO(_zero_padding(buf.getvalue())))
    assert cleaned.tobytes()[9:16] == bytes(7) and cleaned.tobytes()[25:32] == bytes(7)
    np.testing.assert_array_equal(cleaned, dirty)
    plain = io.BytesIO()
    np.save(plain, np.arange(3.0))
    assert _zero_padding(plain.getvalue()) == plain.getvalue()


def test_a_scalar_intercept_stays_0_d(tmp_path):
    """The bug: the writer turned the 0-d intercept into shape (1,) and numpy 2.4's float()
    refused it, so no numpy linear regression bundle could be loaded."""
    m, _ = fitted_on(messy_csv(tmp_path / "d.csv", "regression"), "linear_regression")
    with zipfile.ZipFile(io.BytesIO(m.to_bytes())) as zf:
        stored = np.lib.format.read_array(io.BytesIO(zf.read("model_intercept.npy")))
    assert stored.shape == () and float(stored) == m.estimator.intercept_


def rewrite(raw: bytes, name: str, value: np.ndarray) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            if item.filename != name:
                dst.writestr(item, src.read(item))
        buf = io.BytesIO()
        np.lib.format.write_array(buf, value)
        dst.writestr(name, buf.getvalue())
    return out.getvalue()


@pytest.mark.parametrize(
    ("model", "task", "name", "value"),
    [
        ("linear_regression", "regression", "model_intercept.npy", np.zeros(2)),
        ("linear_regression", "regression", "model_coef.npy", np.zeros((4, 3))),
        ("logistic_regression", "binary", "model_intercept.npy", np.zeros((1, 1))),
        ("logistic_regression", "multiclass", "model_intercept.npy", np.zeros(2)),
        ("logistic_regression", "multiclass", "model_intercept.npy", np.asarray(0.0)),
        ("logistic_regression", "binary", "model_coef.npy", np.zeros(4, dtype=np.int64)),
    ],
)
def test_arrays_of_another_shape_are_a_bundle_error(tmp_path, model, task, name, value):
    m, _ = fitted_on(messy_csv(tmp_path / "d.csv", task), model)
    with pytest.raises(BundleError, match=rf"bundle: the {model} model's arrays "):
        bundle.Model.from_bytes(rewrite(m.to_bytes(), name, value))


def test_a_legacy_1_element_intercept_reads_as_the_scalar(tmp_path):
    """Bundles written before the fix hold the scalar intercept as shape (1,): still loadable,
    with the same predictions."""
    m, test = fitted_on(messy_csv(tmp_path / "d.csv", "binary"), "logistic_regression")
    legacy = np.asarray([m.estimator.intercept_])
    old = bundle.Model.from_bytes(rewrite(m.to_bytes(), "model_intercept.npy", legacy))
    np.testing.assert_array_equal(old.predict_proba(test), m.predict_proba(test))


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


@pytest.mark.parametrize(
    "member", ["model_skops.npy", "pre_scale.npy", "model_coef.npy", "model_intercept.npy"]
)
def test_a_bundle_missing_a_member_is_a_bundle_error(tmp_path, member):
    model = "random_forest" if member == "model_skops.npy" else "linear_regression"
    m, _ = fitted_on(messy_csv(tmp_path / "d.csv", "regression"), model)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(m.to_bytes())) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            if item.filename != member:
                dst.writestr(item, src.read(item))
    with pytest.raises(BundleError, match=rf"no '{member[: -len('.npy')].removeprefix('model_')}'"):
        bundle.Model.from_bytes(out.getvalue())


def replaced(raw: bytes, name: str, payload: bytes, compress: int = zipfile.ZIP_STORED) -> bytes:
    """The bundle with member ``name`` holding ``payload`` (raw bytes, not an array)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            if item.filename != name:
                dst.writestr(item, src.read(item))
        dst.writestr(name, payload, compress_type=compress)
    return out.getvalue()


def with_meta(raw: bytes, change) -> bytes:
    import json

    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        meta = json.loads(zf.read("meta.json"))
    return replaced(raw, "meta.json", json.dumps(change(meta)).encode())


def npy_header(shape, dtype="<f8") -> bytes:
    buf = io.BytesIO()
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue()


def one_line_bundle_error(raw: bytes, tmp_path) -> str:
    """Load ``raw`` as a registered version would be (its md5 matches its record): one line."""
    path = tmp_path / "m.npz"
    path.write_bytes(raw)
    with pytest.raises(BundleError) as info:
        bundle.load(path, expected_md5=md5_bytes(raw))
    msg = str(info.value)
    assert "\n" not in msg and len(msg) < 400, msg
    return msg


def _set(path: str, value):
    def change(meta):
        *parents, last = path.split(".")
        node = meta
        for part in parents:
            node = node[part]
        node[last] = value
        return meta

    return change


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda meta: [meta], "meta.json is a JSON list, not an object"),
        (lambda meta: "text", "meta.json is a JSON str"),
        (_set("schema", [1, 2]), "meta.json's 'schema' is not a mapping"),
        (_set("model", "logistic_regression"), "meta.json's 'model' is not a mapping"),
        (_set("preprocessor.numeric", 3), "malformed modelops bundle"),
        (_set("preprocessor.categories", {"a": 1}), "categories do not match"),
        (_set("schema.task", ["classification"]), "is not classification or regression"),
        (_set("schema.numeric", "x"), "schema.numeric is not a list"),
        (_set("schema.classes", None), "schema.classes is not a list"),
        (_set("schema.classes", ["a", "b", "c"]), "the model has 1 outputs for 3 classes"),
        (_set("schema.colour", "red"), "malformed modelops bundle (TypeError"),
        (_set("info", [1]), "info or profile is wrong"),
        (_set("format", {"a": 1}), "bundle format"),
    ],
)
def test_meta_of_the_wrong_json_types_is_one_line(tmp_path, change, expected):
    """An md5 that matches proves the bytes are the registered ones, not that they are sane:
    each of these gave a traceback (AttributeError, TypeError) instead of an error line."""
    m, _ = fitted()
    assert expected in one_line_bundle_error(with_meta(m.to_bytes(), change), tmp_path)


def test_a_header_claiming_ten_trillion_elements_is_refused_without_allocating(tmp_path):
    """The header's shape is checked against the member's size before anything is allocated."""
    import tracemalloc

    m, _ = fitted()
    raw = m.to_bytes()
    tracemalloc.start()
    try:
        for shape in [(10**13,), (10**8,), (2, 10**12)]:
            payload = npy_header(shape) + bytes(8 * 30)
            msg = one_line_bundle_error(replaced(raw, "model_coef.npy", payload), tmp_path)
            assert f"claims shape {shape}" in msg
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20  # the bundle's own size, not the claimed 80 TB (or 800 MB)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("pre_mean.npy", np.zeros(30, dtype=np.int64), "pre_mean is int64 (30,), not float64"),
        ("pre_scale.npy", np.ones(29), "pre_scale is float64 (29,)"),
        ("model_coef.npy", np.zeros(30, dtype=np.complex128), "holds complex128, not numbers"),
        ("model_coef.npy", np.zeros(31), "the model takes 31 inputs but the preprocessor makes 30"),
        (
            "model_coef.npy",
            np.zeros(3, dtype=[("a", "<f8"), ("b", "<i4")]),
            "not numbers",
        ),
        ("model_coef.npy", np.array(["a", "b"]), "arrays are not floats"),
    ],
)
def test_arrays_of_the_wrong_dtype_or_width_are_one_line(tmp_path, name, value, expected):
    m, _ = fitted()
    assert expected in one_line_bundle_error(rewrite(m.to_bytes(), name, value), tmp_path)


def test_object_arrays_and_pickles_are_one_line(tmp_path):
    m, _ = fitted()
    buf = io.BytesIO()
    np.save(buf, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    raw = replaced(m.to_bytes(), "model_coef.npy", buf.getvalue())
    assert "holds object, not numbers" in one_line_bundle_error(raw, tmp_path)


@pytest.mark.parametrize(
    ("name", "payload", "compress", "expected"),
    [
        # a zip bomb: 20 MB of zeros deflate to about 20 KB
        ("pre_fill.npy", bytes(20 * 2**20), zipfile.ZIP_DEFLATED, "is compressed"),
        ("pre_fill.npy", b"\x93NUMPY\x09\x00garbage", zipfile.ZIP_STORED, "pre_fill"),
        ("pre_fill.npy", npy_header((30,))[:-5], zipfile.ZIP_STORED, "not a modelops bundle"),
        ("extra.pkl", b"cos\nsystem\n", zipfile.ZIP_STORED, "unexpected member 'extra.pkl'"),
        ("meta.json", b"{" * 100_000, zipfile.ZIP_STORED, "not a modelops bundle"),
    ],
)
def test_malformed_members_are_one_line(tmp_path, name, payload, compress, expected):
    m, _ = fitted()
    raw = replaced(m.to_bytes(), name, payload, compress)
    assert expected in one_line_bundle_error(raw, tmp_path)
