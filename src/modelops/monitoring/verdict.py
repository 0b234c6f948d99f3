"""Verdicts: pure functions from a batch's counts (an ``Accumulator``), the model's
reference profile and the thresholds (``MonitorParams``) to the drift report.

Nothing here reads a file: the tests give them tiny arrays.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from modelops.monitoring.statistics import FeatureDrift, chi2_pvalue, psi

if TYPE_CHECKING:
    import numpy as np

    from modelops.data import Schema
    from modelops.monitoring.accumulator import Accumulator
    from modelops.params import MonitorParams

LEVELS = {"ok": 0, "warn": 1, "alert": 2}


def worst(*levels: str) -> str:
    """The most severe of ``levels`` ("ok" if there are none)."""
    return max(levels, key=LEVELS.__getitem__) if levels else "ok"


def psi_status(value: float, p: MonitorParams) -> str:
    return "alert" if value >= p.psi_alert else "warn" if value >= p.psi_warn else "ok"


def numeric_drift(
    name: str, meta: dict[str, Any], bins: np.ndarray, missing: int, rows: int, ks: tuple
) -> FeatureDrift:
    """The statistics of a numeric feature: its bin counts against the profile's, and the
    KS (statistic, p-value) against the profile's sample."""
    stat, pvalue = ks
    return FeatureDrift(
        name,
        "numeric",
        psi(meta["counts"], bins),
        missing / rows,
        meta["missing_rate"],
        stat,
        pvalue,
    )


def categorical_drift(
    name: str, meta: dict[str, Any], counts: dict[str, int], missing: int, rows: int
) -> FeatureDrift:
    """The statistics of a categorical feature; values the profile never saw share one
    extra bin."""
    known = list(meta["freq"])
    unseen = {c: v for c, v in counts.items() if c not in meta["freq"]}
    expected = [meta["freq"][c] for c in known] + [0]
    actual = [counts.get(c, 0) for c in known] + [sum(unseen.values())]
    return FeatureDrift(
        name,
        "categorical",
        psi(expected, actual),
        missing / rows,
        meta["missing_rate"],
        chi2_pvalue=chi2_pvalue(expected, actual),
        unseen=unseen,
    )


def judge(f: FeatureDrift, rows: int, p: MonitorParams) -> FeatureDrift:
    """``f`` with its status and the reasons for it under the thresholds ``p``."""
    levels, why = [psi_status(f.psi, p)], []
    if f.psi >= p.psi_warn:
        why.append(f"PSI {f.psi:.3f}")
    if f.missing_rate - f.reference_missing_rate > p.missing_rate_increase:
        levels.append("alert")
        why.append(f"missing {f.missing_rate:.1%} vs {f.reference_missing_rate:.1%} in training")
    if f.unseen:
        share = sum(f.unseen.values()) / rows
        levels.append("alert" if share > p.unseen_share_alert else "warn")
        why.append(
            f"{len(f.unseen)} unseen categor{'y' if len(f.unseen) == 1 else 'ies'} "
            f"({share:.1%} of rows)"
        )
    if (
        f.ks_pvalue is not None
        and f.ks_pvalue < p.ks_alpha
        and f.ks_statistic >= p.ks_min_statistic
    ):
        levels.append("warn")
        why.append(f"KS {f.ks_statistic:.3f} (p={f.ks_pvalue:.2g})")
    return replace(f, status=worst(*levels), why=why)


def features(acc: Accumulator, profile: dict[str, Any], p: MonitorParams) -> list[FeatureDrift]:
    """Every feature's statistics and verdict, numeric features first, in the model's order."""
    drifts = [
        numeric_drift(
            c, profile["numeric"][c], acc.bins[c], acc.missing[c], acc.rows, acc.ks[c].result()
        )
        for c in acc.edges
    ] + [
        categorical_drift(c, profile["categorical"][c], acc.categories[c], acc.missing[c], acc.rows)
        for c in acc.categorical
    ]
    return [judge(f, acc.rows, p) for f in drifts]


def prediction_drift(meta: dict[str, Any], counts: np.ndarray, p: MonitorParams) -> dict:
    """PSI of the batch's predictions against the profile's (class frequencies or score bins)."""
    value = psi(meta["freq"] if meta["kind"] == "class" else meta["counts"], counts)
    return {"kind": meta["kind"], "psi": value, "status": psi_status(value, p)}


def resolve_metric(requested: str, task: str, current: dict[str, float]) -> str:
    """The metric performance is judged on: ``monitor.metric`` (auto: f1 or r2 by task) if
    the task has it, else the task's first."""
    from modelops.params import resolve_metric as by_task

    metric = by_task(requested, task)
    return metric if metric in current else next(iter(current))


