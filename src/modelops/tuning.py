"""Hyper-parameter search: Optuna's samplers choose each trial's params, DVC runs each trial as
an experiment of the current commit (so ``dvc exp show``, ``exp best``, ``report`` and ``merge``
see it, and its ref alone reproduces it), and the study lives in an Optuna journal file that an
interrupted ``tune`` resumes from.

A trial varies only the keys its model reads: ``train.model`` (and ``train.solver``) are
chosen first, and a ``train.*`` key the chosen model ignores (``TrainParams.used``) is not
suggested at all. Optuna's ``GridSampler`` walks the full product, including points that differ
only in keys the model ignores; ``--sampler grid`` instead enumerates the distinct
configurations and queues each once (``Study.enqueue_trial``).
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.errors import ParamsError, UsageError, WorkspaceError

if TYPE_CHECKING:
    import optuna

    from modelops.workspace import Workspace

SAMPLERS = ("tpe", "random", "grid")
STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# A choice that is not a number, a boolean or null: a plain word, passed to DVC quoted.
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.+-]*")
NUMBER = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
INTEGER = re.compile(r"[-+]?[0-9]+")
# These decide which of the other train.* keys a trial reads, so they are chosen first.
DECIDING = ("train.model", "train.solver")
# Read by the registry, the server or dvc.yaml's paths, by no stage's computation.
UNREAD_SECTIONS = ("registry", "serving", "paths")
GRID_LIMIT = 10_000
SETTINGS = "modelops"  # the study's user attribute holding what it was started with
INTERRUPTED = "interrupted"  # the error of a trial Ctrl-C (or a killed run) stopped


@dataclass(frozen=True)
class Param:
    """One ``--param KEY=RANGE``: ``lo..hi``, ``log:lo..hi``, ``int:lo..hi`` or ``a,b,c``."""

    key: str
    kind: str  # float | log | int | choice
    spec: str
    low: float = 0.0
    high: float = 0.0
    choices: tuple[Any, ...] = ()

    def canonical(self) -> str:
        """The range as a resumed study compares it: ``1e-6`` and ``1e-06`` are one range."""
        if self.kind == "choice":
            return f"{self.key}={','.join(show_value(v) for v in self.choices)}"
        low, high = (int(self.low), int(self.high)) if self.kind == "int" else (self.low, self.high)
        return f"{self.key}={self.kind}:{low!r}..{high!r}"

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high))
        return trial.suggest_float(self.key, self.low, self.high, log=self.kind == "log")

    def extremes(self) -> list[Any]:
        """The values the schema must accept for every value of the range to be valid."""
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "int":
            return [int(self.low), int(self.high)]
        return [self.low, self.high]

    def grid(self) -> list[Any]:
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "int":
            if self.high - self.low >= GRID_LIMIT:
                raise UsageError(
                    f"--param {self.spec}: {int(self.high - self.low) + 1:,} values is more "
                    f"than a grid takes ({GRID_LIMIT:,}); narrow the range"
                )
            return list(range(int(self.low), int(self.high) + 1))
        raise UsageError(
            f"--param {self.spec}: --sampler grid takes choice lists (a,b,c) and integer "
            f"ranges (int:lo..hi); give {self.key} a list of values"
        )


def _scalar(text: str, spec: str) -> Any:
    """A choice as YAML 1.2 would read it: null, a boolean, a number or a plain word."""
    t = text.strip()
    if t in ("null", "~"):
        return None
    if t in ("true", "false"):
        return t == "true"
    if INTEGER.fullmatch(t):
        return int(t)
    if NUMBER.fullmatch(t):
        return float(t)
    if WORD.fullmatch(t) and t.lower() not in ("nan", "inf", "none"):
        return t
    raise UsageError(
        f"--param {spec}: choice {t!r} is not a number, true, false, null or a plain word"
    )


def _number(text: str, spec: str, integer: bool = False) -> float:
    t = text.strip()
    if integer:
        if not INTEGER.fullmatch(t):
            raise UsageError(f"--param {spec}: {t!r} is not an integer")
        if abs(int(t)) > 2**53:  # Optuna suggests integers through floats
            raise UsageError(f"--param {spec}: {t} is beyond ±2**53; narrow the range")
        return int(t)
    if not NUMBER.fullmatch(t) or not math.isfinite(float(t)):
        raise UsageError(f"--param {spec}: {t!r} is not a finite number")
    return float(t)


def parse(spec: str) -> Param:
    """``KEY=RANGE`` as the user wrote it; UsageError naming the spec on any fault."""
    key, sep, rng = spec.partition("=")
    key, rng = key.strip(), rng.strip()
    if not sep or not key or not rng:
        raise UsageError(
            f"--param {spec!r}: write KEY=RANGE, e.g. train.l2=log:1e-6..1, train.lr=0.01..1, "
            f"train.epochs=int:100..2000 or train.model=ridge,random_forest"
        )
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", key):
        raise UsageError(f"--param {spec}: {key!r} is not a dotted params.yaml key")
    if ".." in rng and "," not in rng:
        kind = "float"
        for prefix in ("log", "int"):
            if rng.startswith(prefix + ":"):
                kind, rng = prefix, rng[len(prefix) + 1 :]
        lo_text, _, hi_text = rng.partition("..")
        lo = _number(lo_text, spec, kind == "int")
        hi = _number(hi_text, spec, kind == "int")
        if not lo < hi:
            raise UsageError(f"--param {spec}: the low end must be below the high end")
        if kind == "log" and lo <= 0:
            raise UsageError(f"--param {spec}: a log range needs a low end above 0")
        return Param(key, kind, spec, lo, hi)
    if "," in rng:
        values = [_scalar(v, spec) for v in rng.split(",")]
        if len({repr(v) for v in values}) != len(values):
            raise UsageError(f"--param {spec}: a choice is listed twice")
        return Param(key, "choice", spec, choices=tuple(values))
    raise UsageError(
        f"--param {spec}: give a range (lo..hi, log:lo..hi, int:lo..hi) or at least two "
        f"choices (a,b); a fixed value belongs in params.yaml or `dvc exp run -S`"
    )


def parse_space(specs: Iterable[str]) -> list[Param]:
    space = [parse(s) for s in specs]
    if not space:
        raise UsageError("give at least one --param KEY=RANGE to search")
    seen: set[str] = set()
    for p in space:
        if p.key in seen:
            raise UsageError(f"--param {p.key} is given twice; give each key once")
        seen.add(p.key)
    # the deciding keys first, then the user's order
    return sorted(space, key=lambda p: DECIDING.index(p.key) if p.key in DECIDING else 99)


# -- the params schema -------------------------------------------------------------------
_MISSING = object()


def _lookup(raw: Any, key: str) -> Any:
    node = raw
    for part in key.split("."):
        node = node.get(part, _MISSING) if isinstance(node, dict) else _MISSING
    return node


def _set(raw: dict, key: str, value: Any) -> dict:
    out = copy.deepcopy(raw)
    node = out
    *parents, last = key.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    return out


def check(space: list[Param], raw: dict, task: str) -> None:
    """Every key exists in params.yaml as a value, and the schema accepts both ends of every
    range and every choice (and every model choice fits the task): ParamsError naming the
    key otherwise. Runs before any trial."""
    import difflib

    from modelops.params import validate

    for p in space:
        node = _lookup(raw, p.key)
        if node is _MISSING:
            parent = _lookup(raw, p.key.rpartition(".")[0]) if "." in p.key else raw
            known = [
                f"{p.key.rpartition('.')[0]}.{k}".lstrip(".")
                for k in (parent if isinstance(parent, dict) else {})
            ]
            close = difflib.get_close_matches(p.key, known, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ParamsError(f"--param {p.key}: params.yaml has no such key{hint}")
        if isinstance(node, dict):
            raise ParamsError(
                f"--param {p.key}: a section of params.yaml, not a value; name a key in it"
            )
        for value in p.extremes():
            try:
                params = validate(_set(raw, p.key, value))
                params.train.for_task(task)
            except ParamsError as exc:
                reason = str(exc).removeprefix("params.yaml: ")
                raise ParamsError(
                    f"--param {p.spec}: {show_value(value)} is refused ({reason})"
                ) from None


def check_read(space: list[Param], raw_train: dict, task: str) -> None:
    """ParamsError for a ``train.*`` key that no model of the search reads (with no model in
    the search, the one params.yaml names): every trial would run the same."""
    import itertools

    for p in space:
        section = p.key.split(".", 1)[0]
        if section in UNREAD_SECTIONS:
            raise ParamsError(
                f"--param {p.key}: no stage reads the {section} section, so every trial would "
                f"be the same; tune searches what the pipeline reads (data, split, features, "
                f"train, evaluate, monitor)"
            )
    deciding = [p for p in space if p.key in DECIDING]
    choices = [[(p.key, v) for v in p.extremes()] for p in deciding]
    combos = [dict(c) for c in itertools.product(*choices)]
    for p in space:
        if p.key == DECIDING[0] or not p.key.startswith("train."):
            continue
        if not any(applies(p.key, raw_train, combo, task) for combo in combos):
            model = next((p.spec for p in deciding if p.key == "train.model"), None)
            which = (
                f"no model of {model} reads it"
                if model
                else f"the model params.yaml names ({raw_train.get('model')}) does not read it"
            )
            raise ParamsError(
                f"--param {p.key}: {which}, so every trial would be the same; search "
                f"train.model too, or drop this --param"
            )


def reads(raw_train: dict, chosen: dict[str, Any], task: str) -> set[str] | None:
    """The ``train.*`` keys the model of ``raw_train`` with ``chosen`` laid over it reads
    (None when those params are not valid: the trial will then fail with the schema's words)."""
    from modelops.params import TrainParams

    over = {k.split(".", 1)[1]: v for k, v in chosen.items() if k in DECIDING}
    try:
        used = TrainParams.model_validate({**raw_train, **over}).for_task(task).used()
    except (ValueError, ParamsError):
        return None
    keys: set[str] = set()

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(f"{prefix}.{k}", v)
        else:
            keys.add(prefix)

    walk("train", used)
    return keys


def applies(key: str, raw_train: dict, chosen: dict[str, Any], task: str) -> bool:
    """Whether a trial with ``chosen`` so far reads ``key`` (keys outside train always)."""
    if not key.startswith("train.") or key in DECIDING[:1]:
        return True
    keys = reads(raw_train, chosen, task)
    return keys is None or key in keys


def suggest(trial: optuna.Trial, space: list[Param], raw_train: dict, task: str) -> dict:
    """The trial's params: the deciding keys first, then only the keys its model reads."""
    chosen: dict[str, Any] = {}
    for p in space:
        if applies(p.key, raw_train, chosen, task):
            chosen[p.key] = p.suggest(trial)
    return chosen


def grid(space: list[Param], raw_train: dict, task: str) -> list[dict[str, Any]]:
    """Every distinct configuration: the product of the values each model reads."""
    out: list[dict[str, Any]] = []
    size = 1
    for p in space:
        size *= len(p.grid())  # each list is checked against the limit on its own first
        if size > GRID_LIMIT * 100:  # the distinct configurations can only be fewer
            break

    def walk(i: int, chosen: dict[str, Any]) -> None:
        if len(out) > GRID_LIMIT:
            raise UsageError(f"the grid has more than {GRID_LIMIT:,} points; narrow the lists")
        if i == len(space):
            out.append(chosen)
            return
        p = space[i]
        if not applies(p.key, raw_train, chosen, task):
            walk(i + 1, chosen)
            return
        for value in p.grid():
            walk(i + 1, {**chosen, p.key: value})

    walk(0, {})
    return out


def show_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def override(key: str, value: Any) -> str:
    """``KEY=VALUE`` for ``dvc exp run -S`` (Hydra's override grammar): words quoted, so that
    ``null`` or ``nan`` written as a word stays a string."""
    return f"{key}='{value}'" if isinstance(value, str) else f"{key}={show_value(value)}"


# -- the study ---------------------------------------------------------------------------
@dataclass
class TrialRecord:
    number: int
    state: str  # complete | failed | running | waiting
    value: float | None
    params: dict[str, Any]
    experiment: str | None
    error: str | None


@dataclass
class Outcome:
    """What running one trial gave: its value, or the one-line reason it failed."""

    value: float | None = None
    experiment: str | None = None
    error: str | None = None


@dataclass
class Settings:
    """What a study was started with; a resumed study must be asked for the same."""

    metric: str
    higher: bool
    sampler: str
    seed: int | None
    space: list[str]  # Param.canonical(), sorted
    baseline: str
    changes: str = "none"  # the md5 of the workspace's uncommitted changes, which trials carry

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def check_study_name(ws: Workspace, study: str) -> None:
    """UsageError unless ``study`` can name a study and its trials' experiments (NAME-000 must
    be a git ref name, as DVC requires)."""
    if not STUDY_NAME.fullmatch(study) or not ws.ref_name_ok(f"refs/exps/x/{study}-000"):
        raise UsageError(
            f"--study {study!r}: use letters, digits, '.', '_' and '-' (at most 64), starting "
            f"with a letter or digit, as a git ref name may (no '..', no trailing '.')"
        )


def storage_path(ws: Workspace, study: str, storage: str | None) -> Path:
    """The study's journal: ``--storage FILE``, or .modelops/studies/STUDY.journal."""
    check_study_name(ws, study)
    if storage is None:
        return ws.root / ".modelops" / "studies" / f"{study}.journal"
    path = Path(storage)
    if path.exists() and not path.is_file():
        raise UsageError(f"--storage {storage}: not a regular file; name a journal file")
    if not path.parent.is_dir():
        raise UsageError(f"--storage {storage}: no directory {path.parent}; create it first")
    return path


def check_journal(path: Path) -> None:
    """WorkspaceError for a journal whose last line is torn (a run killed while writing it):
    Optuna would fail on it and append after it. Nothing is changed."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb") as f:
        f.seek(-1, 2)
        if f.read(1) != b"\n":
            raise WorkspaceError(
                f"{path}: its last line is incomplete (a run stopped while writing it); "
                f"remove that line (everything after the last newline) and resume"
            )


@contextlib.contextmanager
def running(locks: Path, name: str) -> Iterator[None]:
    """One ``tune`` per study at a time: two would ask Optuna for the same trial numbers'
    experiment names. UsageError when another holds it. The lock file lives in ``locks``
    (.modelops/locks), never beside a journal the user named."""
    import fcntl

    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{name}.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(
                f"study {name} is being run by another modelops tune; wait for it, or start "
                f"another --study"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_study(
    path: Path, name: str, settings: Settings, before_create: Callable[[], None] = lambda: None
) -> tuple[optuna.Study, bool]:
    """Create the study (``before_create`` may refuse first), or load it (resumed) when the
    file holds it and it was started with the same settings; UsageError naming what differs
    otherwise."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return _open(path, name, settings, before_create)
    except (json.JSONDecodeError, KeyError, TypeError) as exc:  # not Optuna's journal
        why = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise UsageError(f"{path}: not an Optuna journal ({why}); name another file") from None


def _open(
    path: Path, name: str, settings: Settings, before_create: Callable[[], None]
) -> tuple[optuna.Study, bool]:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    check_journal(path)
    if not path.exists():
        before_create()  # refusals first: the backend creates the file
    storage = JournalStorage(JournalFileBackend(str(path)))
    known = {s.study_name for s in storage.get_all_studies()}
    direction = "maximize" if settings.higher else "minimize"
    if name in known:
        study = optuna.load_study(study_name=name, storage=storage)
        # A seeded sampler restarted from its seed would suggest again what the study ran
        # (TPE's random start-up, and the random sampler throughout): it continues from a
        # seed made of the seed and the number of trials the study holds.
        held = len(study.get_trials(deepcopy=False))
        study.sampler = make_sampler(settings.sampler, resumed_seed(settings.seed, held))
        was = study.user_attrs.get(SETTINGS) or {}
        for key, value in settings.as_dict().items():
            if was.get(key) != value:
                if key == "baseline":
                    raise WorkspaceError(
                        f"study {name} ran on commit {str(was.get(key))[:8]}, HEAD is "
                        f"{value[:8]}: its trials are that commit's experiments; check it "
                        f"out to resume, or start another --study"
                    )
                raise UsageError(
                    f"study {name} was started with {key} {was.get(key)!r}, not {value!r}; "
                    f"resume it with the same options, or start another --study"
                )
        return study, True
    before_create()
    sampler = make_sampler(settings.sampler, settings.seed)
    study = optuna.create_study(
        study_name=name, storage=storage, sampler=sampler, direction=direction
    )
    study.set_user_attr(SETTINGS, settings.as_dict())
    return study, False


def resumed_seed(seed: int | None, held: int) -> int | None:
    """The sampler's seed after ``held`` trials: the same for the same seed and history."""
    if seed is None or held == 0:
        return seed
    import numpy as np

    return int(np.random.SeedSequence([seed, held]).generate_state(1)[0])


def make_sampler(kind: str, seed: int | None) -> optuna.samplers.BaseSampler:
    import warnings

    import optuna

    if kind == "tpe":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed)
    # grid: the enqueued configurations fix every param; nothing is left to sample
    return optuna.samplers.RandomSampler(seed=seed)


