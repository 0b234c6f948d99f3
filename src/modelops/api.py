"""The public functions: the CLI, the tests and users all go through these.

Each takes plain values (names, versions, paths) and a repository root,
validates everything before touching git, and returns data for the caller to
print. Errors are ``ModelopsError`` subclasses with one-line messages.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops import registry as reg
from modelops.errors import Interrupted, ModelopsError, UsageError, WorkspaceError

if TYPE_CHECKING:
    from modelops import versions
    from modelops.params import Params
    from modelops.workspace import Workspace


def workspace(root: str | Path = ".") -> Workspace:
    from modelops.workspace import Workspace

    return Workspace(root)


def _params(ws: Workspace) -> Params:
    from modelops import params

    return params.load(ws.root / "params.yaml")


def _name_version(ws: Workspace, ref: str | None, version: str | None) -> tuple[str, str | None]:
    name, v = reg.split_ref(ref, version)
    return reg.default_name(ws, name), v


def _exact_version(ws: Workspace, ref: str | None, version: str | None) -> tuple[str, str]:
    """(name, version) for commands that act on one version; a usage error without one."""
    name, v = _name_version(ws, ref, version)
    if v is None:
        raise UsageError("say which version: NAME@vX.Y.Z or NAME --version vX.Y.Z")
    return name, v


def register(
    name: str | None = None,
    *,
    bump: str | None = None,
    version: str | None = None,
    message: str | None = None,
    root: str | Path = ".",
) -> reg.VersionInfo:
    """Register HEAD as the next (or the given) version of the model."""
    if version is not None and not version.strip():  # an unset $VERSION in a CI script
        raise UsageError("--version is empty; give vX.Y.Z, or leave it out to bump")
    if bump and version:
        raise UsageError("give either --bump or --version, not both")
    ws = workspace(root)
    name, v = _name_version(ws, name, version)
    if bump and v:
        raise UsageError(f"{name}@{v} names the version; --bump would be ignored, so drop one")
    _params(ws)  # a broken params.yaml is reported before any tag is written
    return reg.register(ws, name, bump, v, message)


def promote(
    ref: str,
    *,
    stage: str,
    version: str | None = None,
    force: bool = False,
    reason: str | None = None,
    root: str | Path = ".",
) -> tuple[str, reg.Gate]:
    """Assign ``stage`` to a version after the quality gate."""
    ws = workspace(root)
    name, v = _exact_version(ws, ref, version)
    registry = _params(ws).registry
    return reg.promote(ws, registry, name, v, stage, force, reason)


def rollback(
    name: str | None = None, *, stage: str, to: str | None = None, root: str | Path = "."
) -> tuple[str, str, str]:
    """Give ``stage`` back to its previous holder (or ``to``); returns (tag, from, to)."""
    ws = workspace(root)
    name, _ = _name_version(ws, name, None)
    registry = _params(ws).registry
    return reg.rollback(ws, registry, name, stage, to)


def retire(
    ref: str,
    *,
    version: str | None = None,
    reason: str | None = None,
    force: bool = False,
    root: str | Path = ".",
) -> str:
    """Mark a version as retired (GTO deregistration); returns the tag."""
    ws = workspace(root)
    name, v = _exact_version(ws, ref, version)
    registry = _params(ws).registry
    return reg.retire(ws, registry, name, v, reason, force)


def load(
    ref: str | None = None,
    *,
    version: str | None = None,
    stage: str | None = None,
    root: str | Path = ".",
) -> versions.Version:
    """A version (or a stage's holder) resolved, its bundle checked against dvc.lock at that
    version and loaded without pickle: ``api.load("model", stage="prod").model.predict(X)``."""
    from modelops import versions

    ws = workspace(root)
    name, v = _name_version(ws, ref, version)
    return versions.load(ws, name, v, stage, _params(ws).registry)


def _new_output(output: str | Path, flag: str, force: bool) -> Path:
    """The file a command is to write (by writing a temp file and renaming it over): refused
    (exit 2, before any work) when it is a directory, a symbolic link (the rename would
    replace the link, not write where it points: /dev/stdout), a device or a pipe, or when
    it exists and ``force`` is not given."""
    out = Path(output)
    if out.is_symlink():
        raise UsageError(
            f"{flag} {output}: is a symbolic link, which the written file would replace; "
            "give the path it points to"
        )
    if out.is_dir():
        raise UsageError(f"{flag} {output}: is a directory; give a file name")
    if out.exists() and not out.is_file():
        raise UsageError(
            f"{flag} {output}: is not a regular file (a device or a pipe); give a file name"
        )
    if out.exists() and not force:
        raise UsageError(f"{flag} {output}: exists; use --force to overwrite it")
    return out


def get(
    name: str | None = None,
    *,
    output: str | Path,
    version: str | None = None,
    stage: str | None = None,
    force: bool = False,
    root: str | Path = ".",
) -> tuple[reg.VersionInfo, str]:
    """Write a version's (or a stage's) model bundle to ``output`` without touching the
    workspace; the bytes are checked against dvc.lock at that version first."""
    from modelops import versions
    from modelops.files import write_bytes

    ws = workspace(root)
    name, v = _name_version(ws, name, version)
    info = versions.resolve(ws, name, v, stage, _params(ws).registry)
    out = _new_output(output, "-o", force)
    data, expected = versions.fetch(ws, name, info)
    write_bytes(out, data)
    return info, expected


def checkout(
    ref: str, *, version: str | None = None, force: bool = False, root: str | Path = "."
) -> CheckedOut:
    """``git checkout <tag> && dvc checkout``, refusing to lose work or to half-succeed.

    Every output the version changes is copied out of the DVC cache (or the default
    remote) beside its destination and the copy is hashed; a corrupt cache object
    is replaced from the remote when the remote holds the right bytes. Only when all are
    verified does HEAD move and the copies take their places. Ctrl-C or SIGTERM before
    then stops with nothing changed; after, it waits until HEAD and the outputs have both
    moved."""
    from modelops import interrupts

    ws = workspace(root)
    label = ref or "the version"
    staged = None
    try:
        with interrupts.as_interrupt():
            info, legacy, staged = _stage_checkout(ws, ref, version, force)
        label = f"{info.name}@{info.version}"
        remotes = ws.remote_settings()  # the workspace's, before HEAD moves
        with interrupts.deferred():
            ws.run_git("checkout", "--quiet", *(["--force"] if force else []), info.commit)
            interrupts.pause_for_test("checkout-head-moved")
            staged.install()
            # Issue 13, item 19: a version older than the remote keeps reaching it.
            carried = ws.carry_remotes(remotes)
            if legacy:
                ws.dvc_checkout(force=force)
    except interrupts.Finished:
        raise Interrupted(
            f"checkout of {label} had completed when the interrupt came: HEAD and the "
            f"outputs are at {label}"
        ) from None
    except KeyboardInterrupt:
        raise Interrupted(
            f"checkout of {label} stopped before anything changed: HEAD is still at "
            f"{ws.head()[:8]}, and the copies it had made were removed"
        ) from None
    finally:
        with interrupts.deferred():
            if staged is not None:
                staged.discard()
            ws.close_dvc()
    fields = {f.name: getattr(info, f.name) for f in dataclasses.fields(info)}
    return CheckedOut(**fields, carried_remotes=carried)


def _stage_checkout(ws: Workspace, ref: str, version: str | None, force: bool):
    """``checkout``'s first half, which changes nothing: resolve the version, check the
    workspace, copy and verify the outputs beside their destinations. Returns (version,
    legacy records, staged outputs); on any error or interrupt the copies are removed."""
    import contextlib

    from modelops import interrupts

    def prefetch(commit: str, label: str):
        target = ws.cached_outputs_at(commit)
        legacy = ws.unverified
        # Outputs the workspace holds already (checked unchanged below) are left alone.
        current = {} if force else ws.cached_outputs_at("HEAD")
        todo = {
            p: m for p, m in target.items() if current.get(p) != m or not (ws.root / p).exists()
        }
        return commit, legacy, ws.prefetch_outputs(todo, label)

    # Copying and hashing run in a thread while the registry is read and the workspace
    # checked (a tag named in full is resolved by git at once); refused, they are removed.
    guess = None
    try:
        if ref and "@" in ref and not version:
            with contextlib.suppress(WorkspaceError):
                guess = prefetch(ws.commit_of(f"refs/tags/{ref}"), ref)
        name, v = _exact_version(ws, ref, version)
        info = reg.need_version(reg.state(ws), name, v)
        if guess is None or guess[0] != info.commit:
            if guess is not None:
                guess[2](retry=False).discard()
            guess = prefetch(info.commit, f"{name}@{v}")
        _, legacy, staging = guess  # legacy: DVC 2 records (md5-dos2unix), left to DVC
        if not force:
            dirty = ws.dirty_files()
            modified = ws.modified_outputs()
            if dirty or modified:
                raise WorkspaceError(
                    f"uncommitted changes in {', '.join((dirty + modified)[:5])} would be "
                    f"lost; commit or stash them, or use --force"
                )
        interrupts.pause_for_test("checkout-staging")
        return info, legacy, staging()
    except BaseException:
        if guess is not None:
            # The copying thread may still be at work: let it finish, then remove its copies.
            with interrupts.deferred():
                guess[2](retry=False).discard()
        raise


@dataclass
class CheckedOut(reg.VersionInfo):
    """The version checked out, and the remotes its .dvc/config lacked that were written
    into .dvc/config.local (issue 13, item 19)."""

    carried_remotes: list[str] = field(default_factory=list)


def verify(
    ref: str | None = None,
    *,
    version: str | None = None,
    stage: str | None = None,
    root: str | Path = ".",
):
    """Re-run a version's (or a stage holder's) pipeline from its commit in a temporary
    worktree, inputs checked against their records first, and compare every output with
    its dvc.lock. Returns a ``verify.Report``; raises ``InputError`` (exit 2) for inputs
    that cannot be reached or do not match."""
    from modelops import verify as ver

    ws = workspace(root)
    name, v = _name_version(ws, ref, version)
    if bool(v) == bool(stage):
        raise UsageError(
            "give exactly one of NAME@vX.Y.Z (or --version) and --stage"
            if v
            else "say which version: NAME@vX.Y.Z, --version vX.Y.Z or --stage S"
        )
    if stage:
        reg.check_stage(stage, _params(ws).registry)
    info = reg.resolve(reg.state(ws), name, v, stage)
    return ver.verify(ws, name, info)


def gate_metric(root: str | Path = ".", metrics: Iterable[str] = ()) -> str | None:
    """The metric promotions are gated on (``registry.gate.metric``, ``auto`` resolved for
    the task ``metrics`` were written for); None when params.yaml cannot be read, which
    listing versions does not need."""
    from modelops import params

    try:
        setting = params.load(Path(root) / "params.yaml").registry.gate.metric
    except ModelopsError:
        return None
    return params.resolve_metric(setting, params.task_of_metrics(metrics))


def list_versions(name: str | None = None, root: str | Path = ".") -> list[dict[str, Any]]:
    """Every version of every model (or of ``name``), highest first."""
    ws = workspace(root)
    st = reg.state(ws)
    names = [reg.check_name(name)] if name else st.names()
    return [info.to_dict() for n in names for info in st.versions(n).values()]


def show(ref: str, *, version: str | None = None, root: str | Path = ".") -> dict[str, Any]:
    """A version's lineage, card and events."""
    ws = workspace(root)
    name, v = _exact_version(ws, ref, version)
    st = reg.state(ws)
    info = reg.need_version(st, name, v)
    card = ws.json_at(info.commit, ws.paths_at(info.commit)["card"] + ".json")
    events = [e.to_dict() for e in st.of(name) if e.version == v]
    return {**info.to_dict(), "lineage": info.lineage, "card": card, "events": events}


