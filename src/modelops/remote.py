"""Remote storage for teams: publishing versions with their data, and safe garbage collection.

A registry tag that reaches a teammate without its bytes is the classic way a
Git/DVC registry breaks. ``publish`` therefore pushes a version's DVC data
first, checks that the remote holds every object, and only then pushes its tags.

``gc`` keeps what any branch, any experiment, any registered non-retired version
and any stage holder (retired or not) needs, and removes the rest from the cache
(and with ``--remote``, from the remote). It uses DVC's own ``used_objs`` and
``dvc_data``'s ``gc``; it only widens the set of revisions kept, which
``dvc gc`` cannot do (it keeps one ``--rev``).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops import registry as reg
from modelops.errors import (
    BundleError,
    ModelopsError,
    RegistryError,
    RemoteError,
    UsageError,
    WorkspaceError,
)
from modelops.workspace import scrub

if TYPE_CHECKING:
    from modelops.workspace import Workspace


def default_remote(ws: Workspace, remote: str | None) -> str:
    remotes = ws.dvc.config.get("remote", {})
    name = remote or ws.dvc.config.get("core", {}).get("remote")
    if not name:
        raise RemoteError(
            "no DVC remote is configured; add one with `make remote-local DIR=...` or "
            "`make remote-s3 URL=s3://bucket/path ENDPOINT=...` (see README)"
        )
    if name not in remotes:
        raise RemoteError(f"DVC remote {name!r} is not configured ({', '.join(remotes) or 'none'})")
    return name


def needed_oids(ws: Workspace, commits: list[str], model_path: str | None) -> dict[str, str]:
    """{oid: description} of every object DVC says these commits use (pipeline outputs,
    ``.dvc``-tracked files, directory entries), or only the model's with ``model_path``.

    Like ``Repo.used_objs``, but over the commits alone: that one always adds the workspace.
    """
    names = {md5: path for c in commits for path, md5 in ws.lock_outs_at(c).items()}
    out: dict[str, str] = {}
    for _rev in ws.dvc.brancher(revs=commits, workspace=False):
        targets = [model_path] if model_path else None
        for ids in ws.dvc.index.used_objs(targets).values():
            for h in ids:
                if h.name == "md5":
                    out[h.value] = names.get(h.value, f"object {h.value}")
    return out


def _labels(ws: Workspace, needed: dict[str, str]) -> dict[str, str]:
    """``needed`` with the entries of every directory manifest in the cache added, each
    named by its path (``data/prepared/train.arrow``), for messages."""
    out = dict(needed)
    for oid, label in needed.items():
        if not oid.endswith(".dir"):
            continue
        try:
            entries = json.loads(ws.cache_path(oid).read_bytes())
            for e in entries:
                name = out.get(e["md5"], "")
                if not name or name.startswith("object "):
                    out[e["md5"]] = f"{label}/{e['relpath']}"
        except (OSError, ValueError, KeyError, TypeError):
            continue  # absent here (the push will say so) or corrupt (check_cache will)
    return out


def check_cache(ws: Workspace, labels: dict[str, str]) -> dict[str, str]:
    """Hash every object the cache holds for ``labels`` and refuse any whose bytes do not
    earn their name; returns {oid: md5 of the raw bytes} (what S3 reports as an ETag)."""
    from modelops.files import md5_file
    from modelops.workspace import content_md5

    raw = {}
    for oid, label in labels.items():
        path = ws.cache_path(oid)
        if not path.is_file():
            continue  # not here: the push reports it, or the remote has it (checked after)
        with open(path, "rb") as src:
            actual = content_md5(oid, src)
        if actual != oid:
            raise BundleError(
                f"publish: {label} (object {oid}) is corrupt in the DVC cache: its bytes "
                f"have md5 {actual} ({path}); nothing was pushed: delete that file, "
                f"`dvc fetch` or `dvc repro` to restore it, then publish again"
            )
        raw[oid] = actual if not oid.endswith(".dir") else md5_file(path)
    return raw


def check_remote(
    ws: Workspace, odb: Any, remote: str, skipped: dict[str, str], raw_md5: dict[str, str]
) -> None:
    """Check the content of objects the push skipped because the remote had them.

    A directory remote is hashed (local reads). On S3 the ETag of an object uploaded in
    one part is the md5 of the bytes the server stored; one uploaded in parts is compared
    with the ETag the local bytes give under s3fs's part size (what DVC uploads with), and
    downloaded and hashed only when that does not reproduce it. Other remotes are
    downloaded and hashed."""
    from modelops.workspace import content_md5

    protocol = odb.fs.protocol
    protocol = protocol[0] if isinstance(protocol, tuple | list) else protocol
    for oid, label in skipped.items():
        path = odb.oid_to_path(oid)
        try:
            actual = None
            if protocol == "s3" and oid in raw_md5:
                etag = str(odb.fs.info(path).get("ETag", "")).strip('"')
                if etag == raw_md5[oid]:
                    continue
                if "-" in etag and _parts_match(ws.cache_path(oid), etag):
                    continue
                # Any other ETag (SSE-KMS and some S3-compatible servers give ETags that are
                # no md5 at all) proves nothing either way: download and hash, below.
            if actual is None:
                with odb.fs.open(path, "rb") as src:
                    actual = content_md5(oid, src)
                if actual == oid:
                    continue
        except Exception as exc:  # DVC and the fs libraries raise many types here
            raise RemoteError(
                f"publish: cannot check {label} on DVC remote {remote!r} "
                f"({scrub(str(exc), ws) or type(exc).__name__}); no tag was pushed"
            ) from None
        raise BundleError(
            f"publish: {label} (object {oid}) is corrupt on DVC remote {remote!r}: it holds "
            f"bytes with md5 {actual}; no tag was pushed: delete that object from the remote "
            f"(`dvc push` skips what is there), then publish again"
        )


def _parts_match(local: Path, etag: str) -> bool:
    """Whether the local bytes give S3's multipart ``etag`` under s3fs's part size (what
    DVC uploads with) or the usual boto3 and AWS CLI ones."""
    import math

    from s3fs.core import calculate_chunksize

    from modelops.files import multipart_etag

    size = local.stat().st_size
    parts = int(etag.rsplit("-", 1)[1])
    for part in (calculate_chunksize(size), 8 * 2**20, 16 * 2**20, 5 * 2**20):
        if math.ceil(size / part) == parts and multipart_etag(local, part) == etag:
            return True
    return False


@dataclass
class Published:
    versions: list[str]
    objects: int
    tags: list[str]


def publish(
    ws: Workspace,
    name: str,
    versions: list[reg.VersionInfo],
    remote: str | None,
    git_remote: str,
    model_only: bool,
) -> Published:
    """Push each version's data, verify the remote has it all, then push the registry tags."""
    remote = default_remote(ws, remote)
    remotes = ws.run_git("remote").split()
    if git_remote not in remotes:
        raise RemoteError(
            f"git remote {git_remote!r} does not exist ({', '.join(remotes) or 'none'}); "
            f"add it with `git remote add {git_remote} URL` or pass --git-remote"
        )
    artifacts = ws.artifacts()
    model_path = artifacts[name].path if name in artifacts else ""
    commits = sorted({v.commit for v in versions})
    targets = [model_path] if model_only else None
    needed = needed_oids(ws, commits, model_path if model_only else None)
    labels = _labels(ws, needed)
    raw_md5 = check_cache(ws, labels)  # before anything is pushed
    odb = ws.dvc.cloud.get_remote_odb(remote, "publish", hash_name="md5")
    try:
        before = set(odb.oids_exist(list(labels)))  # what the push will skip
    except Exception:  # unreachable, or refused: the push says so; if it works, check all
        before = set(labels)
    try:
        ws.dvc.push(targets=targets, revs=commits, remote=remote, workspace=False)
    except Exception as exc:
        raise RemoteError(
            f"publish: pushing data to DVC remote {remote!r} failed "
            f"({scrub(str(exc), ws) or type(exc).__name__}); no tag was pushed: fix the remote "
            f"and run publish again"
        ) from None
    try:
        present = set(odb.oids_exist(list(labels)))
    except Exception as exc:
        raise RemoteError(
            f"publish: cannot check DVC remote {remote!r} ({scrub(str(exc), ws)}); "
            f"no tag was pushed"
        ) from None
    missing = [labels[o] for o in labels if o not in present]
    if missing:
        raise RemoteError(
            f"publish: the remote lacks {missing[0]} after the push "
            f"({len(missing)} object(s) missing); no tag was pushed: run publish again"
        )
    check_remote(ws, odb, remote, {o: labels[o] for o in labels if o in before}, raw_md5)
    st = reg.state(ws)
    wanted = {v.commit for v in versions}
    tags = [e.tag for e in st.of(name) if e.commit in wanted]
    try:
        ws.run_git("push", "--quiet", git_remote, *[f"refs/tags/{t}" for t in tags])
    except WorkspaceError as exc:  # the data is on the DVC remote; the tags did not go
        raise RemoteError(f"publish: the data is on DVC remote {remote!r}, but {exc}") from None
    return Published([v.version for v in versions], len(labels), tags)


