"""Monitoring: data drift, prediction drift and performance decay against a reference profile.

At train time the bundle gets a *reference profile* of the training split
(``modelops.profile``): bin edges and counts, missing rates and a KS sample per
numeric feature, category frequencies, and the distribution of predictions.

``monitor`` streams a batch in chunks and keeps only counts, so memory does
not grow with the batch. The KS statistic is still exact against the stored
sample: between two empirical CDFs the supremum of |F_ref − F_batch| is
reached at a jump. Counting, for each reference point r, the batch values
< r and <= r gives F_batch on both sides of every point, and that is all
the supremum needs. The result equals ``scipy.stats.ks_2samp(sample, batch)``.

PSI = Σ (a − e)·ln(a / e) over the reference bins, where e and a are the
reference and batch shares, floored at ``EPS`` so that empty bins stay finite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from modelops.bundle import Model
    from modelops.params import MonitorParams

EPS = 1e-4


class BatchError(DataError):
    """A batch that cannot be monitored: a data error (exit 4), distinct from 1 for an alert."""


# -- statistics -----------------------------------------------------------------------------
def psi(expected_counts, actual_counts) -> float:
    """Population stability index of two count vectors over the same bins."""
    import numpy as np

    e = np.asarray(expected_counts, dtype=float)
    a = np.asarray(actual_counts, dtype=float)
    e = np.maximum(e / max(e.sum(), 1.0), EPS)
    a = np.maximum(a / max(a.sum(), 1.0), EPS)
    return float(np.sum((a - e) * np.log(a / e)))


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


def _sorted_bin_counts(xs: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``profile.bin_counts`` for sorted values: one lookup per edge."""
    import numpy as np

    cuts = xs.searchsorted(edges, side="right")
    return np.diff(np.concatenate(([0], cuts, [len(xs)])))


# -- monitoring a batch ---------------------------------------------------------------------
@dataclass
class FeatureDrift:
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


def _status(*levels: str) -> str:
    order = {"ok": 0, "warn": 1, "alert": 2}
    return max(levels, key=order.__getitem__) if levels else "ok"


def _psi_status(value: float, p: MonitorParams) -> str:
    return "alert" if value >= p.psi_alert else "warn" if value >= p.psi_warn else "ok"


