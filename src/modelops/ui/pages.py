"""What each page shows: plain dicts read from the registry's read model, one
``git for-each-ref`` per page (``registry.state``), plus the files a commit holds, read through
one ``git cat-file --batch`` process (``Workspace.show``)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelops import registry as reg
from modelops.errors import RegistryError, UsageError, WorkspaceError

if TYPE_CHECKING:
    from modelops.params import GateParams
    from modelops.registry.state import State
    from modelops.workspace import Workspace

_COMMIT = re.compile(r"[0-9a-f]{7,40}")
# DVC's own queue and executor refs live beside the experiments; they are not experiments.
_NOT_EXPERIMENTS = ("refs/exps/exec/", "refs/exps/celery/", "refs/exps/temp/")


def board(ws: Workspace, st: State | None = None) -> dict[str, Any]:
    """Every model: its stages with their holders, its versions highest first (retired ones
    apart), and the metrics each version recorded."""
    st = st or reg.state(ws)
    models = []
    for name in st.names():
        versions = [info.to_dict() for info in st.versions(name).values()]
        metrics = sorted({k for v in versions for k in v["metrics"]})
        models.append(
            {
                "name": name,
                "stages": [
                    {"stage": s, "holder": st.holder(name, s)} for s in st.stages_used(name)
                ],
                "active": [v for v in versions if not v["retired"]],
                "retired": [v for v in versions if v["retired"]],
                "metrics": metrics,
            }
        )
    return {"models": models}


def version(ws: Workspace, name: str, version: str) -> dict[str, Any]:
    """One version: lineage, metrics, the model card its commit holds, its events, the drift
    every version recorded, and the stage holders it can be compared with."""
    st = reg.state(ws)
    info = reg.need_version(st, reg.check_name(name), reg.check_version(version))
    card = _card(ws.json_at(info.commit, ws.paths_at(info.commit)["card"] + ".json"))
    lineage = info.lineage
    holders = [
        {"stage": s, "holder": h}
        for s in st.stages_used(info.name)
        if (h := st.holder(info.name, s)) and h != info.version
    ]
    return {
        **info.to_dict(),
        "model": _dict(lineage.get("model")),
        "data": _flat(_dict(lineage.get("data"))),
        "params": _flat(_dict(lineage.get("params"))),
        "card": card,
        "card_rows": _card_rows(card),
        "events": [e.to_dict() for e in st.of(info.name) if e.version == info.version],
        "charts": charts(ws, [(info.version, info.commit)]),
        "drift": drift(ws, st, info.name),
        "holders": holders,
    }


def _dict(value: Any) -> dict[str, Any]:
    """A section of a tag message or a committed file: anyone's input, so maybe not a mapping."""
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _card(card: Any) -> dict[str, Any]:
    """The model card with the shapes the page reads (lists of names, rows of importance)."""
    card = _dict(card)
    features = _dict(card.get("features"))
    importance = card.get("importance") if isinstance(card.get("importance"), list) else []
    return {
        **card,
        "features": {
            "numeric": [str(n) for n in _list(features.get("numeric"))],
            "categorical": {
                str(col): [str(c) for c in _list(cats)]
                for col, cats in _dict(features.get("categorical")).items()
            },
            "dropped": {str(col): str(why) for col, why in _dict(features.get("dropped")).items()},
        },
        "importance": [
            r for r in importance if isinstance(r, dict) and {"feature", "importance"} <= set(r)
        ],
    }


def _card_rows(card: dict[str, Any]) -> list[tuple[str, Any]]:
    """The model card's facts beyond lineage and metrics: the model, the data (target, classes,
    rows, source), training and the library versions that made it."""
    rows: list[tuple[str, Any]] = []
    for section in ("model", "data", "training", "versions"):
        value = card.get(section)
        if isinstance(value, dict):
            rows += [(k, v) for k, v in _flat(value, f"{section}.") if k != "model.path"]
    return rows


