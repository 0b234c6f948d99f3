"""Experiments and merges on top of DVC's own machinery.

``best`` ranks the experiments of the current commit from ``dvc.api.exp_show``
(never by parsing tables) and applies the winner or turns it into a branch
with DVC's own ``exp apply`` / ``exp branch``. ``merge`` merges a branch and,
when the only conflicts are in files the pipeline generates, re-runs the
pipeline on the merged code and params instead of asking a person to pick
between two stale dvc.lock files.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelops.errors import Interrupted, UsageError, WorkspaceError

if TYPE_CHECKING:
    from modelops.workspace import Workspace

EXPERIMENT_TYPES = ("branch_base", "branch_commit")
_MISSING = object()


@dataclass
class Ranked:
    name: str
    rev: str
    value: float | None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Leaderboard:
    metric: str
    higher_is_better: bool
    ranked: list[Ranked]
    notes: list[str]

    @property
    def best(self) -> Ranked:
        return self.ranked[0]


def _key(column: str) -> str:
    """exp_show prefixes a column with its file when names collide: keep the bare name."""
    return column.rsplit(":", 1)[-1]


def leaderboard(ws: Workspace, metric: str, higher: bool | None) -> Leaderboard:
    """Rank the current commit's experiments by ``metric`` (missing values rank last)."""
    import dvc.api

    from modelops.params import higher_is_better

    rows = dvc.api.exp_show(repo=str(ws.root))
    exps = [r for r in rows if r.get("typ") in EXPERIMENT_TYPES and r.get("Experiment")]
    failed = [r["Experiment"] for r in exps if r.get("State") == "Failed"]
    # A failed run is listed, not ranked: it must not hide the ones that finished.
    why = (
        f"{len(failed)} experiment(s) failed: {', '.join(failed)}; read why with "
        f"`dvc queue logs {failed[0]}` (logs under .dvc/tmp/exps/), then "
        f"`dvc queue remove --failed` or re-run them"
        if failed
        else ""
    )
    done = [r for r in exps if r.get("State") in (None, "Success")]
    if not done:
        if failed:
            raise WorkspaceError(f"no finished experiments on this commit; {why}")
        raise WorkspaceError(
            "no finished experiments on this commit; run some with `dvc exp run -S KEY=VALUE` "
            "or `dvc exp run --queue ...` and `dvc queue start`"
        )
    metrics = set(dvc.api.metrics_show(repo=str(ws.root)))
    for r in done:
        metrics.update(k for k, v in r.items() if isinstance(v, int | float) and "." not in k)
    known = sorted(_key(m) for m in metrics if "." not in _key(m))
    if metric not in known:
        raise UsageError(
            f"--metric {metric!r} is not a metric here; known metrics: {', '.join(known)}"
        )
    if higher is None:
        higher = higher_is_better(metric)
    ranked, notes = [], [why] if failed else []
    for r in done:
        value = next((v for k, v in r.items() if _key(k) == metric), None)
        if not isinstance(value, int | float) or math.isnan(value):
            notes.append(f"{r['Experiment']} has no {metric}; ranked last")
            value = None
        # params are dotted keys; dependency hashes are file paths
        params = {
            k: v for k, v in r.items() if "." in k and "/" not in k and not k.startswith("paths.")
        }
        params = exact_params(params, lambda file, rev=r["rev"]: _params_file(ws, rev, file))
        ranked.append(Ranked(r["Experiment"], r["rev"], value, params))
    sign = -1.0 if higher else 1.0
    ranked.sort(key=lambda x: (x.value is None, sign * (x.value or 0.0), x.name))
    return Leaderboard(metric, higher, ranked, notes)


