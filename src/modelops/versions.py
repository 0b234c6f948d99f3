"""From a model name and a version or a stage to a verified, loaded model: the one path that
`get`, `predict`, `monitor`, `make-batch` and the server take.

The version is resolved in the registry (a retired stage holder is refused), its bundle is
read from the DVC cache or remote at the version's commit, its md5 is checked against
dvc.lock at that commit, and the model is loaded from the same bytes without pickle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelops import registry as reg
from modelops.errors import BundleError, RegistryError, RemoteError, UsageError

if TYPE_CHECKING:
    from modelops.bundle import Model
    from modelops.params import RegistryParams
    from modelops.workspace import Workspace


@dataclass(frozen=True)
class Version:
    """A resolved version with its verified bundle loaded."""

    name: str
    info: reg.VersionInfo
    md5: str
    model: Model

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.info.version}"

    def metrics(self, ws: Workspace) -> dict[str, Any]:
        """The metrics its commit recorded (empty when it recorded none)."""
        return reg.metrics_at(ws, self.info.commit)


def resolve(
    ws: Workspace,
    name: str,
    version: str | None,
    stage: str | None,
    registry: RegistryParams | None = None,
) -> reg.VersionInfo:
    """The version asked for, or the holder of ``stage`` (a stage ``registry`` knows)."""
    if bool(version) == bool(stage):
        raise UsageError("give exactly one of --stage or --version")
    if stage and registry is not None:
        reg.check_stage(stage, registry)
    return reg.resolve(reg.state(ws), name, version, stage)


def artifact_path(ws: Workspace, name: str, info: reg.VersionInfo) -> str:
    """The bundle's path in the repository, as `dvc artifacts get` resolves it."""
    try:
        # Through the workspace's DVC handle, so the workspace's remotes apply (item 19).
        return ws.artifact_path_at(info.commit, name)
    except Exception as exc:  # DVC raises its own error types here
        raise RegistryError(
            f"{name}@{info.version}: dvc cannot resolve the artifact: {exc}"
        ) from None


def fetch(ws: Workspace, name: str, info: reg.VersionInfo) -> tuple[bytes, str]:
    """A version's bundle bytes (DVC cache or remote) after checking their md5 against
    dvc.lock at that version; returns (bytes, md5)."""
    from modelops.files import md5_bytes
    from modelops.workspace import scrub

    path = artifact_path(ws, name, info)
    expected = ws.lock_outs_at(info.commit).get(path)
    if expected is None:
        raise BundleError(f"{name}@{info.version}: dvc.lock records no {path}")
    cached = ws.cached_bytes(expected)
    if cached is not None:
        return cached, expected
    import dvc.api

    try:
        # The workspace's remotes: the version's commit may predate them (issue 13, item 19).
        data = dvc.api.read(
            path, repo=str(ws.root), rev=info.commit, mode="rb", config=ws.remote_settings()
        )
    except Exception as exc:  # DVC's own types: a missing object, a remote, its config
        from dvc.exceptions import FileMissingError, PathMissingError

        if isinstance(exc, PathMissingError | FileMissingError | FileNotFoundError):
            raise BundleError(
                f"{path} of {name}@{info.version} is neither in the DVC cache nor on a "
                f"reachable DVC remote; `dvc push` it from a machine that has it"
            ) from None
        raise RemoteError(
            f"{path} of {name}@{info.version}: DVC could not fetch it "
            f"({type(exc).__name__}: {scrub(str(exc), ws)}); check the DVC remote"
        ) from None
    actual = md5_bytes(data)
    if actual != expected:
        raise BundleError(
            f"{path} of {name}@{info.version}: md5 {actual} does not match {expected} in "
            f"dvc.lock; refusing the bytes (nothing written)"
        )
    return data, expected


def load(
    ws: Workspace,
    name: str,
    version: str | None = None,
    stage: str | None = None,
    registry: RegistryParams | None = None,
) -> Version:
    """Resolve, fetch, verify and load ``name`` at ``version`` or at ``stage``'s holder."""
    return load_resolved(ws, name, resolve(ws, name, version, stage, registry))


def load_resolved(ws: Workspace, name: str, info: reg.VersionInfo) -> Version:
    """Fetch, verify and load a version already resolved."""
    from modelops.bundle import Model

    data, md5 = fetch(ws, name, info)
    return Version(name, info, md5, Model.from_bytes(data, where=f"{name}@{info.version}"))
