"""``modelops verify``: does a registered version still come from its code and data?

The version's commit is checked out in a temporary git worktree (the user's
checkout, branch, index, tags and DVC cache are only read). Its inputs are put
there and checked against their records before anything runs:

- every ``.dvc``-tracked file or directory is copied from the DVC cache (or the
  default remote) while its bytes are hashed here, entry by entry for a
  directory; DVC's state database is not trusted for this;
- every stage dependency that no stage produces (code, ``data/raw``,
  ``data/incoming``) is hashed in the worktree and compared with dvc.lock, and
  the params each stage recorded are compared with params.yaml at that commit.

Then every stage that dvc.lock records is re-run with ``dvc repro --force
--no-commit`` (forced, so nothing counts as reproduced because it was already
there; not committed, and with its own cache directory, so the user's cache
never sees the outputs) in today's environment with the commit's own code on
``PYTHONPATH``. That includes ``monitor``: its drift report is one of the
version's recorded outputs, and the batches it reads are inputs checked above.
Every output is then hashed as DVC records it (a directory as its ``.dir``
manifest) and compared with dvc.lock; metrics files that differ are compared
value by value. The library versions in the version's model card (the ones
the train stage wrote into the bundle) are compared with today's.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.errors import InputError, RemoteError, WorkspaceError
from modelops.files import DIR_SUFFIX as _DIR
from modelops.files import copy_md5, manifest_md5, remove_path

if TYPE_CHECKING:
    from modelops.registry.state import VersionInfo
    from modelops.workspace import Workspace


@dataclass
class OutputRow:
    path: str
    stage: str
    recorded: str
    reproduced: str | None  # None: the stage did not produce it
    files: list[str] = field(default_factory=list)  # a directory's entries that differ

    @property
    def identical(self) -> bool:
        return self.recorded == self.reproduced


@dataclass
class MetricRow:
    file: str
    key: str
    recorded: Any
    reproduced: Any

    @property
    def delta(self) -> float | None:
        a, b = self.recorded, self.reproduced
        numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (a, b))
        return b - a if numbers else None


@dataclass
class Report:
    model: str
    version: str
    commit: str
    stages: list[str]
    inputs: list[dict[str, Any]]
    outputs: list[OutputRow]
    metrics: list[MetricRow]
    versions_recorded: dict[str, str]
    versions_today: dict[str, str]
    failure: str | None = None  # the stage that failed and the tail of its error
    notes: list[str] = field(default_factory=list)

    @property
    def differing(self) -> list[OutputRow]:
        return [o for o in self.outputs if not o.identical]

    @property
    def verdict(self) -> str:
        return "differs" if self.differing or self.failure else "identical"

    @property
    def exit_code(self) -> int:
        return 0 if self.verdict == "identical" else 1

    @property
    def library_changes(self) -> dict[str, tuple[str, str]]:
        """{library: (recorded, today)} for every library whose version moved."""
        return {
            k: (v, self.versions_today.get(k, "not installed"))
            for k, v in self.versions_recorded.items()
            if k in self.versions_today and self.versions_today[k] != v
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "model": self.model,
            "version": self.version,
            "commit": self.commit,
            "stages": self.stages,
            "inputs": self.inputs,
            "outputs": [{**asdict(o), "identical": o.identical} for o in self.outputs],
            "metrics": [{**asdict(m), "delta": m.delta} for m in self.metrics],
            "library_versions": {
                "recorded": self.versions_recorded,
                "today": self.versions_today,
                "changed": {k: list(v) for k, v in self.library_changes.items()},
            },
            "failure": self.failure,
            "notes": self.notes,
        }


def unverifiable(exc: InputError) -> dict[str, Any]:
    """The --json report when verify stopped before running anything (exit 2)."""
    return {
        "verdict": "unverifiable",
        "exit_code": exc.exit_code,
        "version": getattr(exc, "ref", None),
        "commit": getattr(exc, "commit", None),
        "path": exc.path,
        "error": str(exc),
    }


# -- hashing, as DVC records it -----------------------------------------------------------
def tree_entries(ws: Workspace, rel: str) -> list[dict[str, str]]:
    from modelops.files import md5_file

    base = ws.root / rel
    return [{"md5": md5_file(base / f), "relpath": f} for f in ws.tree_files(rel)]


def path_md5(ws: Workspace, rel: str) -> str | None:
    """md5 of a file or directory in ``ws`` the way dvc.lock records it (None if absent)."""
    from modelops.files import md5_file

    path = ws.root / rel
    if path.is_dir():
        return manifest_md5(tree_entries(ws, rel))
    return md5_file(path) if path.is_file() else None


# -- inputs ---------------------------------------------------------------------------------
def _inside(path: str, outs: set[str]) -> bool:
    return any(path == o or path.startswith(o.rstrip("/") + "/") for o in outs)


def _hash_name(entry: dict[str, Any], where: str) -> None:
    name = entry.get("hash")
    if name != "md5" and entry.get("md5"):
        raise InputError(
            str(entry.get("path")),
            f"{where}: {entry.get('path')} is recorded with DVC 2's md5-dos2unix hash, which "
            f"verify does not reproduce; re-record it with DVC 3 (`dvc repro`, `dvc add`)",
        )


class _Inputs:
    """Puts a version's data sources into the worktree, hashing every byte on the way."""

    def __init__(self, user: Workspace, ref: str) -> None:
        self.user = user
        self.ref = ref

    def _open(self, oid: str, path: str, record: str):
        try:
            found = self.user.open_object(oid)
        except (WorkspaceError, RemoteError) as exc:
            raise InputError(path, f"{path} of {self.ref}: {exc}; nothing was run") from None
        if found is None:
            remote = self.user.remote_name()
            where = (
                f"nor on DVC remote {remote!r}; `dvc push` it from a machine that has it"
                if remote
                else "and no DVC remote is configured; configure the remote that holds it "
                "(`make remote-s3 URL=...`, see README) or `dvc push` it there from a machine "
                "that has it"
            )
            raise InputError(
                path,
                f"{path} of {self.ref} ({record}, md5 {oid}) is not in the DVC cache {where}; "
                f"nothing was run",
            )
        return found

    def _corrupt(self, path: str, actual: str, oid: str, where: str, record: str) -> InputError:
        fix = (
            "remove it and `dvc fetch` it again"
            if where.startswith("the DVC cache")
            else "`dvc push` a good copy from a machine that has one"
        )
        return InputError(
            path,
            f"{path} of {self.ref}: the bytes in {where} have md5 {actual}, not {oid} as "
            f"{record} records; that copy is corrupt: {fix}; nothing was run",
        )

    def copy_file(self, oid: str, dest: Path, path: str, record: str) -> None:
        stream, where = self._open(oid, path, record)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with stream as src, open(dest, "wb") as sink:
            actual = copy_md5(src, sink)
        if actual != oid:
            dest.unlink()
            raise self._corrupt(path, actual, oid, where, record)

    def copy(self, oid: str, dest: Path, path: str, record: str) -> int:
        """Copy a file or directory object to ``dest``; returns the number of files."""
        if not oid.endswith(_DIR):
            self.copy_file(oid, dest, path, record)
            return 1
        stream, where = self._open(oid, path, record)
        with stream as src:
            raw = src.read()
        try:
            entries = [e for e in json.loads(raw) if isinstance(e, dict)]
            actual = manifest_md5(entries)
        except (ValueError, KeyError, TypeError):
            actual = hashlib.md5(raw).hexdigest()
            entries = []
        if actual != oid:
            raise self._corrupt(path, actual, oid, where, record)
        for e in entries:
            rel = Path(e["relpath"])
            if rel.is_absolute() or ".." in rel.parts:
                raise self._corrupt(path, f"(entry {rel})", oid, where, record)
            self.copy_file(e["md5"], dest / rel, f"{path}/{rel.as_posix()}", record)
        return len(entries)


