"""Writing registry tags: the message format, atomic creation with retry, the lock, and the
one-second spacing that keeps DVC's and GTO's idea of a stage holder the same.

Tags are created with ``git tag -a``, which refuses an existing name atomically, so two
racing writers never share a version or lose an assignment: the loser sees ``TagExists``
(checked on the ref, not in git's wording), recomputes the name and retries. Every
operation that writes a tag runs under ``locked``, so its checks and its tag are one step
for every worktree of the repository.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from modelops.errors import RegistryError, TagExists, WorkspaceError
from modelops.registry.state import ASSIGN, UNASSIGN

if TYPE_CHECKING:
    from modelops.registry.state import State
    from modelops.workspace import Workspace

RETRIES = 20

P = ParamSpec("P")
R = TypeVar("R")


def locked(op: Callable[Concatenate[Workspace, P], R]) -> Callable[Concatenate[Workspace, P], R]:
    """Run a registry write holding the lock in the common git dir (``Workspace.lock``).

    The lock is taken here, on the write path, rather than by every caller (DVC's
    ``@locked``); it is not re-entrant, so a locked operation never calls another.
    """

    @functools.wraps(op)
    def run(ws: Workspace, *args: P.args, **kwargs: P.kwargs) -> R:
        with ws.lock():
            return op(ws, *args, **kwargs)

    return run


def message(summary: str, data: dict[str, Any]) -> str:
    """A tag message: one summary line, a blank line, then the event's data as JSON."""
    return f"{summary}\n\n{json.dumps(data, indent=2, sort_keys=True)}\n"


def exists(ws: Workspace, tag: str) -> bool:
    """Whether ``refs/tags/<tag>`` exists (asked of the ref, not read from an error)."""
    from git import GitCommandError

    try:
        ws.git.git.execute(["git", "rev-parse", "--verify", "--quiet", f"refs/tags/{tag}"])
    except GitCommandError:
        return False
    return True


def create_once(ws: Workspace, tag: str, message: str, commit: str) -> str:
    """``git tag -a``; ``TagExists`` if the name is taken, whoever took it and when."""
    try:
        ws.run_git("tag", "--annotate", "--cleanup=verbatim", "-m", message, tag, commit)
    except WorkspaceError:
        if exists(ws, tag):
            raise TagExists(tag) from None
        raise
    return tag


def create(ws: Workspace, make: Callable[[], tuple[str, str]], commit: str) -> str:
    """Create an annotated tag, retrying with a fresh (name, message) from ``make`` while a
    racing writer takes the name; ``TagExists`` when ``make`` offers a taken name again."""
    tried: set[str] = set()
    for _ in range(RETRIES):
        tag, text = make()
        if tag in tried:
            raise TagExists(tag)
        tried.add(tag)
        try:
            return create_once(ws, tag, text, commit)
        except TagExists:
            continue
    raise RegistryError(f"could not create a registry tag after {RETRIES} tries; try again")


def after_latest_assignment(st: State, name: str) -> None:
    """Make this assignment's tagger time later than every earlier one.

    DVC resolves ``--stage`` by tag time (whole seconds); GTO's counter is the
    true order. Waiting out the second keeps the two in agreement.
    """
    times = [e.time for e in st.of(name) if e.kind in (ASSIGN, UNASSIGN)]
    if times:
        wait = max(times) + 1 - time.time()
        if wait > 0:
            time.sleep(wait + 0.01)


def assign(ws: Workspace, st: State, name: str, stage: str, commit: str, text: str) -> str:
    """Write the next ``name#stage#N`` tag at ``commit``, a second after the last assignment."""
    from gto.constants import Action
    from gto.tag import name_tag
    from scmrepo.git import Git

    scm = Git(str(ws.root))
    after_latest_assignment(st, name)
    return create(ws, lambda: (name_tag(Action.ASSIGN, name, stage=stage, scm=scm), text), commit)
