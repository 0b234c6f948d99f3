"""What each page shows: plain dicts read from the registry's read model, one
``git for-each-ref`` per page (``registry.state``), plus the files a version's commit holds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelops import registry as reg

if TYPE_CHECKING:
    from modelops.workspace import Workspace


def board(ws: Workspace) -> dict[str, Any]:
    """Every model: its stages with their holders, its versions highest first (retired ones
    apart), and the metrics each version recorded."""
    st = reg.state(ws)
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
    """One version: lineage, metrics, the model card its commit holds, and its events."""
    st = reg.state(ws)
    info = reg.need_version(st, reg.check_name(name), reg.check_version(version))
    card = ws.json_at(info.commit, ws.paths_at(info.commit)["card"] + ".json")
    lineage = info.lineage
    return {
        **info.to_dict(),
        "model": lineage.get("model") or {},
        "data": _flat(lineage.get("data") or {}),
        "params": _flat(lineage.get("params") or {}),
        "card": card if isinstance(card, dict) else {},
        "events": [e.to_dict() for e in st.of(info.name) if e.version == info.version],
        "charts": charts(ws, info.commit),
    }


def charts(ws: Workspace, commit: str) -> list[dict[str, Any]]:
    """Every plot dvc.yaml declares at ``commit`` (its top-level ``plots:``, and the loss per
    epoch that train writes), as the Vega-Lite spec `dvc plots show` draws: DVC's own
    template filled with the data files committed there. A plot without data has no spec."""
    from dvc_render.vega import VegaRenderer

    declared: list[tuple[str, str, str, str, str]] = []  # title, template, x, y field, file
    loss = ws.paths_at(commit).get("loss")
    if loss:
        declared.append(("Loss per epoch", "linear", "epoch", "loss", loss))
    dvc_yaml = ws.yaml_at(commit, "dvc.yaml") or {}
    for entry in dvc_yaml.get("plots") or []:
        if not isinstance(entry, dict):
            continue
        for title, spec in entry.items():
            if not isinstance(spec, dict) or not isinstance(spec.get("y"), dict):
                continue
            for file, field in spec["y"].items():
                declared.append(
                    (title, spec.get("template", "linear"), spec.get("x", "step"), field, file)
                )
    out = []
    for title, template, x, y, file in declared:
        rows = ws.json_at(commit, file)
        spec = {}
        if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows):
            data = [dict(r, rev=commit[:7]) for r in rows]
            spec = VegaRenderer(data, title, template=template, x=x, y=y, title=title)
            spec = spec.get_filled_template()
        out.append({"title": title, "file": file, "spec": spec or None})
    return out


def _flat(tree: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """{"train": {"l2": 0.1}} -> [("train.l2", 0.1)], in key order."""
    out: list[tuple[str, Any]] = []
    for key, value in tree.items():
        if isinstance(value, dict):
            out += _flat(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out