def monitor(
    model: Model,
    path: Path,
    p: MonitorParams,
    na_values: list[str],
    chunk_rows: int,
    reference_metrics: dict[str, float],
) -> dict[str, Any]:
    """Drift report of the CSV at ``path`` against the model's reference profile."""
    import numpy as np
    from scipy.stats import chisquare

    from modelops import evaluation as ev
    from modelops import inference
    from modelops.data import csv_header, iter_csv
    from modelops.params import higher_is_better, resolve_metric
    from modelops.profile import bin_counts

    profile = model.profile
    if not profile:
        raise BatchError("the model bundle has no reference profile; retrain it with `dvc repro`")
    pre, schema = model.preprocessor, model.schema
    header = csv_header(path, "--batch", BatchError)
    needed = [*pre.numeric, *pre.categorical]
    missing, ignored = inference.columns(header, needed, [schema.target])
    if missing:
        raise BatchError(
            f"--batch {path}: column {missing[0]!r} is missing; the model needs "
            f"{', '.join(needed[:10])}{', ...' if len(needed) > 10 else ''}"
        )
    labelled = schema.target in header
    num_meta = profile["numeric"]
    ks = {
        c: KSCounter(model.profile_arrays[f"profile_sample_{num_meta[c]['index']}"])
        for c in pre.numeric
    }
    edges = {c: np.asarray(num_meta[c]["edges"], dtype=float) for c in pre.numeric}
    bins = {c: np.zeros(len(edges[c]) + 1, dtype=np.int64) for c in pre.numeric}
    missing_n = dict.fromkeys(needed, 0)
    cat_counts: dict[str, dict[str, int]] = {c: {} for c in pre.categorical}
    pred_meta = profile["prediction"]
    k = len(schema.classes or [])
    if pred_meta["kind"] == "class":
        pred_counts = np.zeros(k, dtype=np.int64)
    else:
        pred_counts = np.zeros(len(pred_meta["edges"]) + 1, dtype=np.int64)
    y_true: list[np.ndarray] = []
    y_out: list[np.ndarray] = []
    rows = 0
    strings = [*pre.categorical, *([schema.target] if labelled else [])]
    for line, frame in iter_csv(path, pre.numeric, strings, na_values, chunk_rows):
        line -= 1  # line numbers below are line + 1 + row
        n = len(frame)
        numeric = np.empty((n, len(pre.numeric)))
        for j, col in enumerate(pre.numeric):
            raw = frame[col]
            values, wrong = inference.numeric_column(raw)
            if wrong.any():
                first = int(np.flatnonzero(wrong)[0])
                value = inference.cell(raw.iloc[first])
                raise BatchError(
                    f"--batch {path}: line {line + 1 + first}: {col!r} = {value} "
                    "is not a finite number"
                )
            present = np.sort(values[~np.isnan(values)])
            missing_n[col] += n - len(present)
            ks[col].add_sorted(present)
            bins[col] += _sorted_bin_counts(present, edges[col])
            numeric[:, j] = values
        cats = []
        for col in pre.categorical:
            raw = inference.category_column(frame[col])
            counts = cat_counts[col]
            for v, c in zip(
                *np.unique(
                    np.array([v for v in raw if v is not None], dtype=object), return_counts=True
                ),
                strict=True,
            ):
                counts[str(v)] = counts.get(str(v), 0) + int(c)
            missing_n[col] += int(sum(v is None for v in raw))
            cats.append(raw)
        answers = inference.predict(model, numeric, cats)
        if answers.refused.any():
            first = int(answers.refused.argmax())
            raise BatchError(
                f"--batch {path}: line {line + 1 + first}: {inference.reason(answers, first)[0]}"
            )
        scores = answers.scores()
        if pred_meta["kind"] == "class":
            pred_counts += np.bincount(scores.astype(int), minlength=k)
        else:
            pred_counts += bin_counts(scores, np.asarray(pred_meta["edges"]))
        if labelled:
            target = frame[schema.target]
            if schema.task == "classification":
                codes = schema.encode_labels(target)
                unknown = (codes < 0) & target.notna().to_numpy()
                if unknown.any():
                    first = int(np.flatnonzero(unknown)[0])
                    raise BatchError(
                        f"--batch {path}: target {schema.target!r} has label "
                        f"{target.iloc[first]!r} (line {line + 1 + first}) that the model never "
                        f"saw; its labels are {', '.join(map(str, schema.classes))}"
                    )
                keep = codes >= 0
                y_true.append(codes[keep])
                y_out.append(answers.proba[keep])
            else:
                yv, _ = inference.numeric_column(target)
                keep = np.isfinite(yv)
                y_true.append(yv[keep])
                y_out.append(answers.values[keep])
        rows += n
    if rows == 0:
        raise BatchError(f"--batch {path}: has a header but no rows")
    for col in needed:
        if missing_n[col] == rows:
            raise BatchError(f"--batch {path}: column {col!r} has no values at all")

    features: list[FeatureDrift] = []
    for col in pre.numeric:
        meta = num_meta[col]
        stat, pvalue = ks[col].result()
        f = FeatureDrift(
            col,
            "numeric",
            psi(meta["counts"], bins[col]),
            missing_n[col] / rows,
            meta["missing_rate"],
            stat,
            pvalue,
        )
        features.append(f)
    for col in pre.categorical:
        meta = profile["categorical"][col]
        known = list(meta["freq"])
        batch_counts = cat_counts[col]
        unseen = {c: v for c, v in batch_counts.items() if c not in meta["freq"]}
        expected = [meta["freq"][c] for c in known] + [0]
        actual = [batch_counts.get(c, 0) for c in known] + [sum(unseen.values())]
        exp = np.maximum(np.asarray(expected, float) / max(sum(expected), 1), EPS)
        total = sum(actual)
        chi = (
            chisquare(np.asarray(actual, float), exp / exp.sum() * total).pvalue if total else None
        )
        f = FeatureDrift(
            col,
            "categorical",
            psi(expected, actual),
            missing_n[col] / rows,
            meta["missing_rate"],
            chi2_pvalue=None if chi is None else float(chi),
            unseen=unseen,
        )
        features.append(f)
    for f in features:
        levels = [_psi_status(f.psi, p)]
        if f.psi >= p.psi_warn:
            f.why.append(f"PSI {f.psi:.3f}")
        if f.missing_rate - f.reference_missing_rate > p.missing_rate_increase:
            levels.append("alert")
            f.why.append(
                f"missing {f.missing_rate:.1%} vs {f.reference_missing_rate:.1%} in training"
            )
        if f.unseen:
            share = sum(f.unseen.values()) / rows
            levels.append("alert" if share > p.unseen_share_alert else "warn")
            f.why.append(
                f"{len(f.unseen)} unseen categor{'y' if len(f.unseen) == 1 else 'ies'} "
                f"({share:.1%} of rows)"
            )
        if (
            f.ks_pvalue is not None
            and f.ks_pvalue < p.ks_alpha
            and f.ks_statistic >= p.ks_min_statistic
        ):
            levels.append("warn")
            f.why.append(f"KS {f.ks_statistic:.3f} (p={f.ks_pvalue:.2g})")
        f.status = _status(*levels)

    if pred_meta["kind"] == "class":
        pred_psi = psi(pred_meta["freq"], pred_counts)
    else:
        pred_psi = psi(pred_meta["counts"], pred_counts)
    prediction = {"kind": pred_meta["kind"], "psi": pred_psi, "status": _psi_status(pred_psi, p)}

    performance = None
    if labelled and sum(len(y) for y in y_true):
        yt = np.concatenate(y_true)
        if schema.task == "classification":
            pos = (
                schema.classes.index(schema.positive_class)
                if schema.positive_class is not None
                else None
            )
            current = ev.classification_metrics(yt, np.concatenate(y_out), pos)
        else:
            current = ev.regression_metrics(yt, np.concatenate(y_out))
        metric = resolve_metric(p.metric, schema.task)  # auto: f1 or r2
        if metric not in current:
            metric = next(iter(current))
        higher = higher_is_better(metric)
        ref = reference_metrics.get(metric)
        now = current[metric]
        drop = None if ref is None else (ref - now if higher else now - ref)
        status = "alert" if drop is not None and drop > p.max_metric_drop else "ok"
        performance = {
            "metric": metric,
            "reference": ref,
            "batch": now,
            "drop": drop,
            "status": status,
            "metrics": current,
            "labelled_rows": len(yt),
        }

    drifted = [f for f in features if f.status == "alert"]
    watched = [f for f in features if f.status == "warn"]
    levels = [f.status for f in features] + [prediction["status"]]
    if performance:
        levels.append(performance["status"])
    verdict = _status(*levels)
    parts = []
    if drifted:
        parts.append(
            f"{len(drifted)} feature{'s' if len(drifted) > 1 else ''} drifted "
            f"({', '.join(f.name for f in drifted[:5])})"
        )
    if prediction["status"] != "ok":
        parts.append(f"prediction PSI {pred_psi:.3f}")
    if performance and performance["status"] == "alert":
        parts.append(
            f"{performance['metric']} fell from {performance['reference']:.2f} to "
            f"{performance['batch']:.2f}"
        )
    if verdict == "alert":
        recommendation = "retrain: " + ", ".join(parts)
    elif verdict == "warn":
        recommendation = "watch: " + (
            ", ".join(parts)
            or f"{len(watched)} feature(s) moved ({', '.join(f.name for f in watched[:5])})"
        )
    else:
        recommendation = "no action needed: the batch looks like the training data"
    return {
        "batch": str(path),
        "rows": rows,
        "ignored_columns": ignored,
        "verdict": verdict,
        "recommendation": recommendation,
        "causes": [f.name for f in drifted]
        + (["prediction"] if prediction["status"] == "alert" else [])
        + (["performance"] if performance and performance["status"] == "alert" else []),
        "features": [f.__dict__ for f in features],
        "prediction": prediction,
        "performance": performance,
        "thresholds": p.model_dump(),
    }