def _dvc_files(wt: Workspace) -> list[str]:
    out = wt.run_git("ls-files", "-z", "--", "*.dvc")
    return sorted(p for p in out.split("\0") if p and not p.startswith(".dvc/"))


def place_sources(user: Workspace, wt: Workspace, ref: str) -> list[dict[str, Any]]:
    """Every ``.dvc``-tracked output of the commit, copied into the worktree after its
    bytes were hashed; returns what was placed."""
    from modelops.params import yaml_loads

    inputs = _Inputs(user, ref)
    placed = []
    for dvcfile in _dvc_files(wt):
        record = yaml_loads((wt.root / dvcfile).read_text(encoding="utf-8")) or {}
        for out in record.get("outs") or []:
            _hash_name(out, dvcfile)
            md5 = out.get("md5")
            if not md5:
                continue
            rel = Path(os.path.normpath(Path(dvcfile).parent / out["path"]))
            path = rel.as_posix()
            if rel.is_absolute() or rel.parts[0] == "..":
                raise InputError(path, f"{dvcfile} of {ref} tracks {path}, outside the repository")
            dest = wt.root / rel
            if out.get("cache") is False:  # kept in git: checked where it is
                actual = path_md5(wt, path)
                if actual != md5:
                    raise InputError(
                        path,
                        f"{path} of {ref} has md5 {actual}, not {md5} as {dvcfile} records; "
                        f"nothing was run",
                    )
                placed.append({"path": path, "md5": md5, "record": dvcfile})
                continue
            if dest.exists():  # a cached .dvc output is git-ignored: only a broken commit has it
                raise InputError(path, f"{path} of {ref} is both in git and in {dvcfile}")
            files = inputs.copy(md5, dest, path, dvcfile)
            placed.append({"path": path, "md5": md5, "record": dvcfile, "files": files})
    return placed


