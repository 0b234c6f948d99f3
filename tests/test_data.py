"""Sources, schema checks and the split: each data error is one line naming the column."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelops import data, params
from modelops.errors import DataError


def csv_params(path, target="y", model="logistic_regression", **data_kw):
    raw = {
        "data": {"source": "csv", "path": str(path), "target": target, **data_kw},
        "train": {"model": model},
    }
    return params.validate(raw)


def write(tmp_path, text, name="d.csv"):
    f = tmp_path / name
    f.write_text(text)
    return f


def test_breast_cancer_has_named_labels_and_malignant_positive():
    p = params.validate({})
    train, test, schema = data.prepare(p.data, p.split)
    assert schema.task == "classification"
    assert schema.classes == ["benign", "malignant"]
    assert schema.positive_class == "malignant"
    assert len(train) + len(test) == 569
    assert len(schema.numeric) == 30
    # stratified: class shares agree to within one row
    share = lambda f: (f["diagnosis"] == "malignant").mean()  # noqa: E731
    assert abs(share(train) - share(test)) < 0.01


def test_diabetes_is_regression():
    p = params.validate({"data": {"source": "diabetes"}, "train": {"model": "linear_regression"}})
    _, _, schema = data.prepare(p.data, p.split)
    assert schema.task == "regression" and schema.classes is None


def test_synthetic_is_seeded():
    raw = {
        "data": {
            "source": "synthetic",
            "synthetic": {"n_rows": 500, "n_features": 4, "n_informative": 2},
        }
    }
    p = params.validate(raw)
    a = data.prepare(p.data, p.split)[0]
    b = data.prepare(p.data, p.split)[0]
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == ["x0", "x1", "x2", "x3", "target"]


def test_messy_csv_roles_and_missing_values(tmp_path):
    rng = np.random.default_rng(0)
    n = 60
    frame = pd.DataFrame(
        {
            "id": [f"row-{i}" for i in range(n)],
            "age": rng.integers(20, 70, n).astype(str),
            "color": rng.choice(["red", "green", "blue"], n),
            "empty": [""] * n,
            "const": ["k"] * n,
            "y": rng.choice(["Yes", "No"], n),
        }
    )
    frame.loc[3, "age"] = "?"
    frame.loc[4, "age"] = "NA"
    frame.loc[5, "y"] = ""
    f = tmp_path / "d.csv"
    frame.to_csv(f, index=False)
    p = csv_params(f, positive_class="Yes")
    train, test, schema = data.prepare(p.data, p.split)
    assert schema.numeric == ["age"]
    assert schema.categorical == ["color"]
    assert set(schema.dropped) == {"id", "empty", "const"}
    assert "identifier-like" in schema.dropped["id"]
    assert schema.rows["dropped_unlabelled"] == 1
    assert schema.classes == ["No", "Yes"] and schema.positive_class == "Yes"
    assert train["age"].isna().sum() + test["age"].isna().sum() == 2
    assert schema.source["md5"]


@pytest.mark.parametrize(
    ("text", "target", "expected"),
    [
        ("a,b\n1,2\n", "y", "data.target: column 'y' is not in"),
        ("a,y\n", "y", "has a header but no data rows"),
        ("", "y", "is empty"),
        ("a,y\n1,x\n2,x\n3,x\n4,x\n", "y", "has only one class ('x')"),
        ("a,y\n1,\n2,\n", "y", "column 'y' has no values"),
        ("a,y\n1,a\n2,b\n3,a\n4,b\n5,a\n", "y", "data.positive_class: cannot tell which label"),
    ],
)
def test_csv_errors(tmp_path, text, target, expected):
    p = csv_params(write(tmp_path, text), target=target)
    with pytest.raises(DataError) as info:
        data.prepare(p.data, p.split)
    assert expected in str(info.value)


def test_regression_target_must_be_numeric(tmp_path):
    f = write(tmp_path, "a,y\n" + "".join(f"{i},v{i}\n" for i in range(30)))
    p = csv_params(f, task="regression", model="linear_regression")
    with pytest.raises(DataError, match=r"column 'y' is not numeric .*'v0'"):
        data.prepare(p.data, p.split)


def test_too_few_rows_for_stratified_split(tmp_path):
    f = write(tmp_path, "a,y\n1,0\n2,0\n3,0\n4,1\n")
    p = csv_params(f)
    with pytest.raises(
        DataError, match=r"split.test_size: 4 rows are too few .* \(class 1 has 1 row"
    ):
        data.prepare(p.data, p.split)


def test_missing_and_unreadable_files(tmp_path):
    p = csv_params(tmp_path / "nope.csv")
    with pytest.raises(DataError, match=r"nope.csv does not exist"):
        data.prepare(p.data, p.split)
    p = csv_params(tmp_path)
    with pytest.raises(DataError, match=r"is a directory"):
        data.prepare(p.data, p.split)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"a,b\n1,2\n3,4,5,6\n")
    p = csv_params(bad, target="b")
    with pytest.raises(DataError, match=r"cannot read .*bad.csv as CSV"):
        data.prepare(p.data, p.split)


def test_positive_class_must_be_a_label(tmp_path):
    f = write(tmp_path, "a,y\n" + "".join(f"{i},{'Yes' if i % 2 else 'No'}\n" for i in range(20)))
    p = csv_params(f, positive_class="Maybe")
    with pytest.raises(
        DataError, match=r"'Maybe' is not a label of 'y'; its labels are 'No', 'Yes'"
    ):
        data.prepare(p.data, p.split)


def test_integer_labels_default_positive_is_one(tmp_path):
    f = write(tmp_path, "a,y\n" + "".join(f"{i},{i % 2}\n" for i in range(20)))
    _, _, schema = data.prepare(*(lambda p: (p.data, p.split))(csv_params(f)))
    assert schema.classes == [0, 1] and schema.positive_class == 1


@pytest.mark.parametrize("source", sorted(data.BUNDLED))
def test_bundled_datasets_are_scikit_learns_value_for_value(source):
    """prepare reads the files scikit-learn ships without importing it: the frame must be what
    its loader gives (column names and order, dtypes, every bit of every value)."""
    import sklearn
    import sklearn.datasets

    loader, target, _, _ = data.BUNDLED[source]
    kwargs = {"scaled": False} if source == "diabetes" else {}
    bunch = getattr(sklearn.datasets, loader)(as_frame=True, **kwargs)
    expected = bunch.frame.rename(columns={"target": target})
    if source == "breast_cancer":  # named labels: malignant is the positive class
        expected[target] = expected[target].map(dict(enumerate(bunch.target_names)))
    p = params.validate({"data": {"source": source}})
    frame, got_target, described = data.load_source(p.data)
    assert got_target == target
    assert described == {"kind": source, "library": f"scikit-learn {sklearn.__version__}"}
    assert list(frame.columns) == list(expected.columns)
    for column in expected:
        want, got = expected[column].to_numpy(), frame[column].to_numpy()
        if want.dtype.kind == "f":
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), column
        else:
            assert list(got) == list(want), column


def test_bundled_target_override_is_refused():
    p = params.validate({"data": {"target": "label"}})
    with pytest.raises(DataError, match=r"target column is 'diagnosis'"):
        data.prepare(p.data, p.split)


def test_stratified_split_matches_class_shares_exactly():
    """Each class's test rows are its exact share rounded (largest remainders), the test size
    is ceil(test_size * n) as in scikit-learn, and the seed decides which rows."""
    import numpy as np

    from modelops.params import SplitParams

    y = np.repeat(["a", "b", "c"], [50, 30, 7])
    frame = pd.DataFrame({"x": np.arange(len(y)), "y": y})
    splits = {}
    for seed in (1, 2):
        train, test = data.split(
            frame, "y", "classification", SplitParams(test_size=0.2, seed=seed)
        )
        assert len(test) == 18 and len(train) == 69
        assert test["y"].value_counts().to_dict() == {"a": 10, "b": 6, "c": 2}
        assert sorted([*train["x"], *test["x"]]) == list(range(87))  # a partition
        splits[seed] = set(test["x"])
    again = data.split(frame, "y", "classification", SplitParams(test_size=0.2, seed=1))[1]
    assert set(again["x"]) == splits[1] != splits[2]


def test_csv_chunks_that_disagree_on_a_column_are_read_whole(tmp_path, monkeypatch):
    """Chunks infer types on their own; a column that is numbers early and text later must
    come out as one text column, not a mix of floats and strings."""
    monkeypatch.setattr(data, "CSV_CHUNK_ROWS", 10)
    rows = [f"{i % 2 + 1},{i * 0.5},{'ab'[i % 2]}" for i in range(20)]
    rows += [f"x,{i * 0.5},{'ab'[i % 2]}" for i in range(20, 30)]
    f = write(tmp_path, "code,v,y\n" + "\n".join(rows) + "\n")
    frame = data.read_csv(f, ["", "NA"])
    assert {type(v) for v in frame["code"]} == {str}
    assert sorted(frame["code"].unique()) == ["1", "2", "x"]
    assert frame["v"].dtype == "float64" and len(frame) == 30


def test_csv_chunks_agreeing_concatenate_to_the_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "CSV_CHUNK_ROWS", 7)
    rng = np.random.default_rng(0)
    whole = pd.DataFrame(
        {"a": rng.normal(size=40), "b": rng.integers(0, 5, 40), "c": rng.choice(["u", "v"], 40)}
    )
    whole.loc[[3, 17], "a"] = np.nan
    whole.loc[[20], "c"] = np.nan  # text column missing a value in the middle
    f = tmp_path / "d.csv"
    whole.to_csv(f, index=False)
    got = data.read_csv(f, [""])
    pd.testing.assert_frame_equal(got, pd.read_csv(f), check_dtype=False)
    assert got["b"].dtype == "int64"


def test_schema_encodes_labels_as_class_indices():
    schema = data.Schema(
        task="classification",
        target="y",
        numeric=[],
        categorical=[],
        dropped={},
        classes=[0, 1, "maybe"],
        positive_class=None,
        source={},
    )
    labels = pd.Series([1, "1", 0, "maybe", "never", None, 0.0], dtype=object)
    # By value first, then by text ("1" read from a CSV is class 1); -1 for the unknown.
    expected = [1, 1, 0, 2, -1, -1, 0]
    np.testing.assert_array_equal(schema.encode_labels(labels), expected)
    assert schema.encode_labels(labels).dtype == np.int64


@pytest.mark.parametrize("row", [0, 99], ids=["in the training split", "in the test split"])
def test_a_stray_word_in_a_numeric_column_is_refused_not_dropped(tmp_path, row):
    """One "unknown" among numbers makes the reader type the column as text; it used to be
    dropped as "identifier-like or free text", silently losing the feature."""
    rng = np.random.default_rng(0)
    n = 100
    frame = pd.DataFrame(
        {
            "income": rng.normal(50, 15, n).round(2).astype(object),
            "id": [f"C{i:04d}" for i in range(n)],
            "y": rng.choice(["a", "b"], n),
        }
    )
    frame.loc[row, "income"] = "unknown"
    f = tmp_path / "d.csv"
    frame.to_csv(f, index=False)
    p = csv_params(f, positive_class="a")
    with pytest.raises(DataError) as err:
        data.prepare(p.data, p.split)
    # Issue 13, item 16: the line (the header is line 1) and the value, and both ways out.
    assert str(err.value) == (
        f"data: column 'income' holds numbers but for 1 value(s) ('unknown' on line {row + 2}); "
        "add them to data.na_values, or set data.stray_text: missing to read them as missing"
    )
    p = csv_params(f, positive_class="a", na_values=["", "unknown"])
    train, test, schema = data.prepare(p.data, p.split)
    assert schema.numeric == ["income"] and "id" in schema.dropped
    assert train["income"].isna().sum() + test["income"].isna().sum() == 1
    assert schema.stray_as_missing == {}
    p = csv_params(f, positive_class="a", stray_text="missing")
    train, test, schema = data.prepare(p.data, p.split)
    assert schema.numeric == ["income"] and schema.stray_as_missing == {"income": 1}
    assert train["income"].isna().sum() + test["income"].isna().sum() == 1


def test_common_missing_tokens_are_missing_by_default(tmp_path):
    values = [v for i in range(25) for v in (f"{i}.5", "n/a", "-", "None")]
    body = "".join(f"{v},{'ab'[i % 2]}\n" for i, v in enumerate(values))
    p = csv_params(write(tmp_path, "x,y\n" + body), positive_class="a")
    train, test, schema = data.prepare(p.data, p.split)
    assert schema.numeric == ["x"]
    assert train["x"].isna().sum() + test["x"].isna().sum() == 75


def test_text_that_is_mostly_not_numbers_is_still_dropped(tmp_path):
    n = 100
    codes = [str(i) if i % 3 else f"X{i}" for i in range(n)]  # a third are not numbers
    f = write(tmp_path, "code,y\n" + "".join(f"{c},{'ab'[i % 2]}\n" for i, c in enumerate(codes)))
    p = csv_params(f, positive_class="a")
    with pytest.raises(DataError, match=r"no usable feature columns .* code: text with"):
        data.prepare(p.data, p.split)


def test_errors_quote_at_most_a_bounded_slice_of_a_cell():
    from modelops.errors import MAX_MESSAGE, ModelopsError
    from modelops.inference import cell

    big = "z" * 20_000_000
    quoted = cell(big)
    assert len(quoted) < 100 and quoted.endswith("(20,000,002 characters)")
    message = str(DataError(f"line 2: 'notes' = {big!r} is not a number"))
    assert len(message) <= MAX_MESSAGE + 40 and "\n" not in message
    assert isinstance(DataError("x"), ModelopsError)


def test_csv_headers_are_read_with_bounded_memory_and_one_line_errors(tmp_path):
    """Issue 13, item 12: a header field over csv's 128 KiB limit, and /dev/zero."""
    huge = tmp_path / "huge.csv"
    huge.write_text("a," + "b" * 200_000 + "\n1,2\n")
    with pytest.raises(DataError, match=r"--input .*: its header row is not CSV \(field larger"):
        data.csv_header(huge, "--input")
    with pytest.raises(DataError, match=r"no line end in its first 1,048,576 bytes"):
        data.csv_header(Path("/dev/zero"), "--input")
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(b"x,y\r\n1,2\r\n")
    assert data.csv_header(crlf, "--input") == ["x", "y"]
    bom = tmp_path / "bom.csv"  # Excel's "CSV UTF-8"
    bom.write_bytes(b"\xef\xbb\xbfx,y\n1,2\n")
    assert data.csv_header(bom, "--input") == ["x", "y"]
    for header, why in [
        ("a,b,a", r"column 'a' appears twice in the header \(fields 1 and 3\); rename one"),
    ]:  # pandas would rename the second (a.1, "Unnamed: 1") and use the first: a label leak
        odd = tmp_path / "odd.csv"
        odd.write_text(header + "\n1,2,3\n")
        with pytest.raises(DataError, match=rf"^data.path .*odd.csv: {why}$"):
            data.csv_header(odd, "data.path")
    index = tmp_path / "index.csv"  # pandas' to_csv without index=False: a nameless column
    index.write_text(",a,b\n0,1,2\n")
    assert data.csv_header(index, "data.path") == ["", "a", "b"]
    gz = tmp_path / "d.csv.gz"
    with gzip.open(gz, "wt") as f:
        f.write("x,y\n1,2\n")
    assert data.csv_header(gz, "data.path") == ["x", "y"]