# -- rendering ------------------------------------------------------------------------------
def render(report: dict[str, Any], fmt: str) -> str:
    import json

    if fmt == "json":
        return json.dumps(report, indent=2, default=float) + "\n"
    md = fmt == "md"
    lines = [
        f"{'# ' if md else ''}Monitoring {report['batch']} ({report['rows']:,} rows): "
        f"{report['verdict'].upper()}",
        "",
        report["recommendation"],
        "",
    ]
    if report.get("ignored_columns"):
        shown = report["ignored_columns"][:10]
        more = len(report["ignored_columns"]) - len(shown)
        lines += [
            f"ignored columns the model does not use: {', '.join(shown)}"
            + (f" (and {more} more)" if more else ""),
            "",
        ]
    head = ["feature", "status", "PSI", "KS", "KS p", "missing", "train missing", "notes"]
    rows = []
    for f in report["features"]:
        rows.append(
            [
                f["name"],
                f["status"],
                f"{f['psi']:.3f}",
                "" if f["ks_statistic"] is None else f"{f['ks_statistic']:.3f}",
                "" if f["ks_pvalue"] is None else f"{f['ks_pvalue']:.2g}",
                f"{f['missing_rate']:.1%}",
                f"{f['reference_missing_rate']:.1%}",
                "; ".join(f["why"]),
            ]
        )
    pred = report["prediction"]
    rows.append(
        [f"prediction ({pred['kind']})", pred["status"], f"{pred['psi']:.3f}", "", "", "", "", ""]
    )
    if md:
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
    else:
        widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
        lines += ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip()]
        lines += [
            "  ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=True)).rstrip()
            for r in rows
        ]
    perf = report["performance"]
    if perf:
        ref = "n/a" if perf["reference"] is None else f"{perf['reference']:.4f}"
        lines += [
            "",
            f"Performance on {perf['labelled_rows']:,} labelled rows: {perf['metric']} "
            f"{perf['batch']:.4f} (test split: {ref}) -> {perf['status']}",
        ]
    return "\n".join(lines) + "\n"


# -- seeded drifted batches, for the walk-through and the tests ------------------------------
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
            raise BatchError("--shift label needs a binary classification model")
        share = 0.9 if strength is None else strength
        if not 0 <= share <= 1:
            raise BatchError(
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
            raise BatchError(
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
            raise BatchError(
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