def history(name: str | None = None, root: str | Path = ".") -> list[dict[str, Any]]:
    """Every registry event of the model, oldest first."""
    ws = workspace(root)
    name = reg.default_name(ws, name)
    return [e.to_dict() for e in reg.state(ws).of(name)]


def exp_best(
    metric: str,
    *,
    higher: bool | None = None,
    apply: bool = False,
    branch: str | None = None,
    root: str | Path = ".",
):
    """Rank this commit's experiments by ``metric``; apply the best or branch it."""
    from modelops import experiments

    if apply and branch:
        raise UsageError("give either --apply or --branch, not both")
    ws = workspace(root)
    board = experiments.leaderboard(ws, metric, higher)
    if board.best.value is None:
        raise WorkspaceError(f"no experiment has {metric}; nothing to pick")
    if apply:
        experiments.apply(ws, board.best.name, [r.rev for r in board.ranked])
    elif branch:
        experiments.branch(ws, board.best.name, branch)
    return board


@dataclass
class TuneResult:
    study: str
    storage: Path
    metric: str
    higher: bool
    trials: list[Any]  # tuning.TrialRecord, in trial order
    best: Any  # tuning.TrialRecord | None
    importances: dict[str, float]
    notes: list[str]
    resumed: bool


def tune(
    params: list[str],
    *,
    metric: str,
    trials: int,
    jobs: int = 1,
    sampler: str = "tpe",
    seed: int | None = None,
    study: str | None = None,
    storage: str | Path | None = None,
    branch: str | None = None,
    apply: bool = False,
    heard: Any = None,
    root: str | Path = ".",
) -> TuneResult:
    """Search ``params`` (``KEY=RANGE`` specs) with Optuna, each trial a DVC experiment of
    HEAD, until the study holds ``trials`` finished trials; apply or branch the best."""
    import time

    from modelops import experiments, interrupts, tuning
    from modelops.params import higher_is_better, read_yaml, task_of_metrics, validate

    if study is not None:
        tuning.check_study_name(workspace(root), study)
    if trials < 1 or jobs < 1:
        raise UsageError("--trials and -j take a whole number of at least 1")
    if sampler not in tuning.SAMPLERS:
        raise UsageError(f"--sampler {sampler!r}: one of {', '.join(tuning.SAMPLERS)}")
    if apply and branch:
        raise UsageError("give either --apply or --branch, not both")
    ws = workspace(root)
    if branch is not None:
        experiments.check_branch_name(ws, branch)
    space = tuning.parse_space(params)
    raw = read_yaml(ws.root / "params.yaml")
    validate(raw)
    head = ws.head()
    recorded = ws.json_at(head, ws.paths_at(head)["metrics"])
    task = task_of_metrics(recorded) if isinstance(recorded, dict) else None
    if task is None:
        raise WorkspaceError(
            "HEAD records no metrics (paths.metrics): run `dvc repro` and commit, then tune"
        )
    if metric not in recorded:
        raise UsageError(f"--metric {metric!r}: HEAD's metrics are {', '.join(sorted(recorded))}")
    tuning.check(space, raw, task)
    tuning.check_read(space, raw["train"], task)
    if apply and (dirty := experiments.unsaved_changes(ws, [])):
        raise WorkspaceError(
            f"--apply would overwrite uncommitted changes in {', '.join(dirty[:5])}; commit "
            f"or stash them first, or use --branch"
        )
    if jobs > 1 and (queued := ws.queued_experiments()):
        raise UsageError(
            f"DVC's queue holds {queued} experiment(s); tune -j {jobs} runs the queue: run "
            f"them (`dvc queue start`) or remove them (`dvc queue remove --queued`) first"
        )
    configs = tuning.grid(space, raw["train"], task) if sampler == "grid" else None
    if study is None:  # the second and a random part: two runs started together differ
        import secrets

        study = f"{metric}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    name = study
    path = tuning.storage_path(ws, name, None if storage is None else str(storage))
    higher = higher_is_better(metric)
    canonical = sorted(p.canonical() for p in space)
    settings = tuning.Settings(metric, higher, sampler, seed, canonical, head, ws.uncommitted_md5())
    home = ws.root / ".modelops"
    runner = tuning.DvcTrials(ws, name, metric, jobs, home / "studies" / f"{name}.logs")

    def fresh_names() -> None:
        taken = runner.taken()
        if taken:
            raise UsageError(
                f"experiments of HEAD are already named like study {name}'s trials "
                f"({', '.join(taken[:3])}); pick another --study"
            )

    with tuning.running(home / "locks", name):
        opened, resumed = tuning.open_study(path, name, settings, fresh_names)
        notes = []
        stale = tuning.fail_stale(opened)
        if stale:
            notes.append(f"{stale} trial(s) a stopped run left were marked failed (interrupted)")
        total = trials
        if configs is not None:
            # every configuration whose trial never ran to an end (not yet run, interrupted)
            for config in tuning.grid_left(opened, configs):
                opened.enqueue_trial(config)
            if trials > len(configs):
                notes.append(f"the grid has {len(configs)} distinct configurations; ran those")
            total = min(trials, len(configs))
        if jobs > 1 and seed is not None:
            notes.append(
                "trials ran in parallel: the seed fixes the sampler, not the order in which "
                "results arrive, so the sequence is not reproducible (use -j 1)"
            )
        search = tuning.Search(opened, space, raw["train"], task, total, jobs)
        if resumed and search.finished() >= total:
            notes.append(f"study {name} already holds {total} finished trials; raise --trials")
        try:
            with interrupts.as_interrupt():
                search.run(runner, heard or (lambda _: None))
        except KeyboardInterrupt as exc:
            completed = sum(r.state == "complete" for r in tuning.records(opened))
            left = getattr(exc, "left", None)
            still = (
                f"; DVC's queue could not stop {', '.join(left)}: `dvc queue kill` them"
                if left
                else ""
            )
            raise Interrupted(
                f"tune stopped with {completed} of {total} trials completed; study "
                f"{name} is saved in {path}: run the same command with --study {name} to "
                f"resume{still}"
            ) from None
        found = tuning.records(opened)
        top = tuning.best(opened)
        if top is None:
            first = next((r.error for r in found if r.error), "no trial ran")
            raise WorkspaceError(f"no trial of study {name} finished; the first failed: {first}")
        weights, why = tuning.importances(opened)
        if why:
            notes.append(why)
    if (apply or branch) and top.experiment not in runner.experiments():
        raise WorkspaceError(
            f"the best trial ({top.number}) was experiment {top.experiment}, which is gone "
            f"(`dvc exp remove`?); nothing applied"
        )
    if apply:
        experiments.apply(ws, top.experiment, [])
    elif branch:
        experiments.branch(ws, top.experiment, branch)
    return TuneResult(name, path, metric, higher, found, top, weights, notes, resumed)


