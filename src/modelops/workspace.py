"""Git and DVC operations on the checkout: clean-tree checks, reading files at a revision,
cache presence, fetch, checkout, temporary worktrees and reading DVC objects (for verify).
Commands are run as argument lists, never through a shell.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import posixpath
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from modelops.errors import BundleError, RemoteError, WorkspaceError
from modelops.files import md5_file, remove_path

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
        found = self.blob(rev, path)
        return found[1].decode() if found else None

    def blob(self, rev: str, path: str) -> tuple[str, bytes] | None:
        """(object id, bytes) of a file at a revision, or None: through the one ``git cat-file
        --batch`` process GitPython keeps per repository, not a ``git show`` per file."""
        spec = f"{rev}:{path}"
        if not _inside(path) or "\n" in spec:  # one request per line, and only in the tree
            return None
        try:
            oid, kind, _, data = self.git.git.get_object_data(spec)
        except ValueError:  # "<spec> missing"
            return None
        return (oid.decode(), data) if kind == b"blob" else None

    def blobs(self, specs: list[tuple[str, str]]) -> list[bytes | None]:
        """Many files at revisions at once: one ``git cat-file --batch`` with every request
        written before an answer is read (no round trip per file)."""
        import subprocess

        asked = [f"{rev}:{path}" for rev, path in specs]
        if not asked:
            return []
        if any("\n" in a for a in asked):
            raise WorkspaceError("a path holds a line break; rename it")
        outside = next((path for _, path in specs if not _inside(path)), None)
        if outside is not None:
            raise WorkspaceError(f"{outside!r}: not a path inside the repository")
        proc = subprocess.run(
            ["git", "cat-file", "--batch"],
            cwd=self.root,
            input="".join(f"{a}\n" for a in asked).encode(),
            capture_output=True,
            check=False,
        )
        if proc.returncode:
            raise WorkspaceError(f"git cat-file: {proc.stderr.decode(errors='replace').strip()}")
        out, pos, found = proc.stdout, 0, []
        for _ in asked:
            end = out.index(b"\n", pos)
            header = out[pos:end].split()
            pos = end + 1
            if len(header) == 3:  # "<oid> <type> <size>", then the bytes and a newline
                size = int(header[2])
                found.append(out[pos : pos + size] if header[1] == b"blob" else None)
                pos += size + 1
            else:  # "<spec> missing" or "ambiguous"
                found.append(None)
        return found

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
        """A YAML file at a revision, parsed as DVC parses it (None if absent). Parsed once per
        distinct content in this process: treat the result as read-only."""
        from ruamel.yaml.error import YAMLError

        found = self.blob(rev, path)
        if not found:
            return None
        try:
            return _parsed_yaml(found[0], found[1])
        except (YAMLError, UnicodeDecodeError) as exc:
            problem = str(getattr(exc, "problem", None) or exc).splitlines()[0][:200]
            raise WorkspaceError(
                f"{path} at {rev[:12]}: not valid YAML ({problem}); fix it in a new commit"
            ) from None

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
        raw = self.yaml_at(rev, "params.yaml")
        paths = raw.get("paths") if isinstance(raw, dict) else None
        if not isinstance(paths, dict):
            return defaults
        # a commit's file is anyone's input: keep only the entries that can be paths
        return {**defaults, **{k: v for k, v in paths.items() if isinstance(v, str) and v}}

    def lock_outs_at(self, rev: str) -> dict[str, str]:
        """{output path: md5} from dvc.lock at a revision (parsed once per revision)."""
        cache = self.__dict__.setdefault("_lock_outs_by_rev", {})
        if rev not in cache:
            cache[rev] = self._lock_outs(rev)
        return cache[rev]

    def _lock_outs(self, rev: str) -> dict[str, str]:
        import yaml

        found = self.blob(rev, "dvc.lock")
        if not found:
            return {}
        # libyaml, as in cached_outputs_at: DVC writes this file and quotes what YAML could
        # misread; ruamel's pure-Python parser took a tenth of a second on ours.
        try:
            lock = yaml.load(found[1], Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as exc:
            problem = str(getattr(exc, "problem", None) or exc).splitlines()[0][:200]
            raise WorkspaceError(
                f"dvc.lock at {rev[:12]}: not valid YAML ({problem}); fix it in a new commit"
            ) from None
        outs = {}
        stages = lock.get("stages") if isinstance(lock, dict) else None
        for stage in (stages if isinstance(stages, dict) else {}).values():
            for out in (stage.get("outs") if isinstance(stage, dict) else None) or []:
                if isinstance(out, dict) and isinstance(out.get("path"), str):
                    outs[Path(out["path"]).as_posix()] = str(out.get("md5"))
        return outs

    # -- DVC -----------------------------------------------------------------------
    @cached_property
    def dvc(self):
        from dvc.repo import Repo

        # DVC reads an older revision's .dvc/config with today's config.local laid over it: a
        # remote added since (credentials in config.local) then has no url, and DVC refuses
        # or skips that revision. The workspace's remotes, laid over every revision, win.
        return Repo(str(self.root), config=self.remote_settings() or None)

    def remote_settings(self) -> dict[str, Any]:
        """``core.remote`` and every ``remote`` section of the working tree (.dvc/config with
        .dvc/config.local over it; relative paths made absolute), unvalidated: what DVC
        should use at any revision."""
        import copy

        from dvc.config import Config

        conf = Config(str(self.root / ".dvc"), validate=False)
        out: dict[str, Any] = {}
        if conf.get("remote"):
            out["remote"] = copy.deepcopy(dict(conf["remote"]))
        default = (conf.get("core") or {}).get("remote")
        if default:
            out["core"] = {"remote": default}
        return out

    def carry_remotes(self, settings: dict[str, Any]) -> list[str]:
        """After HEAD moved to a revision whose .dvc/config predates remotes the workspace
        used (``settings``, from ``remote_settings`` before the move), write what it lacks
        into .dvc/config.local (kept 0600), so that DVC and modelops still reach them there.
        Keys the revision defines itself are left to it. Returns the remotes written."""
        from dvc.config import Config, ConfigError

        conf = Config(str(self.root / ".dvc"), validate=False)
        below = conf.load_config_to_level("local")  # system, global and the revision's own
        have = conf.load_one("local")
        written: list[str] = []
        edits: dict[str, dict[str, Any]] = {}
        for name, section in (settings.get("remote") or {}).items():
            known = {**(below.get("remote") or {}).get(name, {}), **have["remote"].get(name, {})}
            missing = {k: v for k, v in section.items() if k not in known}
            if missing:
                edits[name] = missing
        default = (settings.get("core") or {}).get("remote")
        set_default = bool(
            default and not have["core"].get("remote") and not below.get("core", {}).get("remote")
        )
        if not edits and not set_default:
            return written
        local = self.root / ".dvc" / "config.local"
        os.close(os.open(local, os.O_WRONLY | os.O_CREAT, 0o600))  # DVC rewrites it in place
        local.chmod(0o600)
        try:
            with conf.edit("local") as edit:
                for name, missing in edits.items():
                    edit["remote"].setdefault(name, {}).update(missing)
                    written.append(name)
                if set_default:
                    edit["core"]["remote"] = default
        except ConfigError:
            # The checkout is done; a revision whose config DVC cannot read even with the
            # workspace's remotes is left as it is (DVC then says what is wrong with it).
            return []
        return sorted(set(written) | ({default} if set_default else set()))

    def artifact_path_at(self, rev: str, name: str) -> str:
        """The path (from the repository root) that ``name`` declares in dvc.yaml at ``rev``,
        as DVC resolves it. A commit's answer never changes, so it is kept in
        ``.dvc/tmp/`` (DVC's own ignored scratch directory): DVC builds its whole index to
        answer, which took longer than the rest of a ``monitor`` run."""
        from dvc.utils import as_posix

        commit = rev if _is_sha(rev) else None
        memo = _ArtifactMemo(self.root) if commit else None
        if memo is not None and (known := memo.get(commit, name)) is not None:
            return known
        repo = self.dvc
        with repo.switch(rev):
            path = as_posix(repo.artifacts.get_path(name)).lstrip("/")
        if memo is not None:
            memo.put(commit, name, path)
        return path

    def close_dvc(self) -> None:
        """Release the DVC repo object (the next use opens a fresh one)."""
        repo = self.__dict__.pop("dvc", None)
        if repo is not None:
            repo.close()

    def declared_names(self) -> list[str]:
        """The artifact names the working tree's top-level dvc.yaml declares: the names that
        `dvc artifacts get` and GTO accept without a ``path:`` prefix. Read without DVC,
        whose index would parse every stage to list them."""
        import yaml

        path = self.root / "dvc.yaml"
        try:
            # Every scalar as the string written (CBaseLoader): the keys are the names.
            raw = yaml.load(path.read_bytes(), Loader=getattr(yaml, "CBaseLoader", yaml.BaseLoader))
        except (OSError, yaml.YAMLError) as exc:
            problem = str(getattr(exc, "problem", None) or exc).splitlines()[0][:200]
            raise WorkspaceError(f"{path}: not valid YAML ({problem}); fix it") from None
        arts = raw.get("artifacts") if isinstance(raw, dict) else None
        return sorted(str(k) for k in arts) if isinstance(arts, dict) else []

    def artifacts(self) -> dict[str, Any]:
        """{name: Artifact} declared in the workspace's dvc.yaml."""
        found: dict[str, Any] = {}
        for arts in self.dvc.artifacts.read().values():
            found.update(arts)
        return found

    def ref_name_ok(self, ref: str) -> bool:
        """Whether git accepts ``ref`` as a reference name (``git check-ref-format``)."""
        import subprocess

        return subprocess.run(["git", "check-ref-format", ref], cwd=self.root).returncode == 0

    def uncommitted_md5(self) -> str:
        """An md5 of the tracked files' uncommitted changes ("none" without any): what DVC
        experiments of the workspace carry besides HEAD."""
        import hashlib

        diff = self.git.git.diff("HEAD", "--binary", stdout_as_string=False)
        return hashlib.md5(diff).hexdigest() if diff else "none"

    def standalone_dirs(self) -> set[str]:
        """The working copies ``dvc exp run --temp`` makes, in .dvc/tmp/exps/standalone."""
        where = self.root / ".dvc" / "tmp" / "exps" / "standalone"
        return {p.name for p in where.iterdir()} if where.is_dir() else set()

    def drop_standalone(self, name: str, before: set[str]) -> None:
        """After a ``dvc exp run --temp --name NAME`` was killed: remove the working copy it
        made (those not in ``before``) and its stash entry, if it had not taken it yet (the
        next ``--temp`` run would run it first)."""
        where = self.root / ".dvc" / "tmp" / "exps" / "standalone"
        for made in self.standalone_dirs() - before:
            shutil.rmtree(where / made, ignore_errors=True)
        with contextlib.suppress(Exception):  # DVC's types; nothing to remove is fine
            self.dvc.experiments.tempdir_queue.remove([name])

    def stop_queue_tasks(self, names: list[str], wait: float = 60.0) -> list[str]:
        """Stop DVC's queue tasks ``names``: remove those still queued and kill those running,
        until each is removed or done (a task a worker has taken but not started is in
        neither list, and DVC refuses to kill it "while initializing": the loop waits it out,
        up to ``wait`` seconds). Returns the names not stopped."""
        import time

        queue = self.dvc.experiments.celery_queue
        pending, deadline = set(names), time.monotonic() + wait
        while True:
            queued = [e.name for e in queue.iter_queued() if e.name in pending]
            if queued:
                with contextlib.suppress(Exception):
                    queue.remove(queued)
                    pending -= set(queued)
            pending -= {d.entry.name for d in queue.iter_done()}
            if not pending:
                # Killed tasks stay listed as failed (`dvc exp show`, `exp best`): not a
                # result of anything, they go; the study keeps them as interrupted.
                killed = [d.entry.name for d in queue.iter_failed() if d.entry.name in names]
                if killed:
                    with contextlib.suppress(Exception):
                        queue.remove(killed)
                return []
            if time.monotonic() > deadline:
                return sorted(pending)
            running = [e.name for e in queue.iter_active() if e.name in pending]
            if running:
                with contextlib.suppress(Exception):  # "initializing, please wait": retried
                    queue.kill(running, force=True)
            time.sleep(0.5)

    def queued_experiments(self) -> int:
        """How many experiments wait in DVC's queue (``dvc queue status``: Queued)."""
        return sum(1 for _ in self.dvc.experiments.celery_queue.iter_queued())

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
        """``dvc status``: stages whose deps, params or outs differ from dvc.lock. DVC writes
        its stage lock (.dvc/tmp/rwlock) meanwhile: a Ctrl-C in the middle of that write left
        it empty, and every later DVC command refused the repository, so the interrupt waits
        for the status (a KeyboardInterrupt after it, as it would have been)."""
        from modelops import interrupts

        with interrupts.deferred():
            interrupts.pause_for_test("dvc-status")
            return self.dvc.status()

    def cached_bytes(self, md5: str) -> bytes | None:
        """A file's bytes from the DVC cache at its default place, if they are there and their
        md5 is ``md5``; else None (DVC then reads them from wherever its config says). Asking
        DVC costs its import and a repository object, more than reading a bundle."""
        if len(md5) != 32 or not all(c in "0123456789abcdef" for c in md5):
            return None  # a directory (.dir) or not an md5: DVC's business
        from modelops.files import md5_bytes

        try:
            data = (self.root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]).read_bytes()
        except OSError:
            return None
        return data if md5_bytes(data) == md5 else None

    def cache_path(self, oid: str) -> Path:
        return Path(self.dvc.cache.local.oid_to_path(oid))

    def cached_outputs_at(self, rev: str) -> dict[str, str]:
        """{path: md5} of every output the commit keeps in the DVC cache: the outputs of
        each dvc.lock and each ``.dvc`` file in its tree, less those committed to git.
        Only DVC 3 (``hash: md5``) records; older ones are left to ``dvc checkout``."""
        import yaml

        # libyaml: ruamel's pure-Python parser took most of this function's time. Only
        # paths and md5s are read, and DVC quotes strings that YAML could misread.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        tree = self.git.commit(rev).tree
        outs: dict[str, str] = {}
        self.unverified: list[str] = []
        for item in tree.traverse():
            if item.type != "blob":
                continue
            name = PurePosixPath(item.path)
            if name.name != "dvc.lock" and (name.suffix != ".dvc" or name.parts[0] == ".dvc"):
                continue
            try:
                record = yaml.load(item.data_stream.read(), Loader=loader) or {}
                entries = _dvc_outs(record, lock=name.name == "dvc.lock")
            except (yaml.YAMLError, TypeError) as exc:
                detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise WorkspaceError(
                    f"{item.path} at {rev}: not in the shape DVC writes ({detail}); nothing was "
                    f"changed; correct it in a new commit (`dvc repro` or `dvc add` rewrites it)"
                ) from None
            for out in entries:
                if out.get("hash") != "md5" and out.get("md5"):
                    self.unverified.append(str(out.get("path")))
                elif out.get("md5") and out.get("path"):
                    path = posixpath.normpath(posixpath.join(str(name.parent), out["path"]))
                    outs[path] = str(out["md5"])
        in_git = set()
        for path in outs:
            with contextlib.suppress(KeyError):
                tree / path
                in_git.add(path)
        return {p: m for p, m in outs.items() if p not in in_git}

    def stage_outputs(self, paths: dict[str, str], ref: str, local: bool = False) -> Staged:
        """Copy each output's object from the DVC cache next to its destination and hash
        the copy; a corrupt object is fetched again from the default remote (repairing the
        cache), or refused. Nothing in the workspace changes until ``Staged.install``; on
        an error every temporary copy is removed first. ``local``: the cache only, raising
        ``NeedsRemote`` for an object it lacks or holds corrupt."""
        staged = Staged(self, local)
        try:
            for path, oid in sorted(paths.items()):
                staged.add(path, oid, ref)
        except BaseException:
            staged.discard()
            raise
        return staged

    def prefetch_outputs(self, paths: dict[str, str], ref: str) -> Callable[..., Staged]:
        """``stage_outputs`` from the cache in a thread, while the caller checks the
        workspace (hashing and copying release the GIL); the returned function waits, and
        stages what the cache could not give (or all, after an error) the usual way.
        If the caller fails first, ``finish(retry=False).discard()`` removes the copies."""
        import threading

        self.dvc.cache.local  # noqa: B018  (opened here, not raced for in the thread)
        result: dict[str, Any] = {}

        def work() -> None:
            try:
                result["staged"] = self.stage_outputs(paths, ref, local=True)
            except BaseException as exc:  # reported (or retried) by finish()
                result["error"] = exc

        thread = threading.Thread(target=work, name="modelops-prefetch", daemon=True)
        thread.start()

        def finish(retry: bool = True) -> Staged:
            thread.join()
            if "staged" in result:
                return result["staged"]
            return self.stage_outputs(paths, ref) if retry else Staged(self)

        return finish

    def copy_verified(
        self, oid: str, dest: Path, label: str, ref: str, only_local: bool = False
    ) -> None:
        """Write object ``oid`` to ``dest`` and hash what was written: from the cache, or
        (when the cache copy is missing or corrupt) from the default remote, hashed as it
        streams into ``dest`` and into the cache, which repairs it. Raises WorkspaceError
        when no good copy can be had (the corrupt cache copy is removed then, so that
        ``dvc fetch`` can replace it)."""
        local = self.cache_path(oid)
        dest.parent.mkdir(parents=True, exist_ok=True)
        bad = None
        if local.is_file():
            if oid.endswith(".dir"):
                with open(local, "rb") as src, open(dest, "wb") as out:
                    bad = content_md5(oid, src, out)
            else:
                # The kernel copies (copy_file_range), then the copy itself is hashed, hot
                # in the page cache: what is installed is what was hashed.
                # Big blocks: each one gives the GIL back to the thread that checks the
                # workspace meanwhile, and takes a switch interval to get it again.
                shutil.copyfile(local, dest)
                bad = md5_file(dest, chunk=16 << 20)
            if bad == oid:
                return
        if only_local:
            raise NeedsRemote(oid)
        name = self.remote_name()
        found = self._remote_object(name, oid) if name else None
        if found is not None:
            repair = local.with_name(f".{local.name}.modelops-repair")
            local.parent.mkdir(parents=True, exist_ok=True)
            try:
                with found as src, open(dest, "wb") as out, open(repair, "wb") as cache:
                    actual = content_md5(oid, src, out, cache)
                if actual == oid:
                    repair.chmod(0o444)  # DVC's own mode for cache files
                    os.replace(repair, local)
                    return
            finally:
                with contextlib.suppress(FileNotFoundError):
                    repair.unlink()
        if bad is None and found is None:
            where = f"nor on the DVC remote {name!r}" if name else "and no DVC remote is configured"
            raise BundleError(
                f"{label} of {ref} is not in the DVC cache {where}; nothing was changed "
                f"(`dvc push` it from a machine that has it)"
            )
        if bad is not None:
            with contextlib.suppress(FileNotFoundError):
                local.unlink()
        cache = f"the copy in the DVC cache has md5 {bad}" if bad else "it is not in the DVC cache"
        if name is None:
            remote = "no DVC remote is configured to repair it from"
        elif found is None:
            remote = f"DVC remote {name!r} does not hold it"
        else:
            remote = f"the copy on DVC remote {name!r} has md5 {actual}"
        raise BundleError(
            f"{label} of {ref} (object {oid}): {cache} and {remote}"
            f"{'; the corrupt cache copy was removed' if bad else ''}; nothing else was "
            f"changed: `dvc push` a good copy from a machine that has one, then check out again"
        )

    def _remote_object(self, name: str, oid: str):
        try:
            odb = self.dvc.cloud.get_remote_odb(name, "checkout", hash_name="md5")
            path = odb.oid_to_path(oid)
            return odb.fs.open(path, "rb") if odb.fs.exists(path) else None
        except Exception as exc:  # DVC and the fs libraries raise many types here
            why = scrub(str(exc), self) or type(exc).__name__
            raise RemoteError(f"DVC remote {name!r} cannot be reached ({why})") from None

    def dvc_checkout(self, force: bool = False) -> None:
        from dvc.repo import Repo

        # A fresh Repo: the cached one indexed the previous revision's dvc.yaml.
        self.__dict__.pop("dvc", None)
        with Repo(str(self.root)) as repo:
            try:
                repo.checkout(force=force)
            except Exception as exc:
                raise WorkspaceError(f"dvc checkout: {exc}") from None

    # -- verify: an isolated worktree and DVC objects read without DVC's bookkeeping --------
    @contextlib.contextmanager
    def temp_worktree(self, commit: str) -> Iterator[Path]:
        """A detached worktree of ``commit`` in a new temp directory, removed afterwards (on
        errors, Ctrl-C and SIGTERM too). The checkout, its branch, index and tags are not
        touched; git keeps an entry under .git/worktrees only while the worktree exists."""
        import shutil
        import tempfile

        from modelops import interrupts

        self.run_git("worktree", "prune")  # entries left by a run that was killed outright
        parent = Path(tempfile.mkdtemp(prefix="modelops-verify-"))
        path = parent / commit[:12]
        with interrupts.as_interrupt():  # SIGTERM too runs the removal below
            try:
                # No hooks: a `dvc install`ed post-checkout hook would run DVC in the new tree.
                self.run_git(
                    "-c", "core.hooksPath=/dev/null", "worktree", "add", "--detach", "--quiet",
                    str(path), commit,
                )  # fmt: skip
                yield path
            finally:
                with contextlib.suppress(WorkspaceError):
                    self.run_git("worktree", "remove", "--force", "--force", str(path))
                shutil.rmtree(parent, ignore_errors=True)
                with contextlib.suppress(WorkspaceError):
                    self.run_git("worktree", "prune")

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
            raise RemoteError(f"DVC remote {name!r} cannot be reached ({why})") from None

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