def test_numbers_beyond_float64_stop_prepare_naming_the_column_and_lines(tmp_path):
    """ "1e999" and "inf" are read as infinite: no model can fit them (train's loss became NaN
    and its output a traceback). Stopped here, with the column and the lines."""
    rows = [f"{i % 7}.5,{i % 3},{'ab'[i % 2]}" for i in range(40)]
    rows[3] = "1e999,1,a"
    rows[10] = "-inf,2,b"
    f = write(tmp_path, "x,z,y\n" + "\n".join(rows) + "\n")
    p = csv_params(f, positive_class="a")
    with pytest.raises(DataError) as err:
        data.prepare(p.data, p.split)
    assert str(err.value) == (
        "data: column 'x' holds 2 number(s) beyond a 64-bit float's range (±1.8e308), read as "
        "infinite (line 5, 12); correct them, or add their text to data.na_values to read them "
        "as missing"
    )
    # the fix it names works: the same text as a missing value
    p = csv_params(f, positive_class="a", na_values=["", "1e999", "-inf"])
    train, test, schema = data.prepare(p.data, p.split)
    assert schema.numeric == ["x", "z"]
    assert int(train["x"].isna().sum() + test["x"].isna().sum()) == 2


def test_numbers_beyond_float32_stop_prepare_and_integers_beyond_64_bits_are_numbers(tmp_path):
    """A feature of 1e308 made train's eigen-solver fail (a traceback) and a random forest's
    evaluate refuse it; 10**25 was typed as text, and pyarrow could not write it."""
    rows = [f"{i % 7}.5,{i * 10**19},{'ab'[i % 2]}" for i in range(40)]
    f = write(tmp_path, "x,z,y\n" + "\n".join(rows) + "\n")
    train, test, schema = data.prepare(csv_params(f, positive_class="a").data, csv_params(f).split)
    assert schema.numeric == ["x", "z"] and train["z"].dtype == np.float64
    data.write_prepared(train, tmp_path / "train.arrow")  # was an OverflowError
    assert sorted(np.r_[train["z"], test["z"]]) == [float(i * 10**19) for i in range(40)]
    for big, line in [("1e308", 5), ("-4e38", 5), (str(10**40), 5)]:
        rows[3] = f"{big},1,a"
        f = write(tmp_path, "x,z,y\n" + "\n".join(rows) + "\n")
        p = csv_params(f, positive_class="a")
        with pytest.raises(
            DataError,
            match=rf"^data: column 'x' holds 1 number\(s\) beyond "
            rf"±3.4e38 \(line {line}\), where models overflow",
        ):
            data.prepare(p.data, p.split)