def report(
    *, against: str = "HEAD", plots_dir: str | None = None, root: str | Path = "."
) -> dict[str, Any]:
    """The workspace's params and metrics against a revision or ``NAME#STAGE``."""
    from modelops import reports

    ws = workspace(root)
    return reports.build(ws, against, _params(ws).registry.gate, plots_dir)


def merge(branch: str, *, root: str | Path = "."):
    """Merge a branch, re-running the pipeline instead of hand-merging its outputs."""
    from modelops import experiments

    return experiments.merge(workspace(root), branch)


def serve(
    name: str | None = None,
    *,
    stage: str | None = None,
    version: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    root: str | Path = ".",
) -> None:
    """Serve the version holding ``stage`` (following it) or ``version`` (pinned) over HTTP
    until interrupted."""
    from modelops import serving

    if bool(version) == bool(stage):
        raise UsageError("give exactly one of --stage or --version")
    if not 0 < port < 65536:
        raise UsageError(f"--port {port}: must be between 1 and 65535")
    if workers < 1:
        raise UsageError(f"--workers {workers}: must be at least 1")
    ws = workspace(root)
    name, v = _name_version(ws, name, version)
    p = _params(ws)
    if stage:
        reg.check_stage(stage, p.registry)
    serving.serve(str(ws.root), name, stage, p.serving, host, port, workers, version=v)