def check_deps(wt: Workspace, lock: dict[str, Any], ref: str) -> list[dict[str, str]]:
    """Every stage dependency no stage produces, hashed in the worktree and compared with
    dvc.lock, and the params each stage recorded against params.yaml; raises InputError."""
    from modelops.params import yaml_loads

    stages = lock.get("stages") or {}
    outs = {Path(o["path"]).as_posix() for s in stages.values() for o in s.get("outs") or []}
    checked: dict[str, dict[str, str]] = {}
    for name, stage in stages.items():
        for dep in stage.get("deps") or []:
            path = Path(dep["path"]).as_posix()
            if _inside(path, outs) or path in checked:
                continue
            if Path(path).is_absolute() or ".." in Path(path).parts:
                raise InputError(
                    path, f"{path}: stage {name} of {ref} reads outside the repository"
                )
            _hash_name(dep, "dvc.lock")
            actual = path_md5(wt, path)
            if actual is None:
                raise InputError(path, f"{path}: input of stage {name} of {ref} is missing")
            if actual != dep.get("md5"):
                raise InputError(
                    path,
                    f"{path}: input of stage {name} of {ref} has md5 {actual}, not "
                    f"{dep.get('md5')} as dvc.lock records; the version's record is "
                    f"inconsistent; nothing was run",
                )
            checked[path] = {"path": path, "md5": actual, "stage": name}
        for file, values in (stage.get("params") or {}).items():
            current = (
                yaml_loads((wt.root / file).read_text(encoding="utf-8"))
                if (wt.root / file).is_file()
                else {}
            )
            for key, recorded in (values or {}).items():
                value: Any = current
                for part in key.split("."):
                    value = value.get(part) if isinstance(value, dict) else None
                if value != recorded:
                    raise InputError(
                        file,
                        f"{file}: {key} of {ref} is {value!r} but dvc.lock records "
                        f"{recorded!r} for stage {name}; the version's record is "
                        f"inconsistent; nothing was run",
                    )
    return list(checked.values())


# -- running ------------------------------------------------------------------------------
def _isolate(wt: Path, scratch: Path) -> None:
    """The worktree's DVC keeps its cache and its state (site cache) in ``scratch``:
    config.local is git-ignored and the highest-precedence config, so even a committed
    ``cache.dir`` is not written to, and nothing is left in DVC's system-wide site cache."""
    (wt / ".dvc" / "config.local").write_text(
        f"[core]\n    site_cache_dir = {scratch / 'site'}\n[cache]\n    dir = {scratch / 'cache'}\n"
    )


def reproduce(wt: Path, stages: list[str]) -> str | None:
    """``dvc repro --force --no-commit`` of ``stages`` in ``wt``, the commit's code first on
    PYTHONPATH; returns None, or the tail of the error when a stage failed."""
    bindir = str(Path(sys.executable).parent)
    env = dict(os.environ)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(wt / "src"), env.get("PYTHONPATH", "")) if p
    )
    cmd = [sys.executable, "-m", "dvc", "repro", "--force", "--no-commit", *stages]
    # A session of its own: on Ctrl-C or an error the whole tree (dvc and its stage
    # processes) is stopped before the worktree is removed.
    proc = subprocess.Popen(
        cmd,
        cwd=wt,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate()
    except BaseException:
        _stop(proc)
        raise
    if proc.returncode == 0:
        return None
    text = out.decode(errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n".join(lines[-20:]) or f"dvc repro exited {proc.returncode}"


def _stop(proc: subprocess.Popen) -> None:
    # Killed outright: what it leaves behind is in the worktree, which is removed next.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


# -- comparing ----------------------------------------------------------------------------
def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): value}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def compare_metrics(file: str, recorded: Any, reproduced: Any) -> list[MetricRow]:
    a, b = _flatten(recorded or {}), _flatten(reproduced or {})
    return [
        MetricRow(file, k, a.get(k), b.get(k))
        for k in sorted(set(a) | set(b))
        if a.get(k) != b.get(k)
    ]


def _dir_changes(user: Workspace, oid: str, reproduced: list[dict[str, str]]) -> list[str]:
    """The entries of a directory output that differ, when its recorded manifest is in the
    local cache (a convenience: the verdict does not depend on it)."""
    local = Path(user.dvc.cache.local.oid_to_path(oid))
    try:
        recorded = {e["relpath"]: e["md5"] for e in json.loads(local.read_bytes())}
    except (OSError, ValueError, KeyError, TypeError):
        return []
    now = {e["relpath"]: e["md5"] for e in reproduced}
    return sorted(k for k in set(recorded) | set(now) if recorded.get(k) != now.get(k))


