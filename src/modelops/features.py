"""Preprocessing fitted on the training split only: impute, scale, one-hot.

The fitted state is plain arrays and lists, so a bundle stores it without
pickle. Unknown or missing categories encode as all zeros (the model sees
"none of the known categories"), which is how serving and batch prediction
handle categories that training never saw.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


# A design matrix larger than this is built in a mapped scratch file when the caller (the train
# and evaluate stages) gives a folder for one; smaller ones stay in memory.
IN_MEMORY_BYTES = 256 << 20


def _onehot(values: Any, cats: list[str], out: np.ndarray) -> None:
    """Set ``out`` (rows x categories, zeros) to the one-hot code of ``values``; missing and
    unseen values get no column."""
    import numpy as np
    import pandas as pd  # only for text columns

    codes = pd.Index(cats).get_indexer(values)
    rows = np.flatnonzero(codes >= 0)
    out[rows, codes[rows]] = 1.0


@dataclass
class Preprocessor:
    """Numeric columns: impute then standardise. String columns: one-hot."""

    numeric: list[str]
    categorical: list[str]
    impute: str = "median"
    scale: bool = True
    fill_: np.ndarray | None = None
    mean_: np.ndarray | None = None
    scale_: np.ndarray | None = None
    categories_: list[list[str]] = field(default_factory=list)

    def fit(self, frame: pd.DataFrame) -> Preprocessor:
        import numpy as np

        d = len(self.numeric)
        self.fill_, self.mean_, self.scale_ = np.zeros(d), np.zeros(d), np.ones(d)
        # Column by column: the temporaries are one column, not copies of the matrix.
        for j, name in enumerate(self.numeric):
            col = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
            missing = np.isnan(col)
            present = col[~missing] if missing.any() else col
            if len(present):
                stat = np.median(present) if self.impute == "median" else present.mean()
                self.fill_[j] = np.nan_to_num(stat)
            if self.scale:
                col = np.where(missing, self.fill_[j], col)
                self.mean_[j] = col.mean()
                std = col.std()
                self.scale_[j] = std if std > 0 else 1.0
        self.categories_ = [
            sorted(str(v) for v in frame[c].dropna().unique()) for c in self.categorical
        ]
        return self

    def transform(
        self, frame: pd.DataFrame, dtype: str = "float64", scratch: Path | None = None
    ) -> np.ndarray:
        """Return the design matrix (numeric block, then one-hot blocks); statistics stay
        float64 and ``dtype`` is only the matrix's (float32 for float32 training). With
        ``scratch`` (a directory), a matrix of more than ``IN_MEMORY_BYTES`` is a mapped
        scratch file there rather than the process's memory; its values are the same."""
        import numpy as np

        width = len(self.numeric) + sum(map(len, self.categories_))
        shape = (len(frame), width)
        if scratch is not None and shape[0] * width * np.dtype(dtype).itemsize > IN_MEMORY_BYTES:
            from modelops.files import scratch_array

            X = scratch_array(shape, dtype, scratch)
        else:
            X = np.zeros(shape, dtype=dtype)
        d = len(self.numeric)
        for j, name in enumerate(self.numeric):
            X[:, j] = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
        self._scale(X[:, :d] if width > d else X)
        for (values, cats), block in zip(
            (
                (frame[c].astype("string").to_numpy(object), cats)
                for c, cats in zip(self.categorical, self.categories_, strict=True)
            ),
            self._blocks(X, d),
            strict=True,
        ):
            _onehot(values, cats, block)
        return X

    def _blocks(self, X: np.ndarray, start: int):
        """Each text column's one-hot block of ``X``: a view, in the order of ``categorical``."""
        for cats in self.categories_:
            yield X[:, start : start + len(cats)]
            start += len(cats)

    def _scale(self, X: np.ndarray) -> None:
        """Impute and standardise the numeric block in place (it may be a view)."""
        import numpy as np

        np.copyto(X, self.fill_, where=np.isnan(X))
        X -= self.mean_
        X /= self.scale_

    def transform_arrays(
        self, numeric: np.ndarray, categorical: list, copy: bool = True
    ) -> np.ndarray:
        """The same from a float matrix (NaN = missing) and one value array per string column;
        ``copy=False`` transforms ``numeric`` in place (no second matrix in memory)."""
        import numpy as np

        X = np.array(numeric, dtype=np.float64) if copy else numeric
        self._scale(X)
        blocks = [X]
        for values, cats in zip(categorical, self.categories_, strict=True):
            onehot = np.zeros((len(X), len(cats)), dtype=X.dtype)
            _onehot(values, cats, onehot)
            blocks.append(onehot)
        return np.hstack(blocks) if len(blocks) > 1 else X

    @property
    def feature_names_out(self) -> list[str]:
        names = list(self.numeric)
        for col, cats in zip(self.categorical, self.categories_, strict=True):
            names += [f"{col}={c}" for c in cats]
        return names

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-able metadata, arrays) for the bundle."""
        meta = {
            "numeric": self.numeric,
            "categorical": self.categorical,
            "impute": self.impute,
            "scale": self.scale,
            "categories": self.categories_,
        }
        arrays = {"pre_fill": self.fill_, "pre_mean": self.mean_, "pre_scale": self.scale_}
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Preprocessor:
        return cls(
            numeric=list(meta["numeric"]),
            categorical=list(meta["categorical"]),
            impute=meta["impute"],
            scale=meta["scale"],
            fill_=arrays["pre_fill"],
            mean_=arrays["pre_mean"],
            scale_=arrays["pre_scale"],
            categories_=[list(c) for c in meta["categories"]],
        )