def ui_export(out: str | Path, *, root: str | Path = ".") -> list[Path]:
    """Write the registry's pages (board, every version, the experiments, and each version
    compared with each stage holder) as static HTML under ``out``."""
    from modelops.ui.export import export

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--export {out}: exists and is not a directory; name a directory")
    ws = workspace(root)
    return export(ws, _params(ws), out)


def ui(
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    allow_actions: bool = False,
    root: str | Path = ".",
) -> None:
    """Serve the registry's pages until interrupted; read-only unless ``allow_actions``."""
    import uvicorn

    app = ui_app(host=host, port=port, allow_actions=allow_actions, root=root)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def ui_app(
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    allow_actions: bool = False,
    root: str | Path = ".",
) -> Any:
    """The pages' app for ``host:port``, after every check that refuses to start it."""
    from modelops.serving import token_from_env
    from modelops.ui.app import Actions, allowed_hosts, create_app, is_loopback

    if not 0 < port < 65536:
        raise UsageError(f"--port {port}: must be between 1 and 65535")
    ws = workspace(root)
    actions = None
    if allow_actions:
        p = _params(ws)
        token = token_from_env(p.serving)  # set but empty: refused
        if not token and not is_loopback(host):
            raise UsageError(
                f"--allow-actions on {host} (not loopback) needs a token: set the variable "
                f"serving.token_env names ({p.serving.token_env or 'none configured'})"
            )
        # the pages act through the CLI's own functions, on this repository
        ops = {
            verb: functools.partial(fn, root=ws.root)
            for verb, fn in (("promote", promote), ("rollback", rollback), ("retire", retire))
        }
        actions = Actions(p.registry.stages, ops, token, p.serving.token_env, port)
    return create_app(ws.root, actions, allowed_hosts(host, port))


