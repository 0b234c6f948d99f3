"""Compare the workspace with a revision or a stage's holder: params, metrics, gate, plots."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from modelops.errors import UsageError

if TYPE_CHECKING:
    from modelops.params import GateParams
    from modelops.workspace import Workspace


def resolve_against(ws: Workspace, against: str) -> tuple[str, str]:
    """(label, commit) for a revision or ``NAME#STAGE``."""
    from modelops import registry as reg

    if "#" in against:
        name, _, stage = against.partition("#")
        name = reg.default_name(ws, name or None)  # "#prod" means the declared model's prod
        info = reg.resolve(reg.state(ws), name, stage=stage)
        return f"{against} ({name}@{info.version})", info.commit
    try:
        return against, ws.commit_of(against)
    except Exception:
        raise UsageError(f"--against {against!r} is not a revision or NAME#STAGE here") from None


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _verdict(gate: GateParams, against: str, by_name: dict[str, Any]) -> dict[str, Any] | None:
    """The gate's verdict on the workspace's metric against ``against``'s (None without one)."""
    from modelops.params import better, higher_is_better, task_of_metrics

    # auto: f1 or r2, by the task the workspace's metrics were written for
    metric = gate.metric_for(
        task_of_metrics([n for n, m in by_name.items() if m["new"] is not None])
    )
    m = by_name.get(metric)
    if m is None or m["new"] is None:
        return None
    if m["old"] is None:
        passed, note = True, f"{against} has no {metric}"
    else:
        passed = better(metric, m["new"], m["old"], gate.tolerance, gate.direction)
        word = "higher" if higher_is_better(metric, gate.direction) else "lower"
        note = (
            f"{metric} {m['new']:.6g} vs {m['old']:.6g} "
            f"({word} is better, tolerance {gate.tolerance:g})"
        )
    return {"metric": metric, "passed": passed, "note": note}


def build(ws: Workspace, against: str, gate: GateParams, plots_dir: str | None) -> dict[str, Any]:
    """The report as data (the md and json formats render this)."""
    import subprocess
    import sys

    label, commit = resolve_against(ws, against)
    params = []
    for changes in ws.dvc.params.diff(a_rev=commit).get("diff", {}).values():
        for key, d in sorted(changes.items()):
            if not key.startswith("paths."):
                params.append({"key": key, "old": d.get("old"), "new": d.get("new")})
    metrics = []
    for changes in ws.dvc.metrics.diff(a_rev=commit, all=True).get("diff", {}).values():
        for name, d in sorted(changes.items()):
            old, new = _number(d.get("old")), _number(d.get("new"))
            delta = new - old if old is not None and new is not None else None
            metrics.append({"name": name, "old": old, "new": new, "delta": delta})
    verdict = _verdict(gate, against, {m["name"]: m for m in metrics})
    plots = None
    if plots_dir:
        proc = subprocess.run(
            [sys.executable, "-m", "dvc", "plots", "diff", commit, "-o", plots_dir],
            cwd=ws.root,
            capture_output=True,
            text=True,
        )
        if proc.returncode == 0:
            plots = f"{plots_dir}/index.html"
    return {
        "workspace": ws.head(),
        "against": {"ref": label, "commit": commit},
        "params": params,
        "metrics": metrics,
        "gate": verdict,
        "plots": plots,
    }


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}"
    return json.dumps(v) if not isinstance(v, str) else v


def markdown(report: dict[str, Any]) -> str:
    a = report["against"]
    lines = [f"## Model report: workspace against {a['ref']} ({a['commit'][:8]})", ""]
    if report["gate"]:
        g = report["gate"]
        lines += [
            f"**Gate ({g['metric']}): {'passed' if g['passed'] else 'FAILED'}**: {g['note']}",
            "",
        ]
    lines += ["### Metrics", "", "| metric | old | new | delta |", "|---|---|---|---|"]
    for m in report["metrics"]:
        delta = "—" if m["delta"] is None else f"{m['delta']:+.4g}"
        lines.append(f"| {m['name']} | {_fmt(m['old'])} | {_fmt(m['new'])} | {delta} |")
    lines += ["", "### Params changed", ""]
    if report["params"]:
        lines += ["| param | old | new |", "|---|---|---|"]
        lines += [f"| {p['key']} | {_fmt(p['old'])} | {_fmt(p['new'])} |" for p in report["params"]]
    else:
        lines.append("none")
    if report["plots"]:
        lines += ["", f"Plots: [{report['plots']}]({report['plots']}) (`dvc plots diff`)"]
    return "\n".join(lines) + "\n"