@pytest.mark.parametrize(
    "head, why",
    [
        ("x,y,y", "column 'y' appears twice in the header"),
        ("y,x,y", "column .y. appears twice in the header .fields 1 and 3."),
    ],
)
def test_prepare_refuses_a_header_pandas_would_rename(tmp_path, head, why):
    """``target,a,target``: pandas used the first and made the real labels a feature."""
    rows = [f"{i % 7}.5,{i % 3},{'ab'[i % 2]}" for i in range(40)]
    f = write(tmp_path, head + "\n" + "\n".join(rows) + "\n")
    p = csv_params(f, positive_class="a")
    with pytest.raises(DataError, match=f"^data.path .*: {why}"):
        data.prepare(p.data, p.split)


def test_prepare_reads_at_most_a_mebibyte_looking_for_the_header(tmp_path):
    f = write(tmp_path, "x" * (2 << 20) + ",y\n1,a\n")
    p = csv_params(f)
    with pytest.raises(DataError, match=r"no line end in its first 1,048,576 bytes"):
        data.prepare(p.data, p.split)


def _prepared_round_trip(tmp_path, frame: pd.DataFrame) -> data.Prepared:
    data.write_prepared(frame, tmp_path / "split.arrow")
    return data.read_prepared(tmp_path / "split.arrow")


