"""Versions and stages on annotated git tags, in GTO's grammar.

``model@v1.2.0`` registers a version, ``model#prod#3`` assigns a stage,
``model@v1.2.0!`` retires (deregisters) a version. Tag names come from GTO's
own ``name_tag``, versions from its ``SemVer``, names are checked with its
validator, so ``gto show`` and ``dvc artifacts get`` read what we write.

Policy lives here: the quality gate, rollback, protected stages. History is
append-only (a rollback is a new assignment, never a deleted tag). Tags are
created with ``git tag -a``, which refuses an existing name atomically, so two
racing writers never share a version or lose an assignment: the loser
recomputes the name and retries. The whole registry is read with one
``git for-each-ref`` call.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from modelops.errors import RegistryError, UsageError, WorkspaceError

if TYPE_CHECKING:
    from modelops.params import GateParams, RegistryParams
    from modelops.workspace import Workspace

REGISTER, DEREGISTER, ASSIGN, UNASSIGN, DEPRECATE = (
    "register",
    "deregister",
    "assign",
    "unassign",
    "deprecate",
)
_FIELDS = (
    "%(refname:strip=2)",
    "%(objecttype)",
    "%(*objectname)",
    "%(taggername)",
    "%(taggeremail:trim)",
    "%(taggerdate:unix)",
    "%(contents)",
)
_RETRIES = 20


@dataclass(frozen=True)
class Event:
    """One registry tag."""

    kind: str
    name: str
    tag: str
    commit: str
    version: str | None
    stage: str | None
    counter: int | None
    author: str
    time: int
    message: str

    @property
    def data(self) -> dict[str, Any]:
        """The JSON block modelops writes after the tag's summary line ({} if none)."""
        _, _, rest = self.message.partition("\n\n")
        try:
            value = json.loads(rest)
        except (json.JSONDecodeError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    @property
    def summary(self) -> str:
        return self.message.partition("\n")[0]

    def order(self) -> tuple[int, int, str]:
        return (self.time, self.counter or 0, self.tag)


@dataclass
class VersionInfo:
    name: str
    version: str
    commit: str
    registered: Event
    retired: Event | None = None
    stages: list[str] = field(default_factory=list)

    @property
    def lineage(self) -> dict[str, Any]:
        return self.registered.data

    def to_dict(self) -> dict[str, Any]:
        lin = self.lineage
        return {
            "name": self.name,
            "version": self.version,
            "commit": self.commit,
            "stages": self.stages,
            "retired": self.retired is not None,
            "registered_at": _iso(self.registered.time),
            "author": self.registered.author,
            "metrics": lin.get("metrics", {}),
            "model_md5": (lin.get("model") or {}).get("md5"),
        }


def _iso(ts: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")


def _kind(action: Any) -> str:
    from gto.constants import Action

    return {
        Action.REGISTER: REGISTER,
        Action.DEREGISTER: DEREGISTER,
        Action.ASSIGN: ASSIGN,
        Action.UNASSIGN: UNASSIGN,
        Action.DEPRECATE: DEPRECATE,
    }[action]


def read_events(ws: Workspace) -> list[Event]:
    """Every annotated registry tag, oldest first (time, then GTO's counter)."""
    from gto.constants import ACTION, COUNTER, NAME, STAGE, VERSION
    from gto.tag import parse_name

    out = ws.run_git("for-each-ref", "refs/tags", "--format=" + "%00".join(_FIELDS) + "%1e")
    events = []
    for record in out.split("\x1e"):
        parts = record.lstrip("\n").split("\x00")
        if len(parts) != len(_FIELDS) or parts[1] != "tag":
            continue  # lightweight tags are not registry events (GTO ignores them too)
        tag, _, commit, who, email, when, message = parts
        parsed = parse_name(tag, raise_on_fail=False)
        if not parsed:
            continue
        events.append(
            Event(
                kind=_kind(parsed[ACTION]),
                name=parsed[NAME],
                tag=tag,
                commit=commit,
                version=parsed.get(VERSION),
                stage=parsed.get(STAGE),
                counter=parsed.get(COUNTER),
                author=f"{who} <{email}>" if email else who,
                time=int(when or 0),
                message=message.strip(),
            )
        )
    events.sort(key=Event.order)
    # An assignment tag names no version: like GTO, take the one registered at its commit.
    at_commit = {e.commit: e.version for e in events if e.kind == REGISTER}
    return [
        replace(e, version=e.data.get("version") or at_commit.get(e.commit))
        if e.kind in (ASSIGN, UNASSIGN) and e.version is None
        else e
        for e in events
    ]


class State:
    """The registry as the tags describe it."""

    def __init__(self, events: list[Event]) -> None:
        self.events = events

    def of(self, name: str) -> list[Event]:
        return [e for e in self.events if e.name == name]

    def names(self) -> list[str]:
        return sorted({e.name for e in self.events})

    def assignments(self, name: str, stage: str) -> list[Event]:
        return [e for e in self.of(name) if e.kind in (ASSIGN, UNASSIGN) and e.stage == stage]

    def holder(self, name: str, stage: str) -> str | None:
        """The version whose assignment to ``stage`` is the latest (what DVC resolves)."""
        hist = self.assignments(name, stage)
        if not hist or hist[-1].kind == UNASSIGN:
            return None
        return hist[-1].version

    def stages_used(self, name: str) -> list[str]:
        return sorted({e.stage for e in self.of(name) if e.stage})

    def versions(self, name: str) -> dict[str, VersionInfo]:
        """Registered versions, highest first."""
        from gto.versions import SemVer

        found: dict[str, VersionInfo] = {}
        deprecated = None
        for e in self.of(name):
            if e.kind == REGISTER and e.version and SemVer.is_valid(e.version):
                found[e.version] = VersionInfo(name, e.version, e.commit, e)
            elif e.kind == DEREGISTER and e.version in found:
                found[e.version].retired = e
            elif e.kind == DEPRECATE:
                deprecated = e
        for v in found.values():
            if deprecated is not None and v.retired is None:
                v.retired = deprecated
        for stage in self.stages_used(name):
            holder = self.holder(name, stage)
            if holder in found:
                found[holder].stages.append(stage)
        order = sorted(found, key=lambda v: SemVer(v), reverse=True)
        return {v: found[v] for v in order}

    def stage_stack(self, name: str, stage: str) -> list[str]:
        """Holders of ``stage`` as an undo stack: promotions push, rollbacks pop."""
        stack: list[str] = []
        for e in self.assignments(name, stage):
            if e.kind == UNASSIGN:
                stack.clear()
            elif e.data.get("action") == "rollback":
                while stack and stack[-1] != e.version:
                    stack.pop()
                if not stack:
                    stack.append(e.version or "")
            elif not stack or stack[-1] != e.version:
                stack.append(e.version or "")
        return stack


def state(ws: Workspace) -> State:
    return State(read_events(ws))


# -- names and references -----------------------------------------------------------------
def check_name(name: str) -> str:
    from gto.constants import assert_fullname_is_valid
    from gto.exceptions import ValidationError

    try:
        assert_fullname_is_valid(name)
    except ValidationError:
        raise RegistryError(
            f"model name {name!r} is not valid: use lowercase letters, digits and '-' "
            f"(no '@', '#', spaces or capitals)"
        ) from None
    return name


def check_version(version: str) -> str:
    from gto.versions import SemVer

    if not SemVer.is_valid(version):
        raise RegistryError(
            f"version {version!r} is not a semantic version like v1.2.0 (with the leading 'v')"
        )
    return version


def check_stage(stage: str, reg: RegistryParams) -> str:
    if stage not in reg.stages:
        raise RegistryError(
            f"stage {stage!r} is not one of {', '.join(reg.stages)} "
            f"(registry.stages in params.yaml)"
        )
    return stage


def split_ref(ref: str | None, version: str | None = None) -> tuple[str | None, str | None]:
    """``NAME@vX.Y.Z`` or ``NAME`` (+ ``--version``) -> (name, version)."""
    if ref and "@" in ref:
        name, _, ref_version = ref.partition("@")
        if version and version != ref_version:
            raise UsageError(f"{ref} and --version {version} disagree; give the version once")
        return name or None, check_version(ref_version)
    return ref, check_version(version) if version else None


def default_name(ws: Workspace, name: str | None) -> str:
    """``name``, or the single model declared in dvc.yaml's ``artifacts:``."""
    if name:
        return check_name(name)
    declared = sorted(ws.artifacts())
    if len(declared) == 1:
        return declared[0]
    if not declared:
        raise RegistryError(
            "dvc.yaml declares no artifacts; add an artifacts: block or name the model"
        )
    raise RegistryError(f"dvc.yaml declares several models ({', '.join(declared)}); name one")


def need_version(st: State, name: str, version: str) -> VersionInfo:
    versions = st.versions(name)
    if version not in versions:
        known = ", ".join(list(versions)[:8]) or "none yet"
        raise RegistryError(
            f"{name}@{version} is not registered (registered versions: {known}); "
            f"see `modelops list`"
        )
    return versions[version]


def resolve(
    st: State, name: str, version: str | None = None, stage: str | None = None
) -> VersionInfo:
    """The version asked for, or the one holding ``stage`` (refusing a retired holder)."""
    if version:
        return need_version(st, name, version)
    assert stage is not None
    held = st.holder(name, stage)
    if held is None:
        raise RegistryError(f"no version of {name} holds stage {stage!r}; promote one first")
    info = need_version(st, name, held)
    if info.retired is not None:
        raise RegistryError(
            f"{name}#{stage} is held by retired {name}@{held}; promote or roll back first"
        )
    return info


# -- writing tags -------------------------------------------------------------------------
def _message(summary: str, data: dict[str, Any]) -> str:
    return f"{summary}\n\n{json.dumps(data, indent=2, sort_keys=True)}\n"


def _create(ws: Workspace, make: Callable[[], tuple[str, str]], commit: str) -> str:
    """Create an annotated tag, retrying with a fresh (name, message) if a racing writer
    took the name: ``git tag`` refuses an existing name atomically."""
    tried: set[str] = set()
    for _ in range(_RETRIES):
        name, message = make()
        if name in tried:
            raise RegistryError(f"tag {name} already exists")
        tried.add(name)
        try:
            ws.run_git("tag", "--annotate", "--cleanup=verbatim", "-m", message, name, commit)
            return name
        except WorkspaceError as exc:
            if "already exists" not in str(exc):
                raise
    raise RegistryError(f"could not create a registry tag after {_RETRIES} tries; try again")


def _after_latest_assignment(st: State, name: str) -> None:
    """Make this assignment's tagger time later than every earlier one.

    DVC resolves ``--stage`` by tag time (whole seconds); GTO's counter is the
    true order. Waiting out the second keeps the two in agreement.
    """
    times = [e.time for e in st.of(name) if e.kind in (ASSIGN, UNASSIGN)]
    if times:
        wait = max(times) + 1 - time.time()
        if wait > 0:
            time.sleep(wait + 0.01)


def _assign(ws: Workspace, st: State, name: str, stage: str, commit: str, message: str) -> str:
    from gto.constants import Action
    from gto.tag import name_tag
    from scmrepo.git import Git

    scm = Git(str(ws.root))
    _after_latest_assignment(st, name)
    return _create(
        ws, lambda: (name_tag(Action.ASSIGN, name, stage=stage, scm=scm), message), commit
    )


def next_version(st: State, name: str, bump: str) -> str:
    from gto.versions import SemVer

    all_versions = [e.version for e in st.of(name) if e.kind == REGISTER and e.version]
    valid = [v for v in all_versions if SemVer.is_valid(v)]
    if not valid:
        return {"major": "v1.0.0", "minor": "v0.1.0", "patch": "v0.0.1"}[bump]
    highest = max(valid, key=SemVer)
    return (
        SemVer(highest)
        .bump(bump_major=bump == "major", bump_minor=bump == "minor", bump_patch=bump == "patch")
        .version
    )


# -- the gate -----------------------------------------------------------------------------
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
    return ws.json_at(commit, ws.paths_at(commit)["metrics"]) or {}


def gate(
    ws: Workspace, g: GateParams, name: str, cand: VersionInfo, holder: VersionInfo | None
) -> Gate:
    from modelops.params import task_of_metrics

    cand_metrics = metrics_at(ws, cand.commit)
    # auto: the candidate's own task decides (f1 for classification, r2 for regression).
    metric = g.metric_for(task_of_metrics(cand_metrics))
    higher = g.higher_is_better(metric)
    if metric not in cand_metrics:
        setting = f"auto ({metric})" if g.metric == "auto" else repr(metric)
        raise RegistryError(
            f"registry.gate.metric: {setting} is not among {name}@{cand.version}'s metrics "
            f"({', '.join(sorted(cand_metrics)) or 'none'}); set it in params.yaml"
        )
    c = float(cand_metrics[metric])
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
    if metric not in h_metrics:
        return Gate(
            **base,
            holder=None,
            holder_version=holder.version,
            passed=True,
            note=f"{holder.version} has no {metric}; nothing to compare",
        )
    h = float(h_metrics[metric])
    passed = c >= h - g.tolerance if higher else c <= h + g.tolerance
    word = "higher" if higher else "lower"
    return Gate(
        **base,
        holder=h,
        holder_version=holder.version,
        passed=passed,
        note=f"{metric} {c:.6g} vs {h:.6g} ({word} is better, tolerance {g.tolerance:g})",
    )


# -- operations ---------------------------------------------------------------------------
def register(
    ws: Workspace, name: str, bump: str | None, version: str | None, message: str | None
) -> VersionInfo:
    """Tag HEAD as a new version, with the model's lineage in the tag message."""
    import datetime as dt
    import hashlib

    from gto.constants import Action
    from gto.tag import name_tag

    from modelops.bundle import read_verified

    if version:
        check_version(version)
    dirty = ws.dirty_files()
    if dirty:
        raise RegistryError(
            f"uncommitted changes in {', '.join(dirty[:5])}; commit them so the version "
            f"points at exactly what was trained"
        )
    stale = ws.stale_stages()
    if stale:
        raise RegistryError(
            f"the pipeline is not up to date (stages {', '.join(stale)} changed); "
            f"run `dvc repro` and commit dvc.lock"
        )
    head = ws.head()
    st = state(ws)
    for info in st.versions(name).values():
        if info.commit == head and info.retired is None:
            raise RegistryError(f"HEAD is already registered as {name}@{info.version}")
    if version and version in {e.version for e in st.of(name) if e.kind == REGISTER}:
        raise RegistryError(f"{name}@{version} already exists; pick another version or --bump")
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
    lineage = {
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

    def make() -> tuple[str, str]:
        if version:
            v = version
        else:  # re-read on every try: a racing register may have taken the number
            v = next_version(state(ws), name, bump or "patch")
        lineage["version"] = v
        tag = name_tag(Action.REGISTER, name, version=v, simple=True)
        return tag, _message(f"Register {name} {v}", lineage)

    try:
        _create(ws, make, head)
    except RegistryError:
        if version:  # an explicit version cannot be renumbered
            raise RegistryError(f"{name}@{version} already exists; pick another version") from None
        raise
    return state(ws).versions(name)[lineage["version"]]


def promote(
    ws: Workspace,
    reg: RegistryParams,
    name: str,
    version: str,
    stage: str,
    force: bool,
    reason: str | None,
) -> tuple[str, Gate]:
    check_stage(stage, reg)
    if force and not reason:
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
    tag = _assign(
        ws, st, name, stage, cand.commit, _message(f"Promote {name} {version} to {stage}", data)
    )
    return tag, g


def rollback(
    ws: Workspace, reg: RegistryParams, name: str, stage: str, to: str | None
) -> tuple[str, str, str]:
    """Give ``stage`` back to the previous (non-retired) holder; return (tag, from, to)."""
    check_stage(stage, reg)
    st = state(ws)
    current = st.holder(name, stage)
    if current is None:
        raise RegistryError(f"no version of {name} holds stage {stage!r}; nothing to roll back")
    versions = st.versions(name)
    stack = st.stage_stack(name, stage)
    earlier = [v for v in reversed(stack[:-1]) if v != current]
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
        target = to
    else:
        usable = [v for v in earlier if v in versions and versions[v].retired is None]
        if not usable:
            raise RegistryError(
                f"{stage!r} has no earlier holder of {name} to roll back to "
                f"(current: {current}); promote a version instead"
            )
        target = usable[0]
    data = {
        "action": "rollback",
        "version": target,
        "stage": stage,
        "from": current,
        "by": ws.author(),
    }
    tag = _assign(
        ws,
        st,
        name,
        stage,
        versions[target].commit,
        _message(f"Roll back {name} {stage} from {current} to {target}", data),
    )
    return tag, current, target


def retire(
    ws: Workspace, reg: RegistryParams, name: str, version: str, reason: str | None, force: bool
) -> str:
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
    return _create(ws, lambda: (tag, _message(f"Retire {name} {version}", data)), info.commit)