def records(study: optuna.Study) -> list[TrialRecord]:
    from optuna.trial import TrialState

    names = {
        TrialState.COMPLETE: "complete",
        TrialState.FAIL: "failed",
        TrialState.RUNNING: "running",
        TrialState.WAITING: "waiting",
        TrialState.PRUNED: "failed",
    }
    return [
        TrialRecord(
            t.number,
            names[t.state],
            t.value if t.state == TrialState.COMPLETE else None,
            dict(t.params),
            t.user_attrs.get("experiment"),
            t.user_attrs.get("error")
            or (INTERRUPTED if t.state in (TrialState.FAIL, TrialState.PRUNED) else None),
        )
        for t in study.get_trials(deepcopy=False)
    ]


def grid_left(study: optuna.Study, configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The configurations no trial ran to an end and none waits for: not yet enqueued, or
    whose trial was interrupted."""
    from optuna.trial import TrialState

    def key(params: dict[str, Any]) -> str:
        return repr(sorted(params.items()))

    covered = {
        key(r.params)
        for r in records(study)
        if r.state in ("complete", "failed") and r.error != INTERRUPTED
    }
    covered |= {
        key(t.system_attrs.get("fixed_params", t.params))
        for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    }
    return [c for c in configs if key(c) not in covered]


def fail_stale(study: optuna.Study) -> int:
    """Trials a killed ``tune`` left running are failed, "interrupted"; returns how many."""
    from optuna.trial import TrialState

    stale = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.RUNNING]
    for t in stale:
        study.tell(t.number, state=TrialState.FAIL)  # no error attribute: "interrupted"
    return len(stale)


@dataclass
class Progress:
    """What the caller hears after each trial: the trial, how many are done of how many,
    and the best so far."""

    trial: TrialRecord
    done: int
    total: int
    best: TrialRecord | None = None


@dataclass
class Search:
    study: optuna.Study
    space: list[Param]
    raw_train: dict
    task: str
    total: int
    jobs: int = 1
    notes: list[str] = field(default_factory=list)

    def finished(self) -> int:
        """Trials that ran to an end: completed, or failed for a reason of their own (an
        interrupted trial is not counted: resuming runs its place again)."""
        return sum(
            r.state == "complete" or (r.state == "failed" and r.error != INTERRUPTED)
            for r in records(self.study)
        )

    def run(
        self,
        execute: Callable[[list[tuple[int, dict[str, Any]]]], list[Outcome]],
        heard: Callable[[Progress], None] = lambda _: None,
    ) -> None:
        """Ask up to ``jobs`` trials, run them with ``execute``, tell Optuna what they gave;
        until ``total`` trials are finished. A KeyboardInterrupt fails the trials in flight
        ("interrupted") and propagates: the journal holds every finished trial."""
        from optuna.trial import TrialState

        while (left := self.total - self.finished()) > 0:
            batch = []
            for _ in range(min(self.jobs, left)):
                trial = self.study.ask()
                batch.append((trial, suggest(trial, self.space, self.raw_train, self.task)))
            try:
                outcomes = execute([(t.number, params) for t, params in batch])
            except BaseException as exc:
                # A trial of the batch that had finished keeps its result; the rest were
                # interrupted (and run again on resuming).
                salvaged = getattr(exc, "outcomes", None) or [None] * len(batch)
                for (t, _params), out in zip(batch, salvaged, strict=True):
                    if out is not None and out.error is None and out.value is not None:
                        self._tell(t, out)
                    else:
                        t.set_user_attr("error", INTERRUPTED)
                        self.study.tell(t, state=TrialState.FAIL)
                raise
            for (t, _params), out in zip(batch, outcomes, strict=True):
                self._tell(t, out)
                rec = next(r for r in records(self.study) if r.number == t.number)
                heard(Progress(rec, self.finished(), self.total, best(self.study)))

    def _tell(self, t: optuna.Trial, out: Outcome) -> None:
        from optuna.trial import TrialState

        if out.experiment:
            t.set_user_attr("experiment", out.experiment)
        if out.error is not None or out.value is None or not math.isfinite(out.value):
            t.set_user_attr("error", out.error or "no finite value")
            self.study.tell(t, state=TrialState.FAIL)
        else:
            self.study.tell(t, out.value)


def best(study: optuna.Study) -> TrialRecord | None:
    done = [r for r in records(study) if r.state == "complete"]
    if not done:
        return None
    sign = 1.0 if study.direction.name == "MAXIMIZE" else -1.0
    return max(done, key=lambda r: (sign * (r.value or 0.0), -r.number))


def importances(study: optuna.Study) -> tuple[dict[str, float], str | None]:
    """Optuna's parameter importances (PED-ANOVA in Optuna 5, conditional params included),
    or why there are none."""
    import warnings

    import optuna

    done = [r for r in records(study) if r.state == "complete"]
    if len(done) < 2:
        return {}, "importances need at least two finished trials"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(study)
    except (ValueError, RuntimeError, ZeroDivisionError) as exc:
        return {}, f"no importances ({str(exc).splitlines()[0][:160]})"
    return {k: float(v) for k, v in found.items()}, None


# -- trials as DVC experiments ------------------------------------------------------------
def error_line(output: str) -> str:
    """The line that says why a run failed: a stage's ``error:`` line, else DVC's ``ERROR:``."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for prefix in ("error: ", "ERROR: "):
        found = [ln for ln in lines if ln.startswith(prefix)]
        if found:
            return found[-1][:300]
    return (lines[-1] if lines else "failed without a message")[:300]


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C during a batch run by DVC's queue: what each trial gave (None: it was stopped)
    and the names DVC could not stop."""

    def __init__(self, outcomes: list[Outcome | None], left: list[str]) -> None:
        super().__init__()
        self.outcomes, self.left = outcomes, left


@dataclass
class DvcTrials:
    """Runs trials as DVC experiments of the workspace's HEAD: ``dvc exp run --temp`` one at
    a time, or queued and run ``-j N`` by DVC's queue."""

    ws: Workspace
    study_name: str
    metric: str
    jobs: int
    logs: Path  # one file per trial, NAME-000.log

    def name(self, number: int) -> str:
        return f"{self.study_name}-{number:03d}"

    def __call__(self, batch: list[tuple[int, dict[str, Any]]]) -> list[Outcome]:
        if self.jobs == 1:
            return [self._one(n, params) for n, params in batch]
        return self._queued(batch)

    def _dvc(self, *argv: str, log: Path | None = None):
        import subprocess
        import sys

        cmd = [sys.executable, "-m", "dvc", *argv]
        if log is None:
            return subprocess.run(cmd, cwd=self.ws.root, capture_output=True, text=True)
        log.parent.mkdir(parents=True, exist_ok=True)
        # A file, not a pipe: queue workers DVC starts inherit it and outlive the command.
        with open(log, "w") as out:
            done = subprocess.run(cmd, cwd=self.ws.root, stdout=out, stderr=subprocess.STDOUT)
        done.stdout = log.read_text(errors="replace")
        return done

    def _sets(self, params: dict[str, Any]) -> list[str]:
        return [a for k, v in params.items() for a in ("-S", override(k, v))]

    def _log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def _one(self, number: int, params: dict[str, Any]) -> Outcome:
        name = self.name(number)
        before = self.ws.standalone_dirs()
        try:
            argv = ("exp", "run", "--temp", "--name", name, *self._sets(params))
            done = self._dvc(*argv, log=self._log(name))
        except BaseException:
            # The DVC run is dead (subprocess.run kills it); what it left goes too: its copy
            # of the repository, and its stash entry if it had not taken it yet.
            self.ws.drop_standalone(name, before)
            raise
        if done.returncode != 0:
            return Outcome(experiment=None, error=error_line(done.stdout))
        return self._result(name)

    def _queued(self, batch: list[tuple[int, dict[str, Any]]]) -> list[Outcome]:
        names = [self.name(n) for n, _ in batch]
        try:
            return self._queue_and_run(batch)
        except KeyboardInterrupt as exc:
            # DVC's workers would go on with the batch: stop them, then keep what finished.
            left = self.ws.stop_queue_tasks(names)
            stopped = BatchInterrupted(
                [None if name in left else self._result(name) for name in names], left
            )
            raise stopped from exc

    def _queue_and_run(self, batch: list[tuple[int, dict[str, Any]]]) -> list[Outcome]:
        queued: dict[str, Outcome | None] = {}
        for number, params in batch:
            name = self.name(number)
            put = self._dvc("exp", "run", "--queue", "--name", name, *self._sets(params))
            queued[name] = None if put.returncode == 0 else Outcome(error=error_line(put.stderr))
        self._dvc("exp", "run", "--run-all", "-j", str(self.jobs), log=self.logs / "queue.log")
        out = []
        for name in queued:
            if queued[name] is not None:
                out.append(queued[name])
                continue
            ran = self._dvc("queue", "logs", name)
            self._log(name).write_text(ran.stdout + ran.stderr)
            got = self._result(name)
            if got.experiment is None:  # DVC's run failed: its log says why
                got = Outcome(error=error_line(ran.stdout) if ran.returncode == 0 else got.error)
                self._dvc("queue", "remove", name)  # the study keeps the reason
            out.append(got)
        return out

    def _result(self, name: str) -> Outcome:
        """The experiment's commit and the metric its metrics file holds."""
        head = self.ws.head()
        ref = f"refs/exps/{head[:2]}/{head[2:]}/{name}"
        commit = self.ws.run_git("for-each-ref", "--format=%(objectname)", ref).strip()
        if not commit:
            return Outcome(error=f"DVC reported no experiment {name}")
        metrics = self.ws.json_at(commit, self.ws.paths_at(commit)["metrics"]) or {}
        value = metrics.get(self.metric) if isinstance(metrics, dict) else None
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not math.isfinite(value)
        ):
            return Outcome(experiment=name, error=f"{name} wrote no finite {self.metric}")
        return Outcome(value=float(value), experiment=name)

    def experiments(self) -> set[str]:
        """The names of HEAD's experiments."""
        head = self.ws.head()
        refs = self.ws.run_git(
            "for-each-ref", "--format=%(refname)", f"refs/exps/{head[:2]}/{head[2:]}/"
        )
        return {r.rsplit("/", 1)[-1] for r in refs.split()}

    def taken(self) -> list[str]:
        """Experiments of HEAD already named like this study's trials."""
        head = self.ws.head()
        refs = self.ws.run_git(
            "for-each-ref", "--format=%(refname)", f"refs/exps/{head[:2]}/{head[2:]}/"
        )
        prefix = f"{self.study_name}-"
        return [
            r.rsplit("/", 1)[-1] for r in refs.split() if r.rsplit("/", 1)[-1].startswith(prefix)
        ]