def exact_params(params: dict[str, Any], read: Callable[[str], Any]) -> dict[str, Any]:
    """``params`` (exp_show's columns, ``[file:]dotted.key``) with the values their file holds
    at the experiment's commit (``read(file)``): DVC's API turns every number into a float
    (``train.epochs=200.0``) and 0 into None. A key the file does not hold as a scalar keeps
    DVC's value."""
    out = {}
    for key, value in params.items():
        file, _, dotted = key.rpartition(":")
        node = read(file or "params.yaml")
        for part in dotted.split("."):
            node = node.get(part, _MISSING) if isinstance(node, dict) else _MISSING
        out[key] = node if node is None or isinstance(node, bool | int | float | str) else value
    return out


def _params_file(ws: Workspace, rev: str, file: str) -> Any:
    cache = ws.__dict__.setdefault("_params_at", {})
    if (rev, file) not in cache:
        try:
            cache[rev, file] = ws.yaml_at(rev, file)
        except Exception:  # not YAML (a .toml or broken file): DVC's values stand
            cache[rev, file] = None
    return cache[rev, file]


def unsaved_changes(ws: Workspace, revs: list[str]) -> list[str]:
    """Dirty tracked files, unless the workspace is exactly one experiment's result.

    ``dvc exp run`` leaves its result in the workspace; those changes are saved
    in the experiment's ref, so replacing them loses nothing.
    """
    dirty = ws.dirty_files()
    if not dirty or not revs:
        return dirty
    # Measured against the closest experiment, these edits are saved nowhere.
    return min(([p for p in dirty if not _same(ws, rev, p)] for rev in revs), key=len)


def _same(ws: Workspace, rev: str, path: str) -> bool:
    target = ws.root / path
    saved = ws.show(rev, path)
    return saved is not None and target.exists() and target.read_text(errors="replace") == saved


def apply(ws: Workspace, name: str, revs: list[str]) -> None:
    """``dvc exp apply``, which overwrites the workspace; refuse if that would lose work."""
    unsaved = unsaved_changes(ws, revs)
    if unsaved:
        raise WorkspaceError(
            f"uncommitted changes in {', '.join(unsaved[:5])} would be overwritten; "
            f"commit or stash them before applying an experiment"
        )
    ws.dvc.experiments.apply(name)


def check_branch_name(ws: Workspace, new_branch: str) -> None:
    """UsageError unless ``new_branch`` is a valid name no branch has yet."""
    import re

    if (
        not re.fullmatch(r"[A-Za-z0-9._/-]+", new_branch)
        or new_branch.startswith("-")
        or not ws.ref_name_ok(f"refs/heads/{new_branch}")  # '..', '.lock', 'a/', ...
    ):
        raise UsageError(f"--branch {new_branch!r} is not a valid branch name")
    if ws.run_git("branch", "--list", new_branch):
        raise UsageError(f"--branch {new_branch!r} already exists; pick another name")


def branch(ws: Workspace, name: str, new_branch: str) -> None:
    """``dvc exp branch``: make a git branch from an experiment."""
    check_branch_name(ws, new_branch)
    ws.dvc.experiments.branch(name, new_branch)


# -- merging ---------------------------------------------------------------------------
@dataclass
class MergeResult:
    commit: str | None
    regenerated: list[str]
    reran: list[str]
    conflicts: list[str]


def generated_paths(ws: Workspace) -> set[str]:
    """Files the pipeline writes and git tracks: dvc.lock and every ``cache: false`` output."""
    paths = {"dvc.lock"}
    for out in ws.dvc.index.outs:
        if not out.use_cache:
            paths.add(out.def_path)
    return paths


def _is_generated(path: str, generated: set[str]) -> bool:
    if path in generated or any(path.startswith(g.rstrip("/") + "/") for g in generated):
        return True
    # .gitignore files DVC writes next to its cached outputs
    return path.endswith(".gitignore") and path != ".gitignore"