@pytest.mark.parametrize("missing", [False, True], ids=["complete", "with missing values"])
def test_a_prepared_split_reads_numbers_and_labels_as_pandas_does(tmp_path, missing):
    """train and evaluate read the mapped file's buffers instead of going through pandas;
    what they get must be what pandas' to_numpy gave, value for value and bit for bit."""
    rng = np.random.default_rng(0)
    n = 1000
    frame = pd.DataFrame(
        {
            "f": rng.normal(size=n),
            "i": rng.integers(-5, 5, n),
            "f32": rng.normal(size=n).astype(np.float32),
            "u8": rng.integers(0, 255, n).astype(np.uint8),
            "label": rng.choice(["benign", "malignant"], n),
            "klass": rng.integers(0, 3, n),
            "text": rng.choice(["a", "b", None], n),
        }
    )
    if missing:
        frame["f"] = frame["f"].where(rng.random(n) > 0.2)
        frame["i"] = frame["i"].where(rng.random(n) > 0.2)  # a float column to pandas now
    got = _prepared_round_trip(tmp_path, frame)
    assert len(got) == n and got.columns == list(frame.columns)
    for name in ("f", "i", "f32", "u8"):
        ours = got[name].to_numpy(dtype=np.float64, na_value=np.nan)
        theirs = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
        assert ours.dtype == np.float64
        np.testing.assert_array_equal(ours.view(np.uint64), theirs.view(np.uint64))
    for name in ("label", "klass"):
        assert got[name].to_numpy(dtype=object).tolist() == frame[name].tolist()
    # text columns are stored once per value (dictionary-encoded) and come back as the text
    # Series they always were, not as categoricals
    import pyarrow.feather as feather

    stored = feather.read_table(tmp_path / "split.arrow").schema
    assert str(stored.field("text").type).startswith("dictionary<values=large_string")
    assert str(got["text"].dtype) != "category" and str(got.to_pandas()["text"].dtype) != "category"
    pd.testing.assert_series_equal(got["text"].dropna(), frame["text"].dropna(), check_dtype=False)
    assert (got["text"] == "a").tolist() == (frame["text"] == "a").tolist()
    pd.testing.assert_frame_equal(got.to_pandas(), frame, check_dtype=False)
    # an na_value other than NaN is honoured, as pandas honours it
    filled = frame["f"].to_numpy(dtype=np.float64, na_value=0.0)
    np.testing.assert_array_equal(got["f"].to_numpy(dtype=np.float64, na_value=0.0), filled)