def library_versions_today(recorded: dict[str, str]) -> dict[str, str]:
    """Today's versions of the libraries the card lists, as ``bundle.library_versions`` words
    them (``modelops`` itself is left out: verify runs the commit's own code)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from modelops.bundle import library_versions

    now = library_versions()
    today = {}
    for lib, was in recorded.items():
        if lib == "modelops":
            continue
        if lib == "python" and was.count(".") > 1:  # cards from before bundles kept 3.11 only
            today[lib] = platform.python_version()
        elif lib in now:
            today[lib] = now[lib]
        else:
            try:
                today[lib] = version(lib)
            except PackageNotFoundError:
                today[lib] = "not installed"
    return today


# -- the whole check ----------------------------------------------------------------------
def verify(user: Workspace, name: str, info: VersionInfo) -> Report:
    """Re-run ``info``'s pipeline in a temporary worktree and compare with its dvc.lock."""
    ref = f"{name}@{info.version}"
    commit = info.commit
    lock = user.yaml_at(commit, "dvc.lock") or {}
    recorded_stages = list((lock.get("stages") or {}).keys())
    if not recorded_stages:
        raise InputError(
            "dvc.lock", f"{ref}: dvc.lock at {commit[:8]} records no stages; nothing to verify"
        )
    card = user.json_at(commit, user.paths_at(commit)["card"] + ".json") or {}
    recorded_versions = {k: str(v) for k, v in (card.get("versions") or {}).items()}
    notes = []
    if not recorded_versions:
        notes.append("the version's model card records no library versions")

    try:
        return _run(user, name, info, lock, recorded_versions, notes)
    except InputError as exc:
        exc.ref, exc.commit = ref, commit  # for the --json report
        raise


def _run(
    user: Workspace,
    name: str,
    info: VersionInfo,
    lock: dict[str, Any],
    recorded_versions: dict[str, str],
    notes: list[str],
) -> Report:
    from modelops.workspace import Workspace

    ref, commit = f"{name}@{info.version}", info.commit
    recorded_stages = list(lock["stages"])
    with user.temp_worktree(commit) as root:
        _isolate(root, root.parent)
        wt = Workspace(root)
        declared = set(wt.stage_names())
        stages = [s for s in recorded_stages if s in declared]
        notes += [
            f"stage {s} is in dvc.lock but not in dvc.yaml at {commit[:8]}: not re-run"
            for s in recorded_stages
            if s not in declared
        ]
        notes += [
            f"stage {s} is in dvc.yaml but dvc.lock records no run of it: not verified"
            for s in sorted(declared - set(recorded_stages))
        ]
        if not stages:
            raise InputError(
                "dvc.yaml",
                f"{ref}: no stage of dvc.lock at {commit[:8]} is declared in its dvc.yaml; "
                f"nothing to verify",
            )
        sources = place_sources(user, wt, ref)
        deps = check_deps(wt, lock, ref)
        metric_files = wt.metric_paths()
        wt.close_dvc()  # its index was read before the run; not reused
        # Outputs kept in git are in the worktree already: removed, so that one a stage
        # never reached (after a failure) cannot pass for reproduced.
        for stage in stages:
            for out in lock["stages"][stage].get("outs") or []:
                path = Path(out["path"])
                if path.is_absolute() or ".." in path.parts:
                    raise InputError(
                        str(path), f"{ref}: dvc.lock records output {path} outside the repository"
                    )
                remove_path(root / path)
        failure = reproduce(root, stages)

        rows, metrics = [], []
        for stage in stages:
            for out in lock["stages"][stage].get("outs") or []:
                path = Path(out["path"]).as_posix()
                recorded = str(out.get("md5"))
                if (root / path).is_dir():
                    entries = tree_entries(wt, path)
                    now: str | None = manifest_md5(entries)
                    files = [] if now == recorded else _dir_changes(user, recorded, entries)
                else:
                    now, files = path_md5(wt, path), []
                rows.append(OutputRow(path, stage, recorded, now, files[:20]))
                if path in metric_files and now is not None and now != recorded:
                    metrics += compare_metrics(
                        path, user.json_at(commit, path), _read_json(root / path)
                    )
        wt.close_dvc()
    return Report(
        model=name,
        version=info.version,
        commit=commit,
        stages=stages,
        inputs=[*sources, *deps],
        outputs=rows,
        metrics=metrics,
        versions_recorded=recorded_versions,
        versions_today=library_versions_today(recorded_versions),
        failure=failure,
        notes=notes,
    )