def merge(ws: Workspace, branch_name: str) -> MergeResult:
    """Merge ``branch_name``; regenerate pipeline outputs instead of hand-merging them.

    A failed ``dvc repro``, Ctrl-C or SIGTERM before the merge commit undoes the merge
    (HEAD, dvc.lock and the outputs as before; ``git merge --abort`` cannot, once the
    pipeline has rewritten tracked files); during the commit an interrupt waits for it."""
    from modelops import interrupts

    dirty = ws.dirty_files()
    if dirty:
        raise WorkspaceError(
            f"uncommitted changes in {', '.join(dirty[:5])}; commit or stash them before merging"
        )
    try:
        ws.commit_of(branch_name)
    except WorkspaceError:
        raise UsageError(f"{branch_name!r} is not a branch or revision here") from None
    generated = generated_paths(ws)
    head = ws.head()
    with interrupts.as_interrupt():
        try:
            commit = _start_merge(ws, branch_name, generated, head)
        except KeyboardInterrupt:
            failed = _put_back(ws, head)
            raise Interrupted(
                f"merge of {branch_name} stopped, and {failed}"
                if failed
                else f"merge of {branch_name} stopped and undone: {UNDONE.format(head[:8])}"
            ) from None
        if commit is None:
            return MergeResult(None, [], [], [])
        try:
            with interrupts.deferred():
                return commit()
        except interrupts.Finished:
            raise Interrupted(
                f"merge of {branch_name} had completed when the interrupt came: HEAD is at "
                f"{ws.head()[:8]}"
            ) from None


def _start_merge(
    ws: Workspace, branch_name: str, generated: set[str], head: str
) -> Callable[[], MergeResult] | None:
    """Merge without committing and reproduce; return what makes the commit (None when
    already up to date). Git runs with interrupts held, so that it never stops halfway."""
    import subprocess

    from modelops import interrupts

    def is_ancestor(a: str, b: str) -> bool:
        proc = subprocess.run(["git", "merge-base", "--is-ancestor", a, b], cwd=ws.root)
        return proc.returncode == 0

    # Asked of the commit graph, not read from git's (translatable) "Already up to date".
    if is_ancestor(branch_name, head):
        return None
    if is_ancestor(head, branch_name):
        return _fast_forward(ws, branch_name, generated)
    with interrupts.deferred():
        proc = subprocess.run(
            ["git", "merge", "--no-commit", "--no-ff", branch_name],
            cwd=ws.root,
            capture_output=True,
            text=True,
        )
        conflicts = ws.run_git("diff", "--name-only", "--diff-filter=U").split()
        if proc.returncode != 0 and not conflicts:
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise WorkspaceError(f"git merge {branch_name}: {detail[-1] if detail else 'failed'}")
        hand = [c for c in conflicts if not _is_generated(c, generated)]
        if hand:
            raise WorkspaceError(
                f"merge of {branch_name} stopped: code, params or data conflict in "
                f"{', '.join(hand)}; resolve them and commit, or `git merge --abort` to go back"
            )
        for path in conflicts:
            if path.endswith(".gitignore"):
                _union_gitignore(ws, path)
            else:
                # Either side will do: the pipeline rewrites it from the merged code and params.
                ws.run_git("checkout", "--ours", "--", path)
            ws.run_git("add", "--", path)
    interrupts.pause_for_test("merge-started")
    reran = _repro_or_undo(ws, head)

    def commit() -> MergeResult:
        _add_generated(ws, generated)
        body = [f"Regenerated (were in conflict): {', '.join(conflicts)}"] if conflicts else []
        body.append(_reproduced_line(reran))
        message = f"Merge {branch_name}\n\n" + "\n".join(body)
        ws.run_git("commit", "--quiet", "--no-edit", "-m", message)
        return MergeResult(ws.head(), conflicts, reran, [])

    return commit


def _add_generated(ws: Workspace, generated: set[str]) -> None:
    ws.run_git("add", "-A", "--", *sorted(g for g in generated if (ws.root / g).exists()))
    for ignore in ws.run_git("ls-files", "--modified", "--others", "--exclude-standard").split():
        if ignore.endswith(".gitignore"):
            ws.run_git("add", "--", ignore)


UNDONE = "HEAD ({}), dvc.lock and the outputs are as before it"