def metric_drop(metric: str, reference: float | None, now: float) -> float | None:
    """How much worse ``now`` is than ``reference`` (negative: better); None without one."""
    from modelops.params import higher_is_better

    if reference is None:
        return None
    return reference - now if higher_is_better(metric) else now - reference


def performance(
    task: str,
    positive: int | None,
    y_true: np.ndarray,
    y_out: np.ndarray,
    reference_metrics: dict[str, float],
    p: MonitorParams,
) -> dict[str, Any]:
    """Metrics on the labelled rows (``y_out``: probabilities or values) and whether the
    chosen one fell by more than ``p.max_metric_drop`` from the test split's."""
    from modelops import evaluation as ev

    if task == "classification":
        current = ev.classification_metrics(y_true, y_out, positive)
    else:
        current = ev.regression_metrics(y_true, y_out)
    metric = resolve_metric(p.metric, task, current)
    ref = reference_metrics.get(metric)
    now = current[metric]
    if not math.isfinite(now):
        # undefined on this batch (r2 of one labelled row, or of a constant target): JSON has
        # no NaN, so null; a "warn" that says so, as it neither shows a fall nor rules one out
        return {
            "metric": metric,
            "reference": ref,
            "batch": None,
            "drop": None,
            "status": "warn",
            "metrics": {k: v if math.isfinite(v) else None for k, v in current.items()},
            "labelled_rows": len(y_true),
        }
    drop = metric_drop(metric, ref, now)
    return {
        "metric": metric,
        "reference": ref,
        "batch": now,
        "drop": drop,
        "status": "alert" if drop is not None and drop > p.max_metric_drop else "ok",
        "metrics": {k: v if math.isfinite(v) else None for k, v in current.items()},
        "labelled_rows": len(y_true),
    }


def recommendation(
    features: list[FeatureDrift], prediction: dict, performance: dict | None
) -> tuple[str, str]:
    """(verdict, the one line that says what to do and why)."""
    drifted = [f for f in features if f.status == "alert"]
    watched = [f for f in features if f.status == "warn"]
    levels = [f.status for f in features] + [prediction["status"]]
    if performance:
        levels.append(performance["status"])
    verdict = worst(*levels)
    parts = []
    if drifted:
        parts.append(
            f"{len(drifted)} feature{'s' if len(drifted) > 1 else ''} drifted "
            f"({', '.join(f.name for f in drifted[:5])})"
        )
    if prediction["status"] != "ok":
        parts.append(f"prediction PSI {prediction['psi']:.3f}")
    if performance and performance["status"] == "alert":
        parts.append(
            f"{performance['metric']} fell from {performance['reference']:.2f} to "
            f"{performance['batch']:.2f}"
        )
    if performance and performance["batch"] is None:
        parts.append(
            f"{performance['metric']} is not defined on the batch's "
            f"{performance['labelled_rows']:,} labelled row(s)"
        )
    if verdict == "alert":
        return verdict, "retrain: " + ", ".join(parts)
    if verdict == "warn":
        return verdict, "watch: " + (
            ", ".join(parts)
            or f"{len(watched)} feature(s) moved ({', '.join(f.name for f in watched[:5])})"
        )
    return verdict, "no action needed: the batch looks like the training data"


def report(
    acc: Accumulator,
    profile: dict[str, Any],
    schema: Schema,
    p: MonitorParams,
    reference_metrics: dict[str, float],
    batch: str,
    ignored: list[str],
) -> dict[str, Any]:
    """The drift report of a counted batch."""
    import numpy as np

    drifts = features(acc, profile, p)
    prediction = prediction_drift(profile["prediction"], acc.predictions, p)
    perf = None
    if sum(len(y) for y in acc.y_true):
        positive = (
            schema.classes.index(schema.positive_class)
            if schema.positive_class is not None
            else None
        )
        y_true, y_out = np.concatenate(acc.y_true), np.concatenate(acc.y_out)
        perf = performance(schema.task, positive, y_true, y_out, reference_metrics, p)
    verdict, advice = recommendation(drifts, prediction, perf)
    return {
        "batch": batch,
        "rows": acc.rows,
        "ignored_columns": ignored,
        "verdict": verdict,
        "recommendation": advice,
        "causes": [f.name for f in drifts if f.status == "alert"]
        + (["prediction"] if prediction["status"] == "alert" else [])
        + (["performance"] if perf and perf["status"] == "alert" else []),
        "features": [f.__dict__ for f in drifts],
        "prediction": prediction,
        "performance": perf,
        "thresholds": p.model_dump(),
    }
