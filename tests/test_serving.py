"""The request validator on its own: every kind of bad record, named by record and field."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelops.serving import RequestError, Validator


def validator(reject=True, max_rows=3) -> Validator:
    return Validator(
        numeric=["age", "income"],
        categorical=["plan"],
        categories={"plan": {"basic", "pro"}},
        ignored={"customer_id"},
        reject_unknown_categories=reject,
        max_rows=max_rows,
    )


GOOD = {"age": 30, "income": 1.5e4, "plan": "pro"}


def test_good_records_become_arrays():
    X, cats, ignored = validator().arrays(
        [GOOD, {"age": None, "income": 2, "plan": None, "customer_id": "C1"}]
    )
    np.testing.assert_array_equal(X[0], [30, 1.5e4])
    assert np.isnan(X[1, 0]) and X[1, 1] == 2
    assert list(cats[0]) == ["pro", None]
    assert ignored == ["customer_id"]


def test_fields_the_model_does_not_use_are_ignored_and_named():
    """Item 18: production records carry ids and timestamps; they are not an error."""
    X, _, ignored = validator().arrays(
        [{**GOOD, "ts": "2026-01-01", "colour": "red"}, {**GOOD, "ts": 5}]
    )
    assert ignored == ["ts", "colour"] and X.shape == (2, 2)


@pytest.mark.parametrize(
    ("records", "error", "record", "field"),
    [
        ([{"income": 1, "plan": "pro"}], "missing_feature", 0, "age"),
        ([GOOD, {"age": 1, "colour": "red"}], "missing_feature", 1, "income"),
        ([{**GOOD, "age": "30"}], "wrong_type", 0, "age"),
        ([{**GOOD, "age": True}], "wrong_type", 0, "age"),
        ([{**GOOD, "plan": 3}], "wrong_type", 0, "plan"),
        ([{**GOOD, "plan": "enterprise"}], "unknown_category", 0, "plan"),
        ([{**GOOD, "income": float("inf")}], "not_finite", 0, "income"),
        ([GOOD, {**GOOD, "income": 10**400}], "not_finite", 1, "income"),
        ([{**GOOD, "age": -(10**309)}], "not_finite", 0, "age"),
        ([GOOD, "row"], "not_an_object", 1, None),
    ],
)
def test_bad_records(records, error, record, field):
    with pytest.raises(RequestError) as info:
        validator().arrays(records)
    assert info.value.status == 422
    assert info.value.body["error"] == error
    assert info.value.body.get("record") == record and info.value.body.get("field") == field


@pytest.mark.parametrize(
    ("value", "feature", "said"),
    [
        ("30", "age", "must be a number (or null), got a string"),
        (True, "age", "must be a number (or null), got a boolean"),
        ({"v": 1}, "income", "must be a number (or null), got an object"),
        (3, "plan", "must be a string (or null), got a number"),
        (-(2**63) - 1, "plan", "must be a string (or null), got a number"),  # a float to orjson
        ([], "plan", "must be a string (or null), got an array"),
    ],
)
def test_a_wrong_type_is_named_in_json_s_words(value, feature, said):
    body = json.dumps([{**GOOD, feature: value}]).encode()
    v = validator()
    with pytest.raises(RequestError) as info:
        v.arrays(v.parse(body))
    assert info.value.body["message"] == f"record 0: {feature!r} {said}"


def test_unknown_categories_can_be_allowed():
    _, cats, _ = validator(reject=False).arrays([{**GOOD, "plan": "enterprise"}])
    assert cats[0][0] == "enterprise"


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"{", 400, "malformed_json"),
        (b'[{"age": NaN}]', 400, "malformed_json"),
        (b'[{"age": -Infinity}]', 400, "malformed_json"),
        (b"\xff\xfe", 400, "malformed_json"),
        (b'{"age": 1}', 422, "not_a_list"),
        (b"[]", 422, "empty"),
        (json.dumps([GOOD] * 4).encode(), 413, "too_many_rows"),
    ],
)
def test_bad_bodies(body, status, error):
    with pytest.raises(RequestError) as info:
        validator().parse(body)
    assert (info.value.status, info.value.body["error"]) == (status, error)


def test_huge_number_literal_is_not_finite():
    records = validator().parse(b'[{"age": 1e999, "income": 1, "plan": "pro"}]')
    with pytest.raises(RequestError, match="must be finite"):
        validator().arrays(records)


@pytest.mark.parametrize(
    ("digits", "why"), [(400, "is beyond the range of a float"), (5000, "must be finite")]
)
def test_an_integer_beyond_float_range_is_a_422_naming_the_field(digits, why):
    """Item 6: 1e400 written as digits parsed to an int that no float holds (was a 500).
    Over 4,300 digits Python refuses the int itself (a 400 telling the client to call
    sys.set_int_max_str_digits): read as a float, infinite."""
    body = b'[{"age": 1' + b"0" * digits + b', "income": 1, "plan": "pro"}]'
    with pytest.raises(RequestError) as info:
        validator().arrays(validator().parse(body))
    assert info.value.status == 422
    assert info.value.body == {
        "error": "not_finite",
        "message": f"record 0: 'age' {why}",
        "record": 0,
        "field": "age",
    }


@pytest.mark.parametrize(
    ("body", "record", "field"),
    [
        (b"[" + b'{"age": 1, "plan": "pro"}, ' * 2 + b'{"income": ' + b"[" * 5000, 2, "income"),
        (b'[{"a\\"b,": ' + b"[" * 1200 + b"]" * 1200 + b"}]", 0, 'a\\"b,'),
        (b"[" * 100_000, 0, None),
    ],
)
def test_deep_nesting_is_a_422_naming_the_record(body, record, field):
    """Item 6: JSON nested past the parser's stack was a RecursionError (a 500)."""
    with pytest.raises(RequestError) as info:
        validator().parse(body)
    assert info.value.status == 422 and info.value.body["error"] == "too_deep"
    assert info.value.body.get("record") == record and info.value.body.get("field") == field