def drift(ws: Workspace, st: State, name: str) -> dict[str, Any]:
    """What the monitor stage recorded (``paths.drift``) at each version's commit, oldest
    version first: one row per version, one point per batch file for the chart. The files are
    read in one batch at the path params.yaml names now; a version whose commit has no file
    there is looked up at the path its own params.yaml names."""
    infos = list(reversed(st.versions(name).values()))
    now = ws.paths_at("HEAD").get("drift") if ws.blob("HEAD", "params.yaml") else None
    raw = ws.blobs([(i.commit, now) for i in infos]) if now else [None] * len(infos)
    rows, points = [], []
    for info, data in zip(infos, raw, strict=True):
        if data is None:
            try:
                own = ws.paths_at(info.commit).get("drift")
            except WorkspaceError:  # params.yaml at that commit is not YAML
                own = None
            summary = ws.json_at(info.commit, own) if own and own != now else None
        else:
            summary = _json(data)
        if not isinstance(summary, dict):
            rows.append({"version": info.version, "recorded": False})
            continue
        files = summary.get("files") if isinstance(summary.get("files"), dict) else {}
        batches = {f: e for f, e in files.items() if isinstance(e, dict)}
        psi = [e["max_psi"] for e in batches.values() if _number(e.get("max_psi"))]
        rows.append(
            {
                "version": info.version,
                "recorded": True,
                "batches": summary.get("batches"),
                "alerts": summary.get("alerts"),
                "warnings": summary.get("warnings"),
                "max_psi": max(psi) if psi else None,
                "files": sorted(batches),
            }
        )
        points += [
            {"version": info.version, "batch": f, "max_psi": e["max_psi"]}
            for f, e in batches.items()
            if _number(e.get("max_psi"))
        ]
    spec = None
    if points:
        spec = {
            "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
            "data": {"values": points},
            "width": 360,
            "height": 200,
            "mark": {"type": "line", "point": True},
            "encoding": {
                "x": {"field": "version", "type": "ordinal", "sort": None},
                "y": {"field": "max_psi", "type": "quantitative", "title": "max PSI"},
                "color": {"field": "batch", "type": "nominal"},
            },
        }
    return {"rows": rows, "spec": spec}


# -- compare ----------------------------------------------------------------------------------
@dataclass
class Side:
    """One side of a comparison: a registered version or any commit (an experiment's)."""

    ref: str  # what links carry: NAME@vX.Y.Z, an experiment's name or a commit
    label: str  # what the page shows
    commit: str
    version: str | None = None
    name: str | None = None


def experiment_names(ws: Workspace) -> dict[str, str]:
    """Experiment name -> commit, for the experiments DVC keeps (``refs/exps/...``)."""
    out = ws.run_git("for-each-ref", "refs/exps", "--format=%(objectname) %(refname)")
    names: dict[str, str] = {}
    for line in out.splitlines():
        commit, _, ref = line.partition(" ")
        if not ref.startswith(_NOT_EXPERIMENTS):
            names.setdefault(ref.rsplit("/", 1)[-1], commit)
    return names


def side(ws: Workspace, st: State, ref: str, exps: dict[str, str]) -> Side:
    """``ref`` as NAME@vX.Y.Z (registered), an experiment's name, or a commit id."""
    if "@" in ref:
        name, _, v = ref.partition("@")
        info = reg.need_version(st, reg.check_name(name), reg.check_version(v))
        return Side(ref, ref, info.commit, info.version, info.name)
    if _COMMIT.fullmatch(ref):  # a commit id first: an experiment cannot take its name
        try:
            commit = ws.commit_of(ref)
        except WorkspaceError:
            commit = ""
        if commit:
            label = next((n for n, c in exps.items() if c == commit), ref[:7])
            return Side(ref, label, commit)
    if ref in exps:
        return Side(ref, ref, exps[ref])
    raise UsageError(
        f"compare: {ref!r} is not a registered NAME@vX.Y.Z, an experiment of this repository "
        f"or a commit id"
    )