def _put_back(ws: Workspace, head: str) -> str | None:
    """HEAD, the index, dvc.lock and the outputs back as before the merge (the tree was clean
    then), with interrupts held until that is done. Returns what failed, and what to run
    instead, or None."""
    from modelops import interrupts
    from modelops.workspace import Workspace as _W
    from modelops.workspace import scrub

    with interrupts.deferred():
        # A stage DVC started may outlive the interrupt (SIGTERM reaches this process only):
        # it must be gone before the outputs are put back, or it would write after that.
        interrupts.stop_children()
        try:
            # Also ends a merge in progress; the outputs then come back from the DVC cache.
            ws.run_git("reset", "--quiet", "--hard", head)
            with _W(ws.root).dvc as repo:
                repo.checkout(force=True)
        except Exception as exc:
            return (
                f"putting the workspace back failed ({scrub(str(exc))}): run `git reset "
                f"--hard {head[:8]}` (it ends the merge), then `dvc checkout --force`"
            )
    return None


def _repro_or_undo(ws: Workspace, head: str) -> list[str]:
    """``_repro``; if it fails, the merge is undone first."""
    try:
        return _repro(ws)
    except WorkspaceError as exc:
        failed = _put_back(ws, head)
        raise WorkspaceError(
            f"{exc}; {failed or 'the merge was undone: ' + UNDONE.format(head[:8])}"
        ) from None


def _reproduced_line(stages: list[str]) -> str:
    # DVC restores a stage from its run cache without running it; both count as reproduced.
    done = ", ".join(stages) if stages else "nothing (outputs were current)"
    return f"Reproduced (run, or restored from DVC's run cache): {done}"


def _fast_forward(
    ws: Workspace, branch_name: str, generated: set[str]
) -> Callable[[], MergeResult]:
    """A plain descendant: move to it as git would, then bring the outputs to its dvc.lock;
    a commit only if its lock was stale and reproducing changed something."""
    from modelops import interrupts

    before = ws.head()
    with interrupts.deferred():
        ws.run_git("merge", "--ff-only", "--quiet", branch_name)
    interrupts.pause_for_test("merge-started")
    reran = _repro_or_undo(ws, before)

    def commit() -> MergeResult:
        _add_generated(ws, generated)
        if ws.run_git("diff", "--cached", "--name-only").split():
            message = f"Reproduce after fast-forward to {branch_name}\n\n{_reproduced_line(reran)}"
            ws.run_git("commit", "--quiet", "--no-edit", "-m", message)
        return MergeResult(ws.head(), [], reran, [])

    return commit


def _union_gitignore(ws: Workspace, path: str) -> None:
    ours = (ws.show(":2", path) or "").splitlines()
    theirs = (ws.show(":3", path) or "").splitlines()
    merged = list(dict.fromkeys(line for line in ours + theirs if line.strip()))
    (ws.root / path).write_text("\n".join(merged) + "\n")


def _repro(ws: Workspace) -> list[str]:
    """``dvc repro`` on the merged tree; return the stages that ran."""
    from modelops.workspace import Workspace as _W

    fresh = _W(ws.root)  # index the merged dvc.yaml, not the one before the merge
    try:
        stages = fresh.dvc.reproduce()
    except Exception as exc:
        if _stage_interrupted(exc):
            raise KeyboardInterrupt from None
        raise WorkspaceError(f"dvc repro failed on the merged tree ({exc})") from None
    return [s.addressing for s in stages]


def _stage_interrupted(exc: BaseException | None) -> bool:
    """Whether a stage stopped on Ctrl-C. DVC ignores SIGINT while a stage runs (the stage,
    in the same process group, gets it) and reports how the stage exited instead: 130 from
    ours, -2 from a process stopped before Python could handle the signal."""
    from dvc.stage.exceptions import StageCmdFailedError

    while exc is not None:
        if isinstance(exc, StageCmdFailedError):
            return str(exc).endswith(("exited with 130", "exited with -2"))
        exc = exc.__cause__ or exc.__context__
    return False