def predict(
    name: str | None = None,
    *,
    input: str | Path,
    output: str | Path,
    version: str | None = None,
    stage: str | None = None,
    skip_invalid: bool = False,
    force: bool = False,
    root: str | Path = ".",
):
    """Predict a CSV in chunks with a version's (or a stage's) verified model."""
    from modelops import batch, interrupts, versions

    if bool(version) == bool(stage):
        raise UsageError("give exactly one of --stage or --version")
    src = Path(input)
    if src.resolve() == Path(output).resolve():
        raise UsageError("--output must differ from --input")
    dst = _new_output(output, "--output", force)
    ws = workspace(root)
    name, v = _name_version(ws, name, version)
    p = _params(ws)
    loaded = versions.load(ws, name, v, stage, p.registry)
    try:
        with interrupts.as_interrupt():  # so that SIGTERM, too, removes the temp file
            result = batch.predict_csv(
                loaded.model, p.serving, p.data.na_values, src, dst, skip_invalid
            )
    except KeyboardInterrupt:
        raise Interrupted(f"predict stopped; {output} was left as it was") from None
    return loaded.info, result


def monitor(
    name: str | None = None,
    *,
    batch: str | Path | None = None,
    from_logs: bool = False,
    since: str | None = None,
    version: str | None = None,
    stage: str | None = None,
    root: str | Path = ".",
) -> dict[str, Any]:
    """Drift of a batch CSV (or of what the server logged, ``from_logs``) against the reference
    profile of a version (or a stage's), and the live metrics where feedback came back."""
    from modelops import monitoring, versions

    if bool(batch) == bool(from_logs):
        raise UsageError("give exactly one of --batch FILE or --from-logs")
    if since is not None and not from_logs:
        raise UsageError("--since reads the prediction log: use it with --from-logs")
    ws = workspace(root)
    name, v = _name_version(ws, name, version)
    p = _params(ws)
    loaded = versions.load(ws, name, v, stage, p.registry)
    if from_logs:
        from modelops import predlog

        directory, start = _log_dir(ws, p), _since(since)
        pre = loaded.model.preprocessor
        labels = predlog.Feedback(directory).labels()
        parts = predlog.tables(
            predlog.files(directory),
            loaded.info.version,
            start,
            [*pre.numeric, *pre.categorical],
            ids=bool(labels),  # ids only join feedback
        )
        source = f"{p.serving.log.dir} ({loaded.ref}{f', since {since}' if since else ''})"
        report = monitoring.monitor_logged(
            loaded.model, parts, labels, p.monitor, loaded.metrics(ws), source
        )
    else:
        report = monitoring.monitor(
            loaded.model,
            Path(batch),
            p.monitor,
            p.data.na_values,
            p.serving.chunk_rows,
            loaded.metrics(ws),
        )
    return {"model": loaded.ref, **report}


