"""Drift statistics over counts: PSI, a streamed exact KS test, chi-square over categories.

PSI = Σ (a − e)·ln(a / e) over the reference bins, where e and a are the
reference and batch shares, floored at ``EPS`` so that empty bins stay finite.

The KS statistic is exact against the stored reference sample although the
batch is only counted: between two empirical CDFs the supremum of
|F_ref − F_batch| is reached at a jump. Counting, for each reference point r,
the batch values < r and <= r gives F_batch on both sides of every point, and
that is all the supremum needs. The result equals
``scipy.stats.ks_2samp(sample, batch)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

EPS = 1e-4


def psi(expected_counts, actual_counts) -> float:
    """Population stability index of two count vectors over the same bins."""
    import numpy as np

    e = np.asarray(expected_counts, dtype=float)
    a = np.asarray(actual_counts, dtype=float)
    e = np.maximum(e / max(e.sum(), 1.0), EPS)
    a = np.maximum(a / max(a.sum(), 1.0), EPS)
    return float(np.sum((a - e) * np.log(a / e)))


def chi2_pvalue(expected_counts: list, actual_counts: list) -> float | None:
    """Chi-square goodness-of-fit p-value of batch counts against reference counts over the
    same categories (reference shares floored at ``EPS``); None for an empty batch."""
    import numpy as np
    from scipy.stats import chisquare

    exp = np.maximum(np.asarray(expected_counts, float) / max(sum(expected_counts), 1), EPS)
    total = sum(actual_counts)
    if not total:
        return None
    return float(chisquare(np.asarray(actual_counts, float), exp / exp.sum() * total).pvalue)


@dataclass
class KSCounter:
    """Exact two-sample KS statistic against a sorted reference sample, from counts only.

    For each distinct reference value u it accumulates how many batch values are
    < u and <= u. Chunks arrive sorted, so that is two binary searches per
    reference value into the chunk, not one per batch value into the sample.
    """

    ref: np.ndarray
    n: int = 0

    def __post_init__(self) -> None:
        import numpy as np

        self.points = np.unique(self.ref)
        self.below = np.zeros(len(self.points), dtype=np.int64)  # batch values < u
        self.at_or_below = np.zeros(len(self.points), dtype=np.int64)  # batch values <= u

    def add_sorted(self, xs: np.ndarray) -> None:
        self.below += xs.searchsorted(self.points, side="left")
        self.at_or_below += xs.searchsorted(self.points, side="right")
        self.n += len(xs)

    def add(self, x: np.ndarray) -> None:
        import numpy as np

        self.add_sorted(np.sort(x))

    def result(self) -> tuple[float, float]:
        """(statistic, asymptotic two-sided p-value, as scipy's ks_2samp method='asymp')."""
        import numpy as np
        from scipy.stats import kstwo

        m, n = len(self.ref), self.n
        if m == 0 or n == 0:
            return math.nan, math.nan
        # The supremum of |F_ref - F_batch| is at a jump: just below or at a reference value.
        f_ref_le = self.ref.searchsorted(self.points, side="right") / m
        f_ref_lt = self.ref.searchsorted(self.points, side="left") / m
        d = float(
            max(
                np.max(np.abs(f_ref_le - self.at_or_below / n)),
                np.max(np.abs(f_ref_lt - self.below / n)),
            )
        )
        en = m * n / (m + n)
        return d, float(np.clip(kstwo.sf(d, np.round(en)), 0.0, 1.0))


def sorted_bin_counts(xs: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``profile.bin_counts`` for sorted values: one lookup per edge."""
    import numpy as np

    cuts = xs.searchsorted(edges, side="right")
    return np.diff(np.concatenate(([0], cuts, [len(xs)])))


@dataclass
class FeatureDrift:
    """The statistics of one feature in a batch, and the verdict on them."""

    name: str
    kind: str
    psi: float
    missing_rate: float
    reference_missing_rate: float
    ks_statistic: float | None = None
    ks_pvalue: float | None = None
    chi2_pvalue: float | None = None
    unseen: dict[str, int] = field(default_factory=dict)
    status: str = "ok"
    why: list[str] = field(default_factory=list)