def test_numbers_read_across_chunks_and_slices_keep_their_missing_values():
    """A prepared file is one record batch, but a column of several chunks, or a slice that
    starts mid-byte of the validity bitmap, must read the same."""
    import pyarrow as pa

    values = [1.5, None, 3.0, None, 5.0, 6.0, None, 8.0, 9.0, 10.0, None]
    whole = pa.array(values, type=pa.float64())
    chunked = pa.chunked_array([whole.slice(0, 3), whole.slice(3, 5), whole.slice(8)])
    expected = np.array([np.nan if v is None else v for v in values])
    for column in (pa.chunked_array([whole]), chunked):
        np.testing.assert_array_equal(data.Column(column).to_numpy(dtype=np.float64), expected)
    ints = pa.chunked_array([pa.array([7, None, 9], type=pa.int32()).slice(1)])
    np.testing.assert_array_equal(data.Column(ints).to_numpy(dtype=float), [np.nan, 9.0])
    empty = pa.chunked_array([], type=pa.float64())
    assert data.Column(empty).to_numpy(dtype=np.float64).shape == (0,)


def test_a_missing_or_foreign_prepared_file_is_one_line(tmp_path):
    with pytest.raises(DataError, match=r"train.arrow is missing; run the prepare stage again"):
        data.read_prepared(tmp_path / "train.arrow")
    (tmp_path / "test.arrow").write_bytes(b"PAR1 not arrow")
    with pytest.raises(DataError, match=r"test.arrow is not a split prepare wrote; run the"):
        data.read_prepared(tmp_path / "test.arrow")


