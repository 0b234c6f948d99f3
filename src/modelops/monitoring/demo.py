"""Seeded drifted batches drawn from the prepared data, for the walk-through and the tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelops.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

    from modelops.bundle import Model

SHIFTS = ("none", "mean", "scale", "category", "label")


def make_batch(
    frame: pd.DataFrame,
    model: Model,
    shift: str,
    feature: str | None,
    strength: float | None,
    rows: int,
    seed: int,
    with_target: bool,
) -> pd.DataFrame:
    """Sample ``rows`` rows of ``frame`` (the prepared data) and apply one kind of shift."""
    import numpy as np

    pre, schema = model.preprocessor, model.schema
    rng = np.random.default_rng(seed)
    if shift == "label":
        if schema.task != "classification" or schema.positive_class is None:
            raise UsageError("--shift label needs a binary classification model")
        share = 0.9 if strength is None else strength
        if not 0 <= share <= 1:
            raise UsageError(
                f"--strength {share}: for --shift label it is the positive share, 0..1"
            )
        pos = np.flatnonzero((frame[schema.target] == schema.positive_class).to_numpy())
        neg = np.flatnonzero((frame[schema.target] != schema.positive_class).to_numpy())
        n_pos = round(rows * share)
        idx = np.concatenate([rng.choice(pos, n_pos), rng.choice(neg, rows - n_pos)])
        out = frame.iloc[rng.permutation(idx)].reset_index(drop=True)
    else:
        out = frame.iloc[rng.integers(0, len(frame), rows)].reset_index(drop=True)
    if shift in ("mean", "scale"):
        col = feature or (pre.numeric[0] if pre.numeric else None)
        if col not in pre.numeric:
            raise UsageError(
                f"--feature {col!r} is not a numeric feature of the model "
                f"({', '.join(pre.numeric[:8])})"
            )
        values = out[col].astype(float)
        mean, std = float(frame[col].mean()), float(frame[col].std()) or 1.0
        if shift == "mean":
            out[col] = values + (1.0 if strength is None else strength) * std
        else:
            out[col] = mean + (values - mean) * (1.0 + (1.0 if strength is None else strength))
    elif shift == "category":
        col = feature or (pre.categorical[0] if pre.categorical else None)
        if col not in pre.categorical:
            raise UsageError(
                "--shift category needs a categorical feature; this model has "
                + (", ".join(pre.categorical) or "none")
            )
        counts = frame[col].astype("string").value_counts()
        rarest = str(counts.idxmin())
        share = 0.5 if strength is None else strength
        moved = rng.random(rows) < share
        out.loc[moved, col] = rarest
    if not with_target:
        out = out.drop(columns=[schema.target])
    return out