def compare(ws: Workspace, a: str, b: str, gate_params: GateParams) -> dict[str, Any]:
    """``b`` against ``a``: the params that differ, every metric with old, new and delta, the
    gate's verdict on ``b`` taking a stage from ``a``, and both sides' curves in one chart."""
    from modelops.params import higher_is_better

    st = reg.state(ws)
    exps = experiment_names(ws) if not ("@" in a and "@" in b) else {}
    old, new = side(ws, st, a, exps), side(ws, st, b, exps)
    if old.label == new.label:
        new.label += " (b)"  # the charts tell revisions apart by label
    old_m, new_m = reg.metrics_at(ws, old.commit), reg.metrics_at(ws, new.commit)
    metrics = []
    for key in sorted(set(old_m) | set(new_m)):
        o, n = old_m.get(key), new_m.get(key)
        delta = n - o if _number(o) and _number(n) else None
        improved = None if not delta else (delta > 0) == higher_is_better(key)
        metrics.append({"metric": key, "old": o, "new": n, "delta": delta, "improved": improved})
    old_p = dict(_flat(ws.yaml_at(old.commit, "params.yaml") or {}))
    new_p = dict(_flat(ws.yaml_at(new.commit, "params.yaml") or {}))
    keys = sorted(set(old_p) | set(new_p))
    differ = [
        (k, old_p.get(k, "–"), new_p.get(k, "–"))
        for k in keys
        if old_p.get(k, _NO) != new_p.get(k, _NO)
    ]
    try:
        name = new.name or old.name or reg.default_name(ws, None)
        verdict: dict[str, Any] = reg.gate(ws, gate_params, name, new, old).to_dict()
    except RegistryError as exc:
        verdict = {"passed": None, "note": str(exc)}
    return {
        "a": old,
        "b": new,
        "metrics": metrics,
        "params": differ,
        "same_params": len(keys) - len(differ),
        "gate": verdict,
        "charts": charts(ws, [(old.label, old.commit), (new.label, new.commit)]),
    }


_NO = object()


# -- experiments ------------------------------------------------------------------------------
def experiments(ws: Workspace, metrics_file: str, params_file: str = "params.yaml") -> dict:
    """The current commit's experiments as ``dvc exp show`` lists them: the baseline first,
    then each experiment with its state, the metrics of ``metrics_file`` and the params that
    differ between rows. The best value of each metric among finished rows is marked."""
    from dvc.repo import Repo

    from modelops.params import higher_is_better

    # sha_only (`dvc exp show --sha`): DVC would otherwise name the baseline by reading every
    # tag, and a registry has many; the current branch is the name DVC would pick anyway.
    with Repo(str(ws.root)) as repo:
        states = [s.dumpd() for s in repo.experiments.show(hide_workspace=True, sha_only=True)]
    ref = ws.current_ref()
    rows = []
    for base in states:
        name = ref if ref != base["rev"] else base["rev"][:7]
        rows.append(_exp_row(base, name, "baseline", "success"))
        for exp in base.get("experiments") or []:
            revs = exp.get("revs") or []
            if not revs:
                continue
            state = ((exp.get("executor") or {}).get("state") or "success").lower()
            if revs[-1].get("error"):
                state = "failed"
            rows.append(_exp_row(revs[-1], exp.get("name") or revs[-1]["rev"][:7], "exp", state))
    for r in rows:
        r["metrics"] = _leaves(r.pop("_metrics").get(metrics_file) or {})
        r["params"] = dict(_flat(r.pop("_params").get(params_file) or {}))
    metric_keys = sorted({k for r in rows for k in r["metrics"]})
    param_keys = sorted({k for r in rows for k in r["params"]})
    varying = [k for k in param_keys if len({repr(r["params"].get(k)) for r in rows}) > 1]
    best: dict[str, float] = {}
    for key in metric_keys:
        values = [
            r["metrics"][key]
            for r in rows
            if r["state"] == "success" and _number(r["metrics"].get(key))
        ]
        if values:
            best[key] = max(values) if higher_is_better(key) else min(values)
    return {
        "rows": rows,
        "metric_keys": metric_keys,
        "param_keys": varying,
        "hidden_params": len(param_keys) - len(varying),
        "best": best,
    }


