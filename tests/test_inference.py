"""The shared rules for inputs and outputs (serving, batch predict and monitor use them)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelops import inference
from modelops.errors import DataError
from tests.helpers import fitted_on, messy_csv


def test_missing_features_are_named_and_other_columns_ignored():
    missing, ignored = inference.columns(["id", "x1", "ts", "y"], ["x1", "x2"], ["y"])
    assert missing == ["x2"] and ignored == ["id", "ts"]
    assert inference.columns(["x2", "x1"], ["x1", "x2"]) == ([], [])


@pytest.mark.parametrize(
    ("value", "error", "why"),
    [
        (10**400, ValueError, "beyond the range of a float"),
        (-(10**309), ValueError, "beyond the range of a float"),
        (float("inf"), ValueError, "must be finite"),
        (True, TypeError, "bool"),
        ("1", TypeError, "str"),
    ],
)
def test_json_numbers(value, error, why):
    with pytest.raises(error, match=why):
        inference.json_number(value)


def test_json_numbers_that_fit():
    assert inference.json_number(10**308) == 1e308 and inference.json_number(-2) == -2.0


def test_numeric_column_flags_text_and_numbers_beyond_float_range():
    raw = pd.Series(["1.5", None, "oops", "1" + "0" * 400, "-1e999"], dtype=object)
    values, wrong = inference.numeric_column(raw)
    assert values[0] == 1.5 and np.isnan(values[1])
    assert wrong.tolist() == [False, False, True, True, True]
    values, wrong = inference.numeric_column(pd.Series([1.0, np.nan, np.inf]))
    assert wrong.tolist() == [False, False, True]


@pytest.fixture(scope="module", params=["binary", "multiclass", "regression"])
def case(request, tmp_path_factory):
    task = request.param
    model = "linear_regression" if task == "regression" else "logistic_regression"
    m, test = fitted_on(messy_csv(tmp_path_factory.mktemp(task) / "d.csv", task), model)
    return m, test


def arrays(m, frame):
    pre = m.preprocessor
    numeric = frame[pre.numeric].to_numpy(dtype=float, na_value=np.nan)
    cats = [inference.category_column(frame[c]) for c in pre.categorical]
    return numeric, cats


def test_answers_are_the_models_and_encode_as_strict_json(case):
    m, test = case
    out = inference.predict(m, *arrays(m, test))
    assert not out.refused.any()
    body = json.loads(json.dumps(out.to_json(), allow_nan=False))
    if m.schema.task == "regression":
        np.testing.assert_allclose(body["predictions"], m.predict(test), rtol=1e-12)
        np.testing.assert_allclose(out.to_columns()["prediction"], m.predict(test), rtol=1e-12)
    else:
        assert body["predictions"] == m.predict(test).tolist()
        got = np.array([[p[str(c)] for c in m.schema.classes] for p in body["probabilities"]])
        np.testing.assert_allclose(got, m.predict_proba(test), atol=1e-12)


@pytest.mark.parametrize("value", [1e308, -1e308, 1e200])
def test_extreme_inputs_are_refused_with_a_reason_never_nan(case, value):
    m, test = case
    frame = test.head(5).copy()
    frame.loc[frame.index[[1, 3]], ["x1", "x2"]] = value
    out = inference.predict(m, *arrays(m, frame))
    assert out.refused.tolist() == [False, True, False, True, False]
    why, feature = inference.reason(out, 1)
    assert feature in ("x1", "x2") and f"= {value!r}" in why and "training range" in why
    kept = out.keep(~out.refused)
    json.dumps(kept.to_json(), allow_nan=False)  # what is not refused is finite
    assert np.isfinite(kept.scores()).all()
    assert len(kept.to_columns()["prediction"]) == 3


def test_a_tree_model_gets_no_input_beyond_float32(tmp_path):
    """scikit-learn's trees run in float32 and raise on larger input; we refuse it first."""
    m, test = fitted_on(messy_csv(tmp_path / "d.csv", "binary"), "random_forest")
    frame = test.head(3).copy()
    frame.loc[frame.index[0], "x2"] = 1e300
    out = inference.predict(m, *arrays(m, frame))
    assert out.refused.tolist() == [True, False, False]
    assert inference.reason(out, 0)[1] == "x2"
    np.testing.assert_allclose(out.proba[1:], m.predict_proba(frame.iloc[1:]), atol=1e-12)


def test_an_answer_that_is_not_finite_is_refused_naming_the_furthest_feature(case):
    """The last net: finite inputs the estimator still turns into NaN or inf."""
    import dataclasses

    m, test = case

    class Overflowing:  # stands in for an estimator whose arithmetic overflows on row 0
        def predict_proba(self, X):
            p = m.estimator.predict_proba(X)
            p[0] = np.nan
            return p

        def predict(self, X):
            y = np.asarray(m.estimator.predict(X), dtype=float)
            y[0] = np.inf
            return y

    frame = test.head(3).copy()
    frame.loc[frame.index[0], "x2"] = 1e30
    out = inference.predict(dataclasses.replace(m, estimator=Overflowing()), *arrays(m, frame))
    assert out.refused.tolist() == [True, False, False]
    assert inference.reason(out, 0) == (
        "the model's answer is not finite: 'x2' = 1e+30 is far outside the training range",
        "x2",
    )


