"""The quality gate: may a candidate take a stage from its holder, by the configured metric?"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from modelops.errors import RegistryError

if TYPE_CHECKING:
    from modelops.params import GateParams
    from modelops.workspace import Workspace


class Revision(Protocol):
    """What the gate reads of a side: a registered version, or any commit the web pages
    compare (an experiment's)."""

    commit: str
    version: str | None


@dataclass
class Gate:
    metric: str
    candidate: float | None
    holder: float | None
    holder_version: str | None
    tolerance: float
    higher_is_better: bool
    passed: bool
    note: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def metrics_at(ws: Workspace, commit: str) -> dict[str, Any]:
    """The metrics file committed at ``commit`` (path from params.yaml at that commit)."""
    found = ws.json_at(commit, ws.paths_at(commit)["metrics"])
    return found if isinstance(found, dict) else {}


def gate(ws: Workspace, g: GateParams, name: str, cand: Revision, holder: Revision | None) -> Gate:
    """Compare the candidate's committed metrics with the holder's (a missing holder or
    holder metric passes; a candidate without the metric is an error)."""
    from modelops.params import better, higher_is_better, task_of_metrics

    cand_metrics = metrics_at(ws, cand.commit)
    # auto: the candidate's own task decides (f1 for classification, r2 for regression).
    metric = g.metric_for(task_of_metrics(cand_metrics))
    higher = higher_is_better(metric, g.direction)
    if metric not in cand_metrics:
        setting = f"auto ({metric})" if g.metric == "auto" else repr(metric)
        who = f"{name}@{cand.version}" if cand.version else f"commit {cand.commit[:7]}"
        raise RegistryError(
            f"registry.gate.metric: {setting} is not among {who}'s metrics "
            f"({', '.join(sorted(cand_metrics)) or 'none'}); set it in params.yaml"
        )
    c = _number(cand_metrics[metric])
    if c is None:
        who = f"{name}@{cand.version}" if cand.version else f"commit {cand.commit[:7]}"
        raise RegistryError(
            f"gate: {who}'s {metric} is {cand_metrics[metric]!r}, not a finite number; its "
            "metrics file is not the evaluate stage's (re-run `dvc repro` there and register "
            "anew)"
        )
    base = dict(metric=metric, candidate=c, tolerance=g.tolerance, higher_is_better=higher)
    if holder is None:
        return Gate(
            **base,
            holder=None,
            holder_version=None,
            passed=True,
            note="no version holds the stage yet",
        )
    h_metrics = metrics_at(ws, holder.commit)
    h = _number(h_metrics.get(metric))
    if h is None:  # absent, or not a number: an infinite one would pass nobody ever again
        what = "no" if metric not in h_metrics else f"{h_metrics[metric]!r} as its"
        return Gate(
            **base,
            holder=None,
            holder_version=holder.version,
            passed=True,
            note=f"{holder.version} has {what} {metric}; nothing to compare",
        )
    word = "higher" if higher else "lower"
    return Gate(
        **base,
        holder=h,
        holder_version=holder.version,
        passed=better(metric, c, h, g.tolerance, g.direction),
        note=f"{metric} {c:.6g} vs {h:.6g} ({word} is better, tolerance {g.tolerance:g})",
    )


def _number(value: Any) -> float | None:
    """A metric as a finite float; None for text, a boolean, null, NaN or an infinity (a
    metrics file is anyone's input: it comes from the commit)."""
    import math

    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        value = float(value)
    except OverflowError:  # an integer beyond float range
        return None
    return value if math.isfinite(value) else None
