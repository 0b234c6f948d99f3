"""The batch accumulator on tiny arrays: its counts against independent ones (numpy's
bincount, Counter, scipy's ks_2samp), whatever the chunking."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy.stats import ks_2samp

from modelops.monitoring import Accumulator, Chunk, KSCounter

EDGES = np.array([0.0, 1.0, 2.5])  # bins: (-inf, 0], (0, 1], (1, 2.5], (2.5, inf)
SAMPLE = np.sort(np.array([-1.0, 0.0, 0.5, 1.0, 1.0, 2.0, 3.0, 4.0]))


def fresh(prediction_edges=None, n_classes=3) -> Accumulator:
    return Accumulator(
        edges={"x": EDGES},
        ks={"x": KSCounter(SAMPLE)},
        categorical=["c"],
        prediction_edges=prediction_edges,
        n_classes=n_classes,
    )


def batch(rng: np.random.Generator, n: int):
    x = rng.choice([-2.0, 0.0, 0.3, 1.0, 2.5, 3.0, np.nan], n)
    c = rng.choice(np.array(["a", "b", "z", None], dtype=object), n)
    scores = rng.integers(0, 3, n).astype(float)
    return x, c, scores


def chunks(x, c, scores, sizes):
    start = 0
    for size in sizes:
        end = start + size
        yield Chunk(end - start, {"x": x[start:end]}, {"c": c[start:end]}, scores[start:end])
        start = end


def bin_of(value: float) -> int:
    """Independent bin rule: bin i holds edges[i-1] < x <= edges[i]."""
    return sum(value > e for e in EDGES)


@pytest.mark.parametrize("sizes", [[50], [1, 49], [7] * 7 + [1], [0, 25, 0, 25]])
def test_counts_do_not_depend_on_the_chunking(sizes):
    x, c, scores = batch(np.random.default_rng(3), 50)
    acc = fresh()
    for chunk in chunks(x, c, scores, sizes):
        acc.add(chunk)

    present = x[~np.isnan(x)]
    assert acc.rows == 50
    assert acc.missing == {"x": int(np.isnan(x).sum()), "c": sum(v is None for v in c)}
    expected_bins = np.bincount([bin_of(v) for v in present], minlength=len(EDGES) + 1)
    assert acc.bins["x"].tolist() == expected_bins.tolist()
    assert acc.categories["c"] == dict(Counter(v for v in c if v is not None))
    assert acc.predictions.tolist() == np.bincount(scores.astype(int), minlength=3).tolist()
    stat, pvalue = acc.ks["x"].result()
    reference = ks_2samp(SAMPLE, present, method="asymp")
    assert stat == pytest.approx(reference.statistic, abs=1e-12)
    assert pvalue == pytest.approx(reference.pvalue, rel=1e-9)
    assert acc.y_true == [] and acc.empty_column() is None


def test_score_predictions_are_binned_like_the_profile():
    acc = fresh(prediction_edges=np.array([0.25, 0.5]))
    scores = np.array([0.1, 0.25, 0.3, 0.5, 0.9, 0.99])
    acc.add(Chunk(6, {"x": np.ones(6)}, {"c": np.array(["a"] * 6, dtype=object)}, scores))
    assert acc.predictions.tolist() == [2, 2, 2]  # (-inf, .25], (.25, .5], (.5, inf)


def test_labelled_chunks_are_kept_for_the_metrics_and_empty_columns_are_found():
    acc = fresh()
    for n in (2, 3):
        acc.add(
            Chunk(
                n,
                {"x": np.full(n, np.nan)},
                {"c": np.array(["a"] * n, dtype=object)},
                np.zeros(n),
                y_true=np.arange(n),
                y_out=np.full((n, 3), 1 / 3),
            )
        )
    assert [len(y) for y in acc.y_true] == [2, 3] and [y.shape for y in acc.y_out] == [
        (2, 3),
        (3, 3),
    ]
    assert acc.missing["x"] == 5 and acc.empty_column() == "x"
    assert acc.ks["x"].n == 0 and acc.bins["x"].sum() == 0
