"""The registry's read model: events parsed from tags, and the state they describe.

Everything here is pure except ``read_events``/``state``/``default_name``, which
read the workspace: a ``State`` is built from a list of ``Event`` values, so the
rules (stage holders, undo stacks, retirement, ordering within one second) are
tested on synthetic events without git.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from modelops.errors import RegistryError, UsageError

if TYPE_CHECKING:
    from collections.abc import Iterable

    from modelops.params import RegistryParams
    from modelops.workspace import Workspace

REGISTER, DEREGISTER, ASSIGN, UNASSIGN, DEPRECATE = (
    "register",
    "deregister",
    "assign",
    "unassign",
    "deprecate",
)
# One ``git for-each-ref`` call reads the whole registry: fields split by NUL, records by RS.
_FIELDS = (
    "%(refname:strip=2)",
    "%(objecttype)",
    "%(*objectname)",
    "%(*objecttype)",
    "%(taggername)",
    "%(taggeremail:trim)",
    "%(taggerdate:unix)",
    "%(contents)",
)
FOR_EACH_REF_FORMAT = "--format=" + "%00".join(_FIELDS) + "%1e"


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

    def to_dict(self) -> dict[str, Any]:
        """The event as ``history --json`` and the web pages show it."""
        d = self.data
        return {
            "time": iso(self.time),
            "tag": self.tag,
            "event": d.get("action", self.kind),
            "version": self.version,
            "stage": self.stage,
            "author": self.author,
            "summary": self.summary,
            **{k: d[k] for k in ("reason", "from", "previous", "forced") if k in d},
        }

    def order(self) -> tuple[int, int, str]:
        """Tagger time, then GTO's ``#N`` counter (the true order within one second)."""
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
            "registered_at": iso(self.registered.time),
            "author": self.registered.author,
            "metrics": _mapping(lin.get("metrics")),
            "model_md5": _mapping(lin.get("model")).get("md5"),
        }


def _mapping(value: Any) -> dict[str, Any]:
    """A tag message's section as a mapping (a hand-written tag may hold anything)."""
    return {k: v for k, v in value.items() if isinstance(k, str)} if isinstance(value, dict) else {}


def iso(ts: int) -> str:
    """A tag's unix time as ISO 8601 in UTC (``...Z``)."""
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")


def ordered(events: Iterable[Event]) -> list[Event]:
    """Events oldest first, each assignment knowing its version.

    An assignment tag names no version: like GTO, take the one its message records, else
    the one registered at its commit.
    """
    events = sorted(events, key=Event.order)
    at_commit = {e.commit: e.version for e in events if e.kind == REGISTER}
    return [
        replace(e, version=e.data.get("version") or at_commit.get(e.commit))
        if e.kind in (ASSIGN, UNASSIGN) and e.version is None
        else e
        for e in events
    ]


class State:
    """The registry as the tags describe it."""

    def __init__(self, events: Iterable[Event]) -> None:
        self.events = ordered(events)

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
        # SemVer's own comparison re-parses both sides at every step; parse each once
        order = sorted(found, key=SemVer.parse, reverse=True)
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


# -- reading tags ---------------------------------------------------------------------------
def _kind(action: Any) -> str:
    from gto.constants import Action

    return {
        Action.REGISTER: REGISTER,
        Action.DEREGISTER: DEREGISTER,
        Action.ASSIGN: ASSIGN,
        Action.UNASSIGN: UNASSIGN,
        Action.DEPRECATE: DEPRECATE,
    }[action]


def parse_tags(out: str) -> list[Event]:
    """Registry events from ``git for-each-ref`` output in ``FOR_EACH_REF_FORMAT``."""
    from gto.constants import ACTION, COUNTER, NAME, STAGE, VERSION
    from gto.tag import parse_name

    events = []
    for record in out.split("\x1e"):
        parts = record.lstrip("\n").split("\x00")
        if len(parts) != len(_FIELDS) or parts[1] != "tag":
            continue  # lightweight tags are not registry events (GTO ignores them too)
        tag, _, commit, target, who, email, when, message = parts
        if target in ("tree", "blob"):
            continue  # a hand-made tag on a tree or a file: no version there to check out
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
    return events


def state(ws: Workspace) -> State:
    """The registry of the workspace's repository, read with one git call."""
    return State(parse_tags(ws.run_git("for-each-ref", "refs/tags", FOR_EACH_REF_FORMAT)))


def read_events(ws: Workspace) -> list[Event]:
    """Every annotated registry tag, oldest first (time, then GTO's counter)."""
    return state(ws).events


# -- names and references -----------------------------------------------------------------
def check_name(name: str) -> str:
    from gto.constants import assert_fullname_is_valid
    from gto.exceptions import ValidationError

    try:
        if name != name.strip():  # GTO's pattern ends in "$": a final newline would pass
            raise ValidationError(name)
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
    declared = ws.declared_names()
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


def next_version(st: State, name: str, bump: str) -> str:
    """The version after the highest registered one (the first is GTO's: v0.0.1 for patch)."""
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