def logs_export(
    name: str | None = None,
    *,
    output: str | Path,
    since: str | None = None,
    labelled_only: bool = False,
    version: str | None = None,
    stage: str | None = None,
    force: bool = False,
    root: str | Path = ".",
) -> tuple[Path, int, int]:
    """The logged inputs of a version (with their feedback labels in the target column) as a
    CSV batch; returns (path, rows, labelled rows)."""
    import pandas as pd

    from modelops import versions
    from modelops.errors import BatchError
    from modelops.files import write_bytes

    out = _new_output(output, "-o", force)
    ws = workspace(root)
    name, v = _name_version(ws, name, version)
    p = _params(ws)
    directory, start = _log_dir(ws, p), _since(since)
    if v is None and stage is None:  # the version that answered last
        v = _last_logged_version(directory)
    loaded = versions.load(ws, name, v, stage, p.registry)
    target = loaded.model.schema.target
    parts = list(_logged(directory, loaded.model, loaded.info.version, start))
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if labelled_only and len(frame):
        frame = frame[frame[target].notna()]
    if not len(frame):
        what = "labelled records" if labelled_only else "records"
        raise BatchError(f"no logged {what} of {loaded.ref}{f' since {since}' if since else ''}")
    write_bytes(out, frame.to_csv(index=False).encode())
    return out, len(frame), int(frame[target].notna().sum())