@dataclass
class Collected:
    removed: int
    bytes: int
    paths: list[str]
    where: str


def gc(ws: Workspace, cloud: bool, dry: bool, remote: str | None) -> list[Collected]:
    """Remove cache (and remote) objects that nothing worth keeping needs."""
    from dvc_data.hashfile.gc import gc as ogc

    st = reg.state(ws)
    keep: set[str] = set()
    for name in st.names():
        for info in st.versions(name).values():
            if info.retired is None or info.stages:
                keep.add(info.commit)  # registered and live, or holding a stage
    used = ws.dvc.used_objs(
        all_branches=True, all_experiments=True, revs=sorted(keep) or None, skip_failed=True
    )
    used_ids: set[Any] = set()
    for ids in used.values():
        used_ids.update(ids)
    results = []
    odbs = [("cache", ws.dvc.cache.local)]
    if cloud:
        name = default_remote(ws, remote)
        odbs.append((f"remote {name}", ws.dvc.cloud.get_remote_odb(name, "gc", hash_name="md5")))
    for where, odb in odbs:
        values = {h.value for h in used_ids if h.name == odb.hash_name}
        try:
            unused = [h for h in odb.all() if h not in values]
            paths = [odb.oid_to_path(h) for h in unused]
            size = sum(odb.fs.size(p) for p in paths)
        except Exception as exc:
            raise RemoteError(f"gc: cannot list {where} ({scrub(str(exc), ws)})") from None
        if not dry and unused:
            ogc(odb, used_ids)
        results.append(Collected(len(unused), size, sorted(paths), where))
    return results


