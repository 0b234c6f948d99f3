"""The counts a batch reduces to, one validated chunk at a time (memory does not grow with
the batch); ``check`` feeds it, ``verdict`` reads it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from modelops.monitoring.statistics import KSCounter, sorted_bin_counts

if TYPE_CHECKING:
    import numpy as np

    from modelops.bundle import Model


@dataclass
class Chunk:
    """One validated chunk of a batch, as arrays.

    ``numeric`` holds floats (NaN = missing), ``categorical`` strings (None = missing),
    ``scores`` the model's answer per row (class index, or the score that the
    profile bins); ``y_true``/``y_out`` the known labels and the outputs for them.
    """

    rows: int
    numeric: dict[str, np.ndarray]
    categorical: dict[str, np.ndarray]
    scores: np.ndarray
    y_true: np.ndarray | None = None
    y_out: np.ndarray | None = None


@dataclass
class Accumulator:
    """What the check keeps of a batch, chunk after chunk: counts per feature and bin,
    missing values, category counts, prediction counts and the labelled outputs."""

    edges: dict[str, np.ndarray]  # numeric feature -> the profile's bin edges
    ks: dict[str, KSCounter]  # numeric feature -> KS counts against the profile's sample
    categorical: list[str]
    prediction_edges: np.ndarray | None  # None: predictions are classes, counted per class
    n_classes: int = 0
    rows: int = field(default=0, init=False)
    missing: dict[str, int] = field(init=False)  # feature -> missing cells
    bins: dict[str, np.ndarray] = field(init=False)  # numeric feature -> counts per bin
    categories: dict[str, dict[str, int]] = field(init=False)  # feature -> value -> count
    predictions: np.ndarray = field(init=False)  # counts per class or per score bin
    y_true: list[np.ndarray] = field(default_factory=list, init=False)
    y_out: list[np.ndarray] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        import numpy as np

        self.missing = dict.fromkeys([*self.edges, *self.categorical], 0)
        self.bins = {c: np.zeros(len(e) + 1, dtype=np.int64) for c, e in self.edges.items()}
        self.categories = {c: {} for c in self.categorical}
        size = self.n_classes if self.prediction_edges is None else len(self.prediction_edges) + 1
        self.predictions = np.zeros(size, dtype=np.int64)

    @classmethod
    def for_model(cls, model: Model) -> Accumulator:
        """An empty accumulator for the model's features, in its order, against its profile."""
        import numpy as np

        meta, pred = model.profile["numeric"], model.profile["prediction"]
        samples = {
            c: model.profile_arrays[f"profile_sample_{meta[c]['index']}"]
            for c in model.preprocessor.numeric
        }
        return cls(
            edges={c: np.asarray(meta[c]["edges"], dtype=float) for c in samples},
            ks={c: KSCounter(sample) for c, sample in samples.items()},
            categorical=list(model.preprocessor.categorical),
            prediction_edges=None if pred["kind"] == "class" else np.asarray(pred["edges"]),
            n_classes=len(model.schema.classes or []),
        )

    def add(self, chunk: Chunk) -> None:
        """Count one chunk."""
        import numpy as np

        from modelops.profile import bin_counts

        for col, values in chunk.numeric.items():
            present = np.sort(values[~np.isnan(values)])
            self.missing[col] += len(values) - len(present)
            self.ks[col].add_sorted(present)
            self.bins[col] += sorted_bin_counts(present, self.edges[col])
        for col, raw in chunk.categorical.items():
            counts = self.categories[col]
            values = np.array([v for v in raw if v is not None], dtype=object)
            for v, c in zip(*np.unique(values, return_counts=True), strict=True):
                counts[str(v)] = counts.get(str(v), 0) + int(c)
            self.missing[col] += int(sum(v is None for v in raw))
        if self.prediction_edges is None:
            self.predictions += np.bincount(chunk.scores.astype(int), minlength=self.n_classes)
        else:
            self.predictions += bin_counts(chunk.scores, self.prediction_edges)
        if chunk.y_true is not None:
            self.y_true.append(chunk.y_true)
            self.y_out.append(chunk.y_out)
        self.rows += chunk.rows

    def empty_column(self) -> str | None:
        """The first feature without a single value in the batch, if any."""
        return next((c for c, n in self.missing.items() if n == self.rows), None)