def _last_logged_version(directory: Path) -> str:
    from modelops import predlog
    from modelops.errors import BatchError

    newest = predlog.files(directory)[-1:] or [None]
    found = predlog.last_version(newest[0]) if newest[0] else None
    if found is None:
        raise BatchError(f"{directory}: no logged records yet; serve first")
    return found


def _log_dir(ws: Workspace, p: Params) -> Path:
    if not p.serving.log.dir:
        raise UsageError("serving.log.dir is not set: the server keeps no prediction log")
    directory = ws.root / p.serving.log.dir
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"serving.log.dir {p.serving.log.dir}: is a file, not a directory")
    if not directory.is_dir():
        raise UsageError(f"serving.log.dir {p.serving.log.dir}: no log there yet; serve first")
    return directory


def _since(since: str | None) -> float | None:
    """``--since 24h`` (s, m, h or d) as a unix time."""
    import re
    import time

    if since is None:
        return None
    found = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([smhd])", since.strip())
    if not found:
        raise UsageError(f"--since {since!r}: give a duration like 30m, 24h or 7d")
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400}[found.group(2)]
    return max(0.0, time.time() - float(found.group(1)) * unit)  # longer than ever: all


def _logged(directory: Path, model, version: str, start: float | None):
    """A version's logged inputs as frames, with the feedback labels in the target column."""
    from modelops import predlog

    pre, target = model.preprocessor, model.schema.target
    known = predlog.Feedback(directory).labels()
    paths = predlog.files(directory)
    for frame in predlog.read(paths, version, start, [*pre.numeric, *pre.categorical]):
        frame[target] = frame.pop("request_id").map(known)
        yield frame


def make_batch(
    name: str | None = None,
    *,
    output: str | Path,
    shift: str = "none",
    feature: str | None = None,
    strength: float | None = None,
    rows: int = 1000,
    seed: int = 0,
    with_target: bool = False,
    version: str | None = None,
    stage: str | None = None,
    force: bool = False,
    root: str | Path = ".",
) -> Path:
    """Write a seeded batch drawn from the prepared data, with one kind of shift applied."""
    import pandas as pd

    from modelops import monitoring, versions
    from modelops.data import TEST_FILE, TRAIN_FILE, read_prepared
    from modelops.files import write_bytes

    if rows < 1:
        raise UsageError(f"--rows {rows}: must be at least 1")
    out_path = _new_output(output, "-o", force)
    ws = workspace(root)
    name, v = _name_version(ws, name, version)
    model = versions.load(ws, name, v, stage, _params(ws).registry).model
    prepared = ws.root / ws.paths_at("HEAD").get("prepared", "data/prepared")
    parts = [prepared / f for f in (TRAIN_FILE, TEST_FILE)]
    if not all(f.exists() for f in parts):
        raise WorkspaceError(f"{prepared} is not there; run `dvc repro` (or `dvc pull`) first")
    frame = pd.concat([read_prepared(f).to_pandas() for f in parts], ignore_index=True)
    out = monitoring.make_batch(frame, model, shift, feature, strength, rows, seed, with_target)
    write_bytes(out_path, out.to_csv(index=False).encode())
    return out_path


def publish(
    ref: str | None = None,
    *,
    version: str | None = None,
    all_versions: bool = False,
    remote: str | None = None,
    git_remote: str = "origin",
    model_only: bool = False,
    root: str | Path = ".",
):
    """Push the DVC data of a version (or all live versions), verify it, then push its tags."""
    from modelops import remote as rem

    if all_versions and (version or (ref and "@" in ref)):
        raise UsageError("give a version or --all, not both")
    ws = workspace(root)
    name, v = _name_version(ws, ref, version)
    versions = rem.version_list(reg.state(ws), name, v, all_versions)
    return rem.publish(ws, name, versions, remote, git_remote, model_only)


def gc(
    *, dry_run: bool = False, cloud: bool = False, remote: str | None = None, root: str | Path = "."
):
    """Remove cache (and remote) objects that no branch, experiment, live version or stage needs."""
    from modelops import remote as rem

    ws = workspace(root)
    with ws.lock():
        return rem.gc(ws, cloud, dry_run, remote)