def version_list(
    st: reg.State, name: str, version: str | None, all_: bool
) -> list[reg.VersionInfo]:
    versions = st.versions(name)
    if all_:
        live = [v for v in versions.values() if v.retired is None or v.stages]
        if not live:
            raise RegistryError(f"no registered versions of {name} to publish")
        return live
    if not version:
        raise UsageError("say which version: NAME@vX.Y.Z, or --all")
    return [reg.need_version(st, name, version)]


CREDENTIALS = {
    "access_key_id": "AWS_ACCESS_KEY_ID",
    "secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "session_token": "AWS_SESSION_TOKEN",  # temporary (STS) credentials need it with the key
}


def use_s3(remote: str, root: str = ".") -> list[str]:
    """``make remote-s3``: ``remote`` becomes the default remote at the URL, endpoint and
    region in the environment (``URL``, ``ENDPOINT``, ``REGION``), in .dvc/config (committed,
    so teammates see where the data lives) and mirrored in .dvc/config.local (so revisions
    committed before the remote existed resolve it too); then the AWS_* credentials that are
    set go to config.local only (0600). These are the settings ``dvc remote add --default
    --force`` and ``dvc remote modify`` write, through DVC's own config editor, in one process
    instead of six. DVC's schema checks both files together before either is written (a
    UsageError naming DVC's complaint). Returns the credential keys written."""
    from dvc.config import Config, ConfigError, merge
    from dvc.repo import Repo

    section = {"url": os.environ["URL"]}
    for key, var in (("endpointurl", "ENDPOINT"), ("region", "REGION")):
        if os.environ.get(var):
            section[key] = os.environ[var]
    given = {k: os.environ[v] for k, v in CREDENTIALS.items() if os.environ.get(v)}
    levels = (("repo", {}), ("local", given))

    def apply(conf: dict, extra: dict) -> None:
        conf["remote"][remote] = {**section, **extra}  # --force: the section replaced whole
        conf["core"]["remote"] = remote

    repo = Repo(root)
    try:
        merged = repo.config.load_config_to_level("repo")
        for level, extra in levels:
            conf = repo.config.load_one(level)
            apply(conf, extra)
            merge(merged, conf)
        try:
            Config.validate(merged)
        except ConfigError as exc:
            raise UsageError(
                f"make remote-s3: DVC refuses the remote {section['url']!r}: {exc}; "
                f"check URL, ENDPOINT and REGION (nothing was written)"
            ) from None
        for level, extra in levels:
            with repo.config.edit(level) as conf:
                apply(conf, extra)
    finally:
        repo.close()
    os.chmod(os.path.join(root, ".dvc", "config.local"), 0o600)
    return sorted(given)


def use_s3_command(remote: str) -> int:
    """``make remote-s3``'s entry point: one ``error:`` line and its exit code on a refusal."""
    try:
        use_s3(remote)
    except ModelopsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0