def _inside(path: str) -> bool:
    """A relative path that stays inside the repository (git refuses the others, and its
    cat-file process stops on them)."""
    parts = PurePosixPath(path).parts
    return bool(parts) and not path.startswith("/") and ".." not in parts


def _is_sha(rev: str) -> bool:
    return len(rev) == 40 and all(c in "0123456789abcdef" for c in rev)


class _ArtifactMemo:
    """{commit: {artifact name: path}} as DVC resolved them, in one small JSON file. Anything
    unreadable is ignored (DVC answers again); the path it gives is only a name to look up in
    dvc.lock, whose md5 the bytes must then match, so a wrong entry cannot pass bad bytes."""

    LIMIT = 2000  # commits kept; the oldest go first

    def __init__(self, root: Path) -> None:
        self.path = root / ".dvc" / "tmp" / "modelops-artifacts.json"

    def _load(self) -> dict[str, dict[str, str]]:
        try:
            raw = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(raw, dict):
            return {}
        return {
            k: v
            for k, v in raw.items()
            if _is_sha(k)
            and isinstance(v, dict)
            and all(isinstance(n, str) and isinstance(p, str) for n, p in v.items())
        }

    def get(self, commit: str, name: str) -> str | None:
        return self._load().get(commit, {}).get(name)

    def put(self, commit: str, name: str, path: str) -> None:
        from modelops.files import write_text

        known = self._load()
        known.pop(commit, None)  # re-insert: last used goes last
        known[commit] = {**known.get(commit, {}), name: path}
        keep = dict(list(known.items())[-self.LIMIT :])
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_text(self.path, json.dumps(keep))
        except OSError:  # a read-only checkout: DVC answers each time instead
            pass


