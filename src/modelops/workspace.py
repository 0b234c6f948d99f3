"""Git and DVC operations on the checkout: clean-tree checks, reading files at a revision,
cache presence, fetch, checkout, temporary worktrees and reading DVC objects (for verify).
Commands are run as argument lists, never through a shell.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from functools import cached_property
from pathlib import Path
from typing import Any

from modelops.errors import ModelopsError, WorkspaceError

SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def scrub(message: str, ws: Workspace | None = None) -> str:
    """Remove secrets (from the environment and .dvc/config.local) from a message."""
    secrets = [os.environ.get(k) for k in SECRET_ENV]
    if ws is not None:
        try:
            for section in ws.dvc.config.get("remote", {}).values():
                secrets += [section.get(k) for k in ("secret_access_key", "session_token")]
        except Exception:  # a broken config is reported elsewhere
            pass
    for secret in filter(None, secrets):
        message = message.replace(secret, "***")
    return message


class Workspace:
    """The git + DVC repository that holds the model."""

    def __init__(self, path: str | Path = ".") -> None:
        import git

        try:
            self.git = git.Repo(path, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise WorkspaceError(
                f"{Path(path).resolve()}: not inside a git repository; "
                f"run modelops from the model's checkout"
            ) from None
        self.root = Path(self.git.working_tree_dir or path).resolve()
        if not (self.root / "dvc.yaml").exists():
            raise WorkspaceError(
                f"{self.root}: no dvc.yaml here; run modelops from the project root"
            )

    # -- git -----------------------------------------------------------------
    def run_git(self, *args: str) -> str:
        from git import GitCommandError

        try:
            return self.git.git.execute(["git", *args], with_extended_output=False)
        except GitCommandError as exc:
            detail = (exc.stderr or exc.stdout or "").strip().removeprefix("stderr: ").strip("'\n ")
            verb = next((a for a in args if not a.startswith("-") and "=" not in a), args[0])
            raise WorkspaceError(f"git {verb}: {detail or exc}") from None

    def commit_of(self, rev: str) -> str:
        return self.run_git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")

    def head(self) -> str:
        return self.commit_of("HEAD")

    def current_ref(self) -> str:
        """The branch checked out, or the commit when HEAD is detached."""
        return self.git.active_branch.name if not self.git.head.is_detached else self.head()

    def show(self, rev: str, path: str) -> str | None:
        """A file's exact text at a revision (None if it does not exist there)."""
        from git import GitCommandError

        try:
            return self.git.git.execute(
                ["git", "show", f"{rev}:{path}"], strip_newline_in_stdout=False
            )
        except GitCommandError:
            return None

    def dirty_files(self) -> list[str]:
        """Tracked files with uncommitted changes (staged or not)."""
        out = self.run_git("status", "--porcelain", "--untracked-files=no")
        return [line[3:] for line in out.splitlines() if line.strip()]

    def author(self) -> str:
        reader = self.git.config_reader()
        name = os.environ.get("GIT_AUTHOR_NAME") or reader.get_value("user", "name", "unknown")
        email = os.environ.get("GIT_AUTHOR_EMAIL") or reader.get_value("user", "email", "")
        return f"{name} <{email}>" if email else str(name)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Serialise registry writes on this machine, across all worktrees of the repository
        (checks and tag creation together)."""
        import fcntl

        # The common git dir: every worktree of the repository writes the same tags.
        path = Path(self.git.common_dir) / "modelops-registry.lock"
        with open(path, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- files at a revision ------------------------------------------------------
    def yaml_at(self, rev: str, path: str) -> Any:
        from modelops.params import yaml_loads

        text = self.show(rev, path)
        return yaml_loads(text) if text is not None else None

    def json_at(self, rev: str, path: str) -> Any:
        text = self.show(rev, path)
        try:
            return json.loads(text) if text is not None else None
        except json.JSONDecodeError:
            return None

    def paths_at(self, rev: str) -> dict[str, str]:
        """params.yaml's ``paths`` section at a revision (defaults where absent)."""
        defaults = {
            "metrics": "metrics/metrics.json",
            "card": "metrics/card",
            "model": "models/model.npz",
        }
        raw = self.yaml_at(rev, "params.yaml") or {}
        return {**defaults, **(raw.get("paths") or {})}

    def lock_outs_at(self, rev: str) -> dict[str, str]:
        """{output path: md5} from dvc.lock at a revision (parsed once per revision)."""
        cache = self.__dict__.setdefault("_lock_outs_by_rev", {})
        if rev not in cache:
            cache[rev] = self._lock_outs(rev)
        return cache[rev]

    def _lock_outs(self, rev: str) -> dict[str, str]:
        lock = self.yaml_at(rev, "dvc.lock") or {}
        outs = {}
        for stage in (lock.get("stages") or {}).values():
            for out in stage.get("outs") or []:
                outs[Path(out["path"]).as_posix()] = str(out.get("md5"))
        return outs

    # -- DVC -----------------------------------------------------------------------
    @cached_property
    def dvc(self):
        from dvc.repo import Repo

        return Repo(str(self.root))

    def close_dvc(self) -> None:
        """Release the DVC repo object (the next use opens a fresh one)."""
        repo = self.__dict__.pop("dvc", None)
        if repo is not None:
            repo.close()

    def artifacts(self) -> dict[str, Any]:
        """{name: Artifact} declared in the workspace's dvc.yaml."""
        found: dict[str, Any] = {}
        for arts in self.dvc.artifacts.read().values():
            found.update(arts)
        return found

    def modified_outputs(self) -> list[str]:
        """DVC-cached outputs whose workspace bytes differ from dvc.lock: work a checkout
        would overwrite. Unlike ``dvc status`` it leaves dependencies alone, which halves
        the time (outputs kept in git show up in ``dirty_files``)."""
        return [
            str(out)
            for out in self.dvc.index.outs
            if out.use_cache and out.hash_info and out.exists and out.changed_checksum()
        ]

    def stale_stages(self) -> dict[str, Any]:
        """``dvc status``: stages whose deps, params or outs differ from dvc.lock."""
        return self.dvc.status()

    def missing_from_cache(self, rev: str) -> list[str]:
        """Outputs recorded in dvc.lock at ``rev`` whose bytes are not in the local cache."""
        odb = self.dvc.cache.local
        missing = []
        for path, md5 in self.lock_outs_at(rev).items():
            if self.show(rev, path) is not None:
                continue  # kept in git (cache: false), nothing to fetch
            cache_file = Path(odb.oid_to_path(md5))
            if not cache_file.exists():
                missing.append(path)
            elif md5.endswith(".dir"):
                entries = json.loads(cache_file.read_bytes())
                if any(not Path(odb.oid_to_path(e["md5"])).exists() for e in entries):
                    missing.append(path)
        return missing

    def has_remote(self) -> bool:
        return bool(self.dvc.config.get("core", {}).get("remote"))

    def fetch(self, rev: str) -> None:
        """Download what ``rev`` needs from the default DVC remote into the cache."""
        try:
            self.dvc.fetch(revs=[rev])
        except Exception as exc:  # DVC raises many types for unreachable remotes
            raise WorkspaceError(f"dvc fetch: {exc}") from None

    def checkout(self, rev: str, force: bool = False) -> None:
        """``git checkout <rev>`` then ``dvc checkout``."""
        self.run_git("checkout", "--quiet", *(["--force"] if force else []), rev)
        self.dvc_checkout(force=force)

    def dvc_checkout(self, force: bool = False) -> None:
        from dvc.repo import Repo

        # A fresh Repo: the cached one indexed the previous revision's dvc.yaml.
        self.__dict__.pop("dvc", None)
        with Repo(str(self.root)) as repo:
            try:
                repo.checkout(force=force)
            except Exception as exc:
                raise ModelopsError(f"dvc checkout: {exc}") from None

    # -- verify: an isolated worktree and DVC objects read without DVC's bookkeeping --------
    @contextlib.contextmanager
    def temp_worktree(self, commit: str) -> Iterator[Path]:
        """A detached worktree of ``commit`` in a new temp directory, removed afterwards (on
        errors, Ctrl-C and SIGTERM too). The checkout, its branch, index and tags are not
        touched; git keeps an entry under .git/worktrees only while the worktree exists."""
        import shutil
        import signal
        import tempfile
        import threading

        self.run_git("worktree", "prune")  # entries left by a run that was killed outright
        parent = Path(tempfile.mkdtemp(prefix="modelops-verify-"))
        path = parent / commit[:12]
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            # No hooks: a `dvc install`ed post-checkout hook would run DVC in the new tree.
            self.run_git(
                "-c", "core.hooksPath=/dev/null", "worktree", "add", "--detach", "--quiet",
                str(path), commit,
            )  # fmt: skip
            yield path
        finally:
            try:
                with contextlib.suppress(WorkspaceError):
                    self.run_git("worktree", "remove", "--force", "--force", str(path))
                shutil.rmtree(parent, ignore_errors=True)
                with contextlib.suppress(WorkspaceError):
                    self.run_git("worktree", "prune")
            finally:
                if previous is not None:
                    signal.signal(signal.SIGTERM, previous)

    def remote_name(self) -> str | None:
        """The default DVC remote (workspace config, config.local included), if any."""
        return self.dvc.config.get("core", {}).get("remote") or None

    def open_object(self, oid: str) -> tuple[AbstractContextManager, str] | None:
        """A DVC object's bytes as a binary stream, from the local cache or else the default
        remote: (stream, where), or None when neither holds it. Nothing is written to the
        cache: the caller hashes what it reads. Raises WorkspaceError for a remote that
        cannot be reached."""
        local = Path(self.dvc.cache.local.oid_to_path(oid))
        if local.is_file():
            return open(local, "rb"), f"the DVC cache ({local})"
        name = self.remote_name()
        if name is None:
            return None
        try:
            odb = self.__dict__.get("_verify_odb") or self.dvc.cloud.get_remote_odb(
                name, "verify", hash_name="md5"
            )
            self.__dict__["_verify_odb"] = odb
            path = odb.oid_to_path(oid)
            if not odb.fs.exists(path):
                return None
            return odb.fs.open(path, "rb"), f"DVC remote {name!r}"
        except Exception as exc:  # DVC and the fs libraries raise many types here
            why = scrub(str(exc), self) or type(exc).__name__
            raise WorkspaceError(f"DVC remote {name!r} cannot be reached ({why})") from None

    def tree_files(self, rel: str) -> list[str]:
        """Files under directory ``rel`` that DVC hashes (.dvcignore and DVC's defaults
        applied), as posix paths relative to it."""
        base = os.path.join(str(self.root), rel)
        found = self.dvc.dvcignore.find(self.dvc.fs, base)
        return sorted(Path(os.path.relpath(f, base)).as_posix() for f in found)

    def metric_paths(self) -> list[str]:
        """Outputs dvc.yaml declares as metrics, relative to the root."""
        return sorted(
            Path(os.path.relpath(out.fs_path, self.root)).as_posix()
            for out in self.dvc.index.outs
            if out.is_metric
        )

    def stage_names(self) -> list[str]:
        """Pipeline stages declared in the root dvc.yaml (not ``.dvc`` data sources)."""
        from dvc.stage import PipelineStage

        root = os.path.join(str(self.root), "dvc.yaml")
        return [
            s.name
            for s in self.dvc.index.stages
            if isinstance(s, PipelineStage) and os.path.abspath(s.path) == root
        ]


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