def _outcome(arrays, records):
    try:
        X, cats, ignored = arrays(records)
    except RequestError as exc:
        return ("refused", exc.status, exc.body)
    return ("ok", np.where(np.isnan(X), None, X).tolist(), [list(c) for c in cats], ignored)


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**320),
    st.floats(allow_nan=False),
    st.sampled_from(["pro", "basic", "enterprise", "30", ""]),
    st.lists(st.integers(), max_size=2),
)
RECORD = st.dictionaries(
    st.sampled_from(["age", "income", "plan", "customer_id", "ts"]), VALUES, min_size=0, max_size=5
)


@settings(max_examples=400, deadline=None)
@given(records=st.lists(st.one_of(RECORD, st.builds(lambda: GOOD), st.just("row")), max_size=4))
def test_the_fast_path_answers_exactly_as_the_value_by_value_one(records):
    """`arrays` converts whole columns at once when every rule passes, and otherwise leaves
    the request to the check that goes value by value: the result, or the error naming the
    first bad record and field, must be the same either way."""
    for reject in (True, False):
        v = validator(reject=reject)
        assert _outcome(v.arrays, records) == _outcome(v._arrays_by_value, records)


@settings(max_examples=300, deadline=None)
@given(body=st.lists(RECORD, min_size=1, max_size=3).map(lambda r: json.dumps(r).encode()))
def test_orjson_parses_every_body_as_the_standard_parser_does(body):
    """What the client sees after validation is the same (an integer past 64 bits is a float
    to orjson before validation turns every number into one: the same float)."""
    v = validator()

    def seen(parse):
        try:
            return _outcome(v.arrays, parse(body))
        except RequestError as exc:
            return ("refused", exc.status, exc.body)

    standard = seen(lambda b: v._check_list(v._parse_standard(b)))
    assert repr(seen(v.parse)) == repr(standard)  # repr: -0.0 and 0.0 stay apart


@pytest.mark.parametrize(("depth", "refused"), [(62, False), (63, True), (1010, True)])
def test_an_ignored_field_may_nest_to_the_limit_whichever_parser_reads_it(depth, refused):
    """A record's list and the record are two levels; a field may add 62 more. orjson reads
    1,024 levels and the standard parser about 1,000, so the limit is checked, not left to
    whichever parser read the body."""
    extra = b"[" * depth + b"]" * depth
    body = b'[{"age": 1, "income": 2, "plan": "pro", "customer_id": ' + extra + b"}]"
    v = validator()
    if not refused:
        assert v.arrays(v.parse(body))[2] == ["customer_id"]
        return
    with pytest.raises(RequestError) as info:
        v.arrays(v.parse(body))
    assert info.value.body["error"] == "too_deep"
    assert (info.value.body["record"], info.value.body["field"]) == (0, "customer_id")
