"""list, show, history: reading the registry, as tables or ``--json``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from modelops.commands.options import Parents, command, name_arg, version_ref
from modelops.commands.output import emit, safe, table


def cmd_list(args: argparse.Namespace) -> int:
    from modelops import api

    rows = api.list_versions(args.name)
    # Four metrics fit a terminal: the gate's first (it decides promotions), then by name.
    names = sorted({k for r in rows for k in r["metrics"]})
    gate = api.gate_metric(metrics=names)
    keys = ([gate] if gate in names else []) + [k for k in names if k != gate][
        : 4 - (gate in names)
    ]
    cells = [
        {
            "name": r["name"],
            "version": r["version"],
            "stages": ",".join(r["stages"]) or "-",
            "retired": "yes" if r["retired"] else "",
            "registered": r["registered_at"],
            **{k: f"{r['metrics'][k]:.4g}" if k in r["metrics"] else "" for k in keys},
        }
        for r in rows
    ]
    cols = ["name", "version", "stages", "retired", "registered", *keys]
    emit(args, rows, table(cells, cols) if rows else "no versions registered yet")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from modelops import api

    d = api.show(args.ref, version=args.version)
    lin = d["lineage"]
    lines = [
        f"{d['name']}@{d['version']}  commit {d['commit']}",
        f"stages: {', '.join(d['stages']) or '-'}   retired: {'yes' if d['retired'] else 'no'}",
        f"registered {d['registered_at']} by {safe(d['author'])}",
    ]
    if lin.get("model"):
        m = lin["model"]
        lines.append(f"model: {m['path']} md5 {m['md5']} sha256 {m['sha256']}")
    if d["metrics"]:
        lines.append("metrics: " + ", ".join(f"{k} {v:.4g}" for k, v in d["metrics"].items()))
    # The rest of the lineage --json has: where the data came from, and the params.
    for section in ("data", "params"):
        if lin.get(section):
            lines.append(f"{section}: " + safe(" ".join(_flat(lin[section]))))
    lines += ["events:"] + [
        f"  {e['time']}  {safe(e['tag'])}  {safe(e['summary'])}"
        + (f"  ({safe(_details(e))})" if _details(e) else "")
        for e in d["events"]
    ]
    emit(args, d, "\n".join(lines))
    return 0


def _flat(tree: Any, prefix: str = "") -> list[str]:
    """``a.b=value`` for every leaf of nested dicts (lists and scalars as JSON would show)."""
    if not isinstance(tree, dict):
        return [f"{prefix}={tree if isinstance(tree, str) else json.dumps(tree)}"]
    return [f for k, v in tree.items() for f in _flat(v, f"{prefix}.{k}" if prefix else str(k))]


def _details(event: dict[str, Any]) -> str:
    """What --json has beyond the columns: forced, the reason, where a stage came from."""
    parts = ["forced"] if event.get("forced") else []
    parts += [f"{k} {event[k]}" for k in ("from", "previous") if event.get(k)]
    if event.get("reason"):
        parts.append(f"reason: {event['reason']}")
    return "; ".join(parts)


def cmd_history(args: argparse.Namespace) -> int:
    from modelops import api

    rows = api.history(args.name)
    cells = [
        {**r, "stage": r["stage"] or "", "version": r["version"] or "", "details": _details(r)}
        for r in rows
    ]
    text = (
        table(cells, ["time", "event", "version", "stage", "author", "tag", "details"])
        if rows
        else ("no registry events yet")
    )
    emit(args, rows, text)
    return 0


def add_parsers(sub: argparse._SubParsersAction, shared: Parents) -> None:
    sp = command(
        sub,
        shared,
        "list",
        cmd_list,
        "List versions with their stages and key metrics",
        json=True,
    )
    name_arg(sp)

    sp = command(
        sub, shared, "show", cmd_show, "Show a version's lineage, metrics and events", json=True
    )
    version_ref(sp)

    sp = command(
        sub,
        shared,
        "history",
        cmd_history,
        "Show the registry events of a model, oldest first",
        json=True,
    )
    name_arg(sp)