def _exp_row(state: dict[str, Any], name: str, kind: str, status: str) -> dict[str, Any]:
    data = state.get("data") or {}
    return {
        "name": name,
        "rev": state["rev"],
        "kind": kind,
        "state": status,
        "created": data.get("timestamp") or "",
        "_metrics": {
            f: (v or {}).get("data") or {} for f, v in (data.get("metrics") or {}).items()
        },
        "_params": {f: (v or {}).get("data") or {} for f, v in (data.get("params") or {}).items()},
    }


# -- charts -----------------------------------------------------------------------------------
def charts(ws: Workspace, revs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Every plot dvc.yaml declares at the revisions (its top-level ``plots:``, and the loss
    per epoch that train writes), as the Vega-Lite spec `dvc plots diff` draws: DVC's own
    template filled with each revision's data file, told apart by label. A plot without data
    at any revision has no spec."""

    declared: dict[tuple[str, str], tuple[Any, Any, Any]] = {}  # (title, file) -> template, x, y
    for _, commit in revs:
        loss = ws.paths_at(commit).get("loss")
        if loss:
            declared.setdefault(("Loss per epoch", loss), ("linear", "epoch", "loss"))
        dvc_yaml = ws.yaml_at(commit, "dvc.yaml")
        plots = dvc_yaml.get("plots") if isinstance(dvc_yaml, dict) else None
        for entry in plots if isinstance(plots, list) else []:
            for title, spec in _dict(entry).items():
                ys = _dict(spec).get("y") if isinstance(spec, dict) else None
                for file, field in _dict(ys).items():
                    declared.setdefault(
                        (str(title), str(file)),
                        (spec.get("template", "linear"), spec.get("x", "step"), field),
                    )
    out = []
    for (title, file), (template, x, y) in declared.items():
        spec, note = _chart(ws, revs, title, file, template, x, y)
        out.append({"title": title, "file": file, "spec": spec, "note": note})
    return out


def _chart(
    ws: Workspace, revs: list[tuple[str, str]], title: str, file: str, template, x, y
) -> tuple[dict[str, Any] | None, str]:
    """(spec, "") or (None, why not). Only DVC's built-in templates: dvc-render would open any
    other name as a file on this machine, and a commit's dvc.yaml is anyone's input."""
    from dvc_render.vega import VegaRenderer
    from dvc_render.vega_templates import TEMPLATES

    if template not in {t.DEFAULT_NAME for t in TEMPLATES}:
        return None, f"template {str(template)[:80]!r} is not one of DVC's built-in templates"
    if not (isinstance(x, str) and isinstance(y, str)):
        return None, "x and y must each name one field"
    data = []
    for label, commit in revs:
        rows = ws.json_at(commit, file)
        if isinstance(rows, list) and all(isinstance(r, dict) for r in rows):
            data += [dict(r, rev=label) for r in rows]
    if not data:
        return None, "no data at this version" if len(revs) == 1 else "no data on either side"
    try:
        renderer = VegaRenderer(data, title, template=template, x=x, y=y, title=title)
        return renderer.get_filled_template(), ""
    except Exception as exc:  # dvc-render's refusals (a field not in the data, ...)
        why = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return None, f"cannot draw: {why}"


def _json(data: bytes) -> Any:
    import json

    try:
        return json.loads(data)
    except ValueError:
        return None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _leaves(tree: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The numeric leaves of a metrics file, dotted."""
    return {k: v for k, v in _flat(tree, prefix) if _number(v)}


def _flat(tree: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """{"train": {"l2": 0.1}} -> [("train.l2", 0.1)], in key order."""
    out: list[tuple[str, Any]] = []
    for key, value in tree.items():
        if isinstance(value, dict):
            out += _flat(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out