def chunks_of(path: Path, fields: int = 3, rows: int = 2) -> list:
    out = inference.iter_csv(path, ["a", "b"], ["c"], [""], rows, fields, "--input")
    return [(line, frame.to_dict("list")) for line, frame in out]


@pytest.mark.parametrize(
    "body, line, n",
    [
        ("1,2,x\n3,000,4,y\n5,6,z\n", 3, 4),  # an unquoted thousands separator: shifted
        ("1,2,x\n3,4,y\n5,6", 4, 2),  # cut off mid-write
        ("1,2,x\n3,4\n5,6,z\n", 3, 2),
        ('1,2,"x,y",\n', 2, 4),  # quoted comma counted once, the trailing one too
        ("".join(f"{i},{i},t\n" for i in range(100_000)) + "1,2\n", 100_002, 2),  # late
    ],
)
def test_a_row_whose_field_count_differs_from_the_header_is_refused_naming_its_line(
    tmp_path, body, line, n
):
    """pandas fills a short row with missing values and, with usecols, drops a long row's
    extra fields: the row would be predicted from the wrong values."""
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,c\n" + body)
    with pytest.raises(DataError, match=rf"line {line} has {n} field\(s\) where the header has 3"):
        chunks_of(bad, rows=1000)


@pytest.mark.parametrize(
    "body, expected",
    [
        # a quote inside an unquoted value is text (pandas' rule, and csv's): not an opening
        ('1,2,5\'11"\n3,4,"line one\nmiddle, text\nend"\n5,6,p\n', None),
        ("1,2,5'11\"\n3,4\n5,6,p\n", (3, 2)),  # so the cut-off row after it is seen
        ('1,"ab"cd,x\n3,4\n', (3, 2)),  # text after a closing quote: pandas joins it
        ("1,2,x\n   \n\t\n3,4,y\n", None),  # lines of blanks are skipped, as pandas does
        # regular quoting (counted with numpy): commas and "" inside quoted values
        ('1,"2",x\n3,4,"say ""hi"", ok"\n"5",6,"a,b"\n', None),
        ('1,2,"x"\n3,"a,b"\n5,6,z\n', (3, 2)),  # short, though its raw commas are 2
    ],
)
def test_quotes_count_as_pandas_reads_them(tmp_path, body, expected):
    f = tmp_path / "q.csv"
    f.write_text("a,b,c\n" + body)
    if expected is None:
        rows = sum(len(columns["a"]) for _, columns in chunks_of(f, rows=10))
        assert rows == (2 if "   " in body else 3)
    else:
        line, n = expected
        with pytest.raises(DataError, match=rf"line {line} has {n} field\(s\)"):
            chunks_of(f, rows=10)


def test_rows_that_match_the_header_pass_whatever_their_quoting_and_line_ends(tmp_path):
    good = tmp_path / "good.csv"
    good.write_bytes(b'a,b,c\r\n1,2,"x,y"\r\n\r\n3,4,"two\nlines"\n5,6,"say ""hi"", ok"\n7,8,z')
    assert chunks_of(good, rows=10) == [
        (
            2,
            {
                "a": [1.0, 3.0, 5.0, 7.0],
                "b": [2.0, 4.0, 6.0, 8.0],
                "c": ["x,y", "two\nlines", 'say "hi", ok', "z"],
            },
        ),
    ]


def test_a_row_that_is_not_utf8_is_one_line_naming_where(tmp_path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"a,b,c\n" + b"1,2,x\n" * 300 + b"3,4,r\xe9d\n")
    with pytest.raises(DataError, match=r"--input .*: a row after line \d+ is not UTF-8 text"):
        chunks_of(latin, rows=100)


def test_read_ahead_keeps_order_bounds_memory_and_raises_where_the_chunk_was():
    import threading
    import time

    from modelops.inference import read_ahead

    produced: list[int] = []

    def chunks(n, fail_at=None):
        for i in range(n):
            if i == fail_at:
                raise ValueError(f"chunk {i} is bad")
            produced.append(i)
            yield i

    def settle(condition) -> None:
        deadline = time.monotonic() + 5
        while not condition():
            assert time.monotonic() < deadline
            time.sleep(0.01)

    assert list(read_ahead(chunks(50))) == list(range(50))
    got = []
    with pytest.raises(ValueError, match="chunk 3 is bad"):
        for item in read_ahead(chunks(10, fail_at=3)):
            got.append(item)
    assert got == [0, 1, 2]  # every chunk before the bad one arrived, in order
    produced.clear()
    ahead = read_ahead(chunks(1000))
    assert next(ahead) == 0
    settle(lambda: len(produced) >= 3)
    time.sleep(0.2)
    assert len(produced) == 3  # the one in hand, one waiting, one the producer holds
    ahead.close()  # the consumer leaves: the producer stops instead of reading on
    settle(lambda: not any(t.name == "modelops-read-ahead" for t in threading.enumerate()))
    assert len(produced) == 3
