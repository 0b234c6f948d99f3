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
        "data": lineage.get("data") or {},
        "params": _flat(lineage.get("params") or {}),
        "card": card if isinstance(card, dict) else {},
        "events": [e.to_dict() for e in st.of(info.name) if e.version == info.version],
    }


def _flat(tree: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """{"train": {"l2": 0.1}} -> [("train.l2", 0.1)], in key order."""
    out: list[tuple[str, Any]] = []
    for key, value in tree.items():
        if isinstance(value, dict):
            out += _flat(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out