@functools.lru_cache(maxsize=256)
def _parsed_yaml(oid: str, data: bytes) -> Any:
    """YAML by content: one parse serves every revision that holds the same bytes
    (params.yaml and dvc.yaml rarely change between versions)."""
    from modelops.params import yaml_loads

    return yaml_loads(data.decode())


def content_md5(oid: str, src: BinaryIO, *sinks: BinaryIO) -> str:
    """The name a DVC object's bytes earn, computed while they are copied to ``sinks``: their
    md5, or for a directory manifest (``.dir``) DVC's md5 of its entries."""
    from modelops.files import copy_md5, md5_bytes

    if not oid.endswith(".dir"):
        return copy_md5(src, *sinks)
    from modelops.files import manifest_md5

    raw = src.read()
    for sink in sinks:
        sink.write(raw)
    try:
        return manifest_md5([e for e in json.loads(raw) if isinstance(e, dict)])
    except (ValueError, KeyError, TypeError):
        return md5_bytes(raw)


class NeedsRemote(Exception):
    """A cache object is missing or corrupt: only the remote can give it (internal)."""


def _dvc_outs(record: Any, lock: bool) -> list[dict[str, Any]]:
    """The output records of a parsed dvc.lock (``lock``) or ``.dvc`` file; TypeError when
    its shape is not DVC's (a list where a mapping belongs, say), not an AttributeError later."""

    def mapping(value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise TypeError(f"{where} is a {type(value).__name__}, not a mapping")
        return value

    def records(value: Any, where: str) -> list[dict[str, Any]]:
        if not isinstance(value, list):
            raise TypeError(f"{where} is a {type(value).__name__}, not a list")
        return [mapping(v, f"an entry of {where}") for v in value]

    record = mapping(record, "the file")
    if lock:
        stages = mapping(record.get("stages") or {}, "stages")
        return [
            o
            for stage_name, stage in stages.items()
            for o in records(mapping(stage, f"stage {stage_name}").get("outs") or [], "outs")
        ]
    return [o for o in records(record.get("outs") or [], "outs") if o.get("cache", True)]


class Staged:
    """Outputs copied beside their destinations and verified; ``install`` moves them in."""

    def __init__(self, ws: Workspace, local: bool = False) -> None:
        self.ws = ws
        self.local = local
        self.moves: list[tuple[Path, Path, str]] = []  # (temporary copy, destination, oid)
        self.files: list[tuple[Path, str]] = []  # (file as installed, md5), for DVC's state

    def add(self, path: str, oid: str, ref: str) -> None:
        rel = PurePosixPath(path)
        if rel.is_absolute() or ".." in rel.parts:
            raise WorkspaceError(f"{path} of {ref}: an output outside the repository")
        dest = self.ws.root / rel
        tmp = dest.with_name(f".{dest.name}.modelops-checkout")
        remove_path(tmp)
        self.moves.append((tmp, dest, oid))
        if not oid.endswith(".dir"):
            self.ws.copy_verified(oid, tmp, path, ref, self.local)
            self.files.append((dest, oid))
            return
        manifest = tmp / ".manifest"
        self.ws.copy_verified(oid, manifest, path, ref, self.local)
        entries = json.loads(manifest.read_bytes())
        manifest.unlink()
        for e in entries:
            sub = PurePosixPath(e["relpath"])
            if sub.is_absolute() or ".." in sub.parts:
                raise WorkspaceError(f"{path} of {ref}: its manifest names {sub}, outside it")
            self.ws.copy_verified(e["md5"], tmp / sub, f"{path}/{sub}", ref, self.local)
            self.files.append((dest / sub, e["md5"]))

    def install(self) -> None:
        """Move every verified copy into place, and tell DVC's state what they hold (so that
        ``dvc status`` does not hash them again)."""
        from dvc_data.hashfile.hash_info import HashInfo

        for tmp, dest, _ in self.moves:
            if dest.is_dir() and not dest.is_symlink():
                old = dest.with_name(f".{dest.name}.modelops-old")
                remove_path(old)
                os.replace(dest, old)
                os.replace(tmp, dest)
                remove_path(old)
            else:
                if dest.is_dir():
                    dest.unlink()
                os.replace(tmp, dest)
        repo = self.ws.dvc
        repo.state.save_many(
            ((str(p), HashInfo("md5", md5), None) for p, md5 in self.files), repo.fs
        )
        for _, dest, _ in self.moves:
            repo.state.save_link(str(dest), repo.fs)
        self.moves = []

    def discard(self) -> None:
        for tmp, _, _ in self.moves:
            remove_path(tmp)
        self.moves = []
