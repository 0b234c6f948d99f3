"""The registry operations: register, promote, roll back and retire.

Each checks everything against the state it reads, then writes one tag, holding the
registry lock throughout (``tags.locked``). History is append-only: a rollback is a new
assignment, never a deleted tag.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelops.errors import RegistryError, TagExists, UsageError, WorkspaceError
from modelops.registry import tags
from modelops.registry.gate import Gate, gate, metrics_at
from modelops.registry.state import (
    REGISTER,
    State,
    VersionInfo,
    check_stage,
    check_version,
    need_version,
    next_version,
    state,
)

if TYPE_CHECKING:
    from modelops.params import RegistryParams
    from modelops.workspace import Workspace


def _check_registrable(ws: Workspace, st: State, name: str, version: str | None) -> str:
    """HEAD, once the tree is clean, the pipeline current and HEAD/version not yet taken."""
    dirty = ws.dirty_files()
    if dirty:
        raise WorkspaceError(
            f"uncommitted changes in {', '.join(dirty[:5])}; commit them so the version "
            f"points at exactly what was trained"
        )
    stale = ws.stale_stages()
    if stale:
        raise WorkspaceError(
            f"the pipeline is not up to date (stages {', '.join(stale)} changed); "
            f"run `dvc repro` and commit dvc.lock"
        )
    head = ws.head()
    for info in st.versions(name).values():
        if info.commit == head and info.retired is None:
            raise RegistryError(f"HEAD is already registered as {name}@{info.version}")
        if info.commit == head:  # GTO reads one version per commit (`gto show` fails on two)
            raise RegistryError(
                f"HEAD is already registered as {name}@{info.version}, which is retired; "
                "commit a change to register a new version"
            )
    if version and version in {e.version for e in st.of(name) if e.kind == REGISTER}:
        raise RegistryError(f"{name}@{version} already exists; pick another version or --bump")
    return head


def _lineage(ws: Workspace, name: str, head: str, message: str | None) -> dict[str, Any]:
    """What the register tag records: the model's hashes, data, params, metrics, creator."""
    import datetime as dt
    import hashlib

    from modelops.bundle import read_verified

    artifacts = ws.artifacts()
    if name not in artifacts:
        raise RegistryError(
            f"{name!r} is not declared in dvc.yaml's artifacts: ({', '.join(sorted(artifacts))})"
        )
    path = artifacts[name].path
    outs = ws.lock_outs_at(head)
    if path not in outs:
        raise RegistryError(
            f"dvc.lock records no output {path}; run `dvc repro` and commit dvc.lock"
        )
    data = read_verified(ws.root / path, outs[path])
    paths = ws.paths_at(head)
    card = ws.json_at(head, paths["card"] + ".json") or {}
    return {
        "action": "register",
        "commit": head,
        "model": {
            "path": path,
            "md5": outs[path],
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
        },
        "data": {
            "prepared_md5": outs.get(paths.get("prepared", "data/prepared")),
            **{k: v for k, v in (card.get("data") or {}).items() if k in ("source", "train_md5")},
        },
        "params": card.get("params") or {},
        "metrics": metrics_at(ws, head),
        "creator": ws.author(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **({"message": message} if message else {}),
    }


@tags.locked
def register(
    ws: Workspace, name: str, bump: str | None, version: str | None, message: str | None
) -> VersionInfo:
    """Tag HEAD as a new version, with the model's lineage in the tag message."""
    from gto.constants import Action
    from gto.tag import name_tag

    if version:
        check_version(version)
    head = _check_registrable(ws, state(ws), name, version)
    lineage = _lineage(ws, name, head, message)

    def make() -> tuple[str, str]:
        if version:
            v = version
        else:  # re-read on every try: a racing register may have taken the number
            v = next_version(state(ws), name, bump or "patch")
        lineage["version"] = v
        tag = name_tag(Action.REGISTER, name, version=v, simple=True)
        return tag, tags.message(f"Register {name} {v}", lineage)

    try:
        tags.create(ws, make, head)
    except TagExists:
        if version:  # an explicit version cannot be renumbered
            raise RegistryError(f"{name}@{version} already exists; pick another version") from None
        raise
    return state(ws).versions(name)[lineage["version"]]


@tags.locked
def promote(
    ws: Workspace,
    reg: RegistryParams,
    name: str,
    version: str,
    stage: str,
    force: bool,
    reason: str | None,
) -> tuple[str, Gate]:
    """Assign ``stage`` to ``version`` if the gate passes (or ``force`` with a reason)."""
    check_stage(stage, reg)
    if force and not (reason or "").strip():
        raise UsageError("--force needs --reason TEXT: the reason is recorded in the tag")
    st = state(ws)
    cand = need_version(st, name, version)
    if cand.retired is not None:
        raise RegistryError(f"{name}@{version} is retired and cannot be promoted")
    held = st.holder(name, stage)
    if held == version:
        raise RegistryError(f"{name}@{version} already holds stage {stage!r}")
    holder = st.versions(name).get(held) if held else None
    g = gate(ws, reg.gate, name, cand, holder)
    if not g.passed and not force:
        raise RegistryError(
            f"gate: {name}@{version} has {g.metric} {g.candidate:.6g}, worse than "
            f"{g.holder:.6g} of {name}@{held} holding {stage!r} (tolerance {g.tolerance:g}); "
            f"use --force --reason TEXT to promote anyway"
        )
    data = {
        "action": "promote",
        "version": version,
        "stage": stage,
        "previous": held,
        "gate": g.to_dict(),
        "forced": bool(force and not g.passed),
        "by": ws.author(),
    }
    if reason:
        data["reason"] = reason
    text = tags.message(f"Promote {name} {version} to {stage}", data)
    return tags.assign(ws, st, name, stage, cand.commit, text), g


def rollback_target(st: State, name: str, stage: str, to: str | None) -> tuple[str, str]:
    """(current holder, version to give ``stage`` back to): the previous non-retired entry
    of the stage's undo stack, or ``to`` if it held the stage before."""
    current = st.holder(name, stage)
    if current is None:
        raise RegistryError(f"no version of {name} holds stage {stage!r}; nothing to roll back")
    versions = st.versions(name)
    earlier = [v for v in reversed(st.stage_stack(name, stage)[:-1]) if v != current]
    if to:
        check_version(to)
        need_version(st, name, to)
        if to == current:
            raise RegistryError(f"{name}@{to} already holds stage {stage!r}")
        if to not in earlier:
            raise RegistryError(
                f"{name}@{to} did not hold {stage!r} before {current}; use `modelops promote`"
            )
        if versions[to].retired is not None:
            raise RegistryError(f"{name}@{to} is retired; roll back to another version")
        return current, to
    usable = [v for v in earlier if v in versions and versions[v].retired is None]
    if not usable:
        raise RegistryError(
            f"{stage!r} has no earlier holder of {name} to roll back to "
            f"(current: {current}); promote a version instead"
        )
    return current, usable[0]


@tags.locked
def rollback(
    ws: Workspace, reg: RegistryParams, name: str, stage: str, to: str | None
) -> tuple[str, str, str]:
    """Give ``stage`` back to the previous (non-retired) holder; return (tag, from, to)."""
    check_stage(stage, reg)
    st = state(ws)
    current, target = rollback_target(st, name, stage, to)
    data = {
        "action": "rollback",
        "version": target,
        "stage": stage,
        "from": current,
        "by": ws.author(),
    }
    text = tags.message(f"Roll back {name} {stage} from {current} to {target}", data)
    commit = st.versions(name)[target].commit
    return tags.assign(ws, st, name, stage, commit, text), current, target


@tags.locked
def retire(
    ws: Workspace, reg: RegistryParams, name: str, version: str, reason: str | None, force: bool
) -> str:
    """Deregister ``version`` (GTO's ``name@vX.Y.Z!``), refusing a protected stage's holder."""
    from gto.constants import Action
    from gto.tag import name_tag

    st = state(ws)
    info = need_version(st, name, version)
    if info.retired is not None:
        raise RegistryError(f"{name}@{version} is already retired ({info.retired.tag})")
    protected = [s for s in info.stages if s in reg.protected_stages]
    if protected and not force:
        raise RegistryError(
            f"{name}@{version} holds {', '.join(protected)}; promote another version to "
            f"{protected[0]!r} first, or use --force"
        )
    data = {"action": "retire", "version": version, "by": ws.author(), "forced": bool(protected)}
    if reason:
        data["reason"] = reason
    tag = name_tag(Action.DEREGISTER, name, version=version, simple=True)
    return tags.create_once(ws, tag, tags.message(f"Retire {name} {version}", data), info.commit)