def chunky_csv(tmp_path) -> Path:
    """40 rows that 5-row chunks read differently and pandas' concat joins: a column of
    integers with a gap in its fifth chunk only (int64, then float64), a column missing from
    its whole first chunk, booleans, booleans with a chunk of gaps, text with gaps, a float
    target with gaps (regression) and a text target with one unlabelled row (classification)."""
    rows = []
    for i in range(40):
        count = "" if i == 23 else str(i % 7)
        late = "" if i < 5 else f"{i * 0.25}"
        flag = "True" if i % 3 else "False"
        color = "" if i % 11 == 4 else ("red", "blue", "green")[i % 3]
        amount = "" if i in (6, 31) else f"{(i * 37 % 101) / 7:.6f}"
        label = "" if i == 11 else "ab"[i * 7 % 3 == 0]
        seen = "" if 10 <= i < 15 else ("True", "False")[i % 2]  # its third chunk: all gaps
        rows.append(f"{count},{late},{flag},{color},{amount},{label},{seen}")
    path = tmp_path / "chunky.csv"
    path.write_text("count,late,flag,color,amount,label,seen\n" + "\n".join(rows) + "\n")
    return path


def test_a_spilled_csv_reads_as_the_one_in_memory(tmp_path, monkeypatch):
    """Columns of numbers spilled to scratch files and mapped back are the same values and
    types as read_csv keeps in memory, chunk types joined as pandas joins them; the scratch
    files are gone as soon as they are mapped."""
    monkeypatch.setattr(data, "CSV_CHUNK_ROWS", 5)
    path = chunky_csv(tmp_path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    spilled = data.read_csv(path, [""], data.Spill(scratch))
    in_memory = data.read_csv(path, [""])
    pd.testing.assert_frame_equal(spilled, in_memory)
    assert spilled["count"].dtype == "float64" and spilled["late"].dtype == "float64"
    assert spilled["flag"].dtype == "bool"
    # Booleans and a chunk of nothing but gaps: pandas joins them as objects, not numbers.
    assert spilled["seen"].dtype == object and spilled["seen"][0] is True
    # Mapped from a file, not a copy in this process's memory.
    assert not spilled["amount"].to_numpy().flags.writeable
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize(
    ("target", "task"), [("label", "classification"), ("amount", "regression")]
)
def test_a_spilled_prepare_writes_the_same_bytes(tmp_path, monkeypatch, target, task):
    """prepare with scratch files (the stage's way) and without give the same splits, schema
    and prepared bytes, unlabelled rows dropped either way."""
    monkeypatch.setattr(data, "CSV_CHUNK_ROWS", 5)
    positive = {"positive_class": "a"} if task == "classification" else {}
    p = csv_params(chunky_csv(tmp_path), target=target, model="auto", **positive)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    got = data.prepare(p.data, p.split, spill=data.Spill(scratch))
    want = data.prepare(p.data, p.split)
    assert got[2] == want[2] and got[2].task == task and got[2].rows["dropped_unlabelled"] > 0
    for split_got, split_want in zip(got[:2], want[:2], strict=True):
        pd.testing.assert_frame_equal(split_got, split_want)
        data.write_prepared(split_got, tmp_path / "got.arrow")
        data.write_prepared(split_want, tmp_path / "want.arrow")
        assert (tmp_path / "got.arrow").read_bytes() == (tmp_path / "want.arrow").read_bytes()
    del got
    assert list(scratch.iterdir()) == []


def test_the_disk_estimate_counts_a_csvs_values(tmp_path):
    """16 bytes for each value of the CSV (rows estimated from its first MB), so a file of
    short numbers is not taken for a small one."""
    rows = 200_000
    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n" + "1,2,0\n" * rows)
    p = csv_params(path)
    needed, what = data.disk_needed(p.data)
    assert needed == pytest.approx(rows * 3 * data.DISK_BYTES_PER_VALUE, rel=0.01)
    assert str(path) in what and "3 columns" in what
    assert data.disk_needed(params.validate({}).data) is None  # a bundled dataset


def test_a_scratch_file_that_cannot_be_made_is_the_machines_error_not_the_csvs(tmp_path):
    """read_csv reports a CSV it cannot read as a DataError (exit 4); a scratch file it cannot
    make (here, in a folder that is gone) is a ScratchError, which the stage reports as the
    disk's (exit 7)."""
    path = chunky_csv(tmp_path)
    with pytest.raises(data.ScratchError) as exc:
        data.read_csv(path, [""], data.Spill(tmp_path / "gone"))
    assert not isinstance(exc.value, DataError) and exc.value.strerror


def test_a_consumed_split_never_holds_the_data_twice():
    """split(consume=True), as prepare runs it on a CSV (a frame with a block per column, as
    read_csv builds it), takes each column for both splits and then lets it go: what it adds
    to the memory the frame held stays near one column's copy and the rows' indices, never a
    whole split on top of the frame. Counted by tracemalloc, which sees numpy's allocations
    and frees."""
    import tracemalloc

    from modelops.params import SplitParams

    rows, cols = 200_000, 10
    rng = np.random.default_rng(0)
    data_bytes = rows * (cols + 1) * 8
    tracemalloc.start()
    try:
        columns = {f"x{i}": pd.Series(rng.normal(size=rows), copy=False) for i in range(cols)}
        columns["y"] = pd.Series(rng.normal(size=rows), copy=False)
        frame = pd.DataFrame(columns, copy=False)
        del columns
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        train, test = data.split(frame, "y", "regression", SplitParams(), consume=True)
        added = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert len(train) + len(test) == rows and frame.shape[1] == 0
    # Taking the training split whole before the test split (the frame kept meanwhile) adds
    # 0.8 of the data; column by column, 0.25 (measured).
    assert added < 0.5 * data_bytes, added / data_bytes
