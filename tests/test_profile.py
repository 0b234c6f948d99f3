"""The reference profile: bin edges against numpy's exact quantiles."""

from __future__ import annotations

import numpy as np

from modelops.profile import EDGE_SAMPLE, bin_edges


def test_bin_edges_of_a_large_column_come_from_a_sample_and_stay_deciles():
    values = np.random.default_rng(1).normal(size=3 * EDGE_SAMPLE)
    edges = bin_edges(values, np.random.default_rng(0))
    ranks = (values[:, None] <= edges).mean(axis=0)
    np.testing.assert_allclose(ranks, np.linspace(0.1, 0.9, 9), atol=0.005)
    small = values[:1000]  # below the sample size: exact quantiles
    np.testing.assert_array_equal(
        bin_edges(small, np.random.default_rng(0)), np.quantile(small, np.linspace(0, 1, 11)[1:-1])
    )
