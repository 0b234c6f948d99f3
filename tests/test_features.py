"""Preprocessing is fitted on train only and survives a round trip through its state."""

from __future__ import annotations

import numpy as np
import pandas as pd

from modelops.features import Preprocessor


def frame():
    return pd.DataFrame({"a": [1.0, 2.0, np.nan, 5.0], "c": ["x", "y", None, "x"]})


def test_impute_scale_onehot():
    pre = Preprocessor(["a"], ["c"]).fit(frame())
    X = pre.transform(frame())
    assert pre.feature_names_out == ["a", "c=x", "c=y"]
    a = np.array([1.0, 2.0, 2.0, 5.0])  # NaN -> median of 1, 2, 5
    np.testing.assert_allclose(X[:, 0], (a - a.mean()) / a.std())
    np.testing.assert_array_equal(X[:, 1:], [[1, 0], [0, 1], [0, 0], [1, 0]])


def test_unknown_category_is_all_zeros_and_stats_come_from_train():
    pre = Preprocessor(["a"], ["c"]).fit(frame())
    new = pd.DataFrame({"a": [100.0], "c": ["never-seen"]})
    X = pre.transform(new)
    np.testing.assert_array_equal(X[0, 1:], [0, 0])
    assert X[0, 0] == (100.0 - pre.mean_[0]) / pre.scale_[0]


def test_state_round_trip():
    pre = Preprocessor(["a"], ["c"], impute="mean", scale=False).fit(frame())
    meta, arrays = pre.state()
    again = Preprocessor.from_state(meta, arrays)
    np.testing.assert_array_equal(again.transform(frame()), pre.transform(frame()))
