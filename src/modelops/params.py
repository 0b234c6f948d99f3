"""The schema of params.yaml: typed, frozen sections, validated before any work.

params.yaml is read as YAML 1.2 (ruamel.yaml's safe loader), the way DVC reads
it for ``dvc params diff`` and ``dvc exp run -S``, so ``1e-6`` is a number and
``yes`` is a string in both places. Every stage validates the whole file, so a
typo in ``train`` stops ``prepare`` too, before anything is written.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from modelops.errors import ParamsError

NUMPY_MODELS = ("logistic_regression", "linear_regression")
SKLEARN_MODELS = (
    "sklearn_logistic_regression",
    "ridge",
    "random_forest",
    "hist_gradient_boosting",
)
MODELS = NUMPY_MODELS + SKLEARN_MODELS
LOWER_IS_BETTER = ("rmse", "mae", "log_loss")
Direction = Literal["auto", "higher", "lower"]
CLASSIFIERS = ("logistic_regression", "sklearn_logistic_regression")
REGRESSORS = ("linear_regression", "ridge")
# random_forest and hist_gradient_boosting fit either task.
TASK_MODELS = {
    "classification": tuple(m for m in MODELS if m not in REGRESSORS),
    "regression": tuple(m for m in MODELS if m not in CLASSIFIERS),
}
# train.model: auto; a CSV's task is known only once prepare has read its target.
AUTO_MODEL = {"classification": "logistic_regression", "regression": "linear_regression"}
# registry.gate.metric and monitor.metric: auto. Both are among the names evaluate writes
# for the task (evaluation.classification_metrics / regression_metrics).
AUTO_METRIC = {"classification": "f1", "regression": "r2"}


def higher_is_better(metric: str, direction: Direction = "auto") -> bool:
    """The metric's direction: ``auto`` means lower for LOWER_IS_BETTER, higher for the rest."""
    if direction == "auto":
        return metric not in LOWER_IS_BETTER
    return direction == "higher"


def better(
    metric: str, new: float, old: float, tolerance: float = 0.0, direction: Direction = "auto"
) -> bool:
    """Whether ``new`` is at least as good as ``old``, allowing it to be worse by ``tolerance``.

    Ties pass: this is the gate's question ("is the candidate no worse?"), asked the same
    way by ``promote``, the report and anything else that compares two values of a metric.
    """
    if higher_is_better(metric, direction):
        return new >= old - tolerance
    return new <= old + tolerance


# Upper bounds: beyond them the code cannot run (memory, timers), not a taste limit.
MAX_SYNTHETIC_ROWS = 10_000_000
MAX_SYNTHETIC_CELLS = 100_000_000  # rows x features: 800 MB of float64 before any copy
MAX_POLL_SECONDS = 86_400.0  # a timer beyond the platform's time_t kills the poll thread
# YAML anchors and aliases share one node, so a "billion laughs" file parses small but
# expands exponentially in whatever walks it (validation, JSON): cap the expanded size.
MAX_YAML_NODES = 1_000_000
MAX_YAML_DEPTH = 200  # deeper nesting would end in a RecursionError


class _Section(BaseModel):
    # strict: no silent "0.1" -> 0.1 or 1 -> True; extra: typos are errors;
    # allow_inf_nan=False: every float is finite (.inf and .nan are YAML floats).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class SyntheticParams(_Section):
    task: Literal["classification", "regression"] = "classification"
    n_rows: int = Field(10_000, ge=20, le=MAX_SYNTHETIC_ROWS)
    n_features: int = Field(20, ge=1, le=10_000)
    n_informative: int = Field(10, ge=1)
    n_classes: int = Field(2, ge=2, le=100)
    noise: float = Field(0.1, ge=0, le=1e6)
    seed: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _informative_fits(self) -> SyntheticParams:
        if self.n_rows * self.n_features > MAX_SYNTHETIC_CELLS:
            raise ValueError(
                f"n_rows x n_features ({self.n_rows:,} x {self.n_features:,}) must not exceed "
                f"{MAX_SYNTHETIC_CELLS:,} values; use fewer rows or features"
            )
        if self.n_informative > self.n_features:
            raise ValueError(
                f"n_informative ({self.n_informative}) must not exceed "
                f"n_features ({self.n_features})"
            )
        return self


class DataParams(_Section):
    source: Literal["breast_cancer", "diabetes", "csv", "synthetic"] = "breast_cancer"
    path: str | None = None
    target: str | None = None
    task: Literal["classification", "regression"] | None = None
    positive_class: Any = None
    na_values: list[str] = Field(
        default_factory=lambda: [
            "",
            "NA",
            "N/A",
            "n/a",
            "NaN",
            "nan",
            "null",
            "NULL",
            "None",
            "?",
            "-",
        ]
    )
    max_categories: int = Field(20, ge=2)
    # A few words in a column of numbers: stop and name them, or read them as missing.
    stray_text: Literal["stop", "missing"] = "stop"
    synthetic: SyntheticParams = Field(default_factory=SyntheticParams)

    @field_validator("positive_class")
    @classmethod
    def _label_type(cls, v: Any) -> Any:
        if v is None or (isinstance(v, str | int) and not isinstance(v, bool)):
            return v
        raise ValueError("must be a class label (a string or an integer)")

    @model_validator(mode="after")
    def _csv_needs_path(self) -> DataParams:
        if self.source == "csv":
            if not self.path:
                raise ValueError("source is csv: set data.path to the CSV file")
            if not self.target:
                raise ValueError("source is csv: set data.target to the target column")
        elif self.path:
            raise ValueError(f"data.path is only used with source: csv (source is {self.source})")
        return self


class SplitParams(_Section):
    test_size: float = Field(0.2, gt=0, lt=1)
    seed: int = Field(42, ge=0)


class FeaturesParams(_Section):
    impute_numeric: Literal["median", "mean"] = "median"
    scale: bool = True


class SklearnLogisticParams(_Section):
    C: float = Field(1.0, gt=0)
    max_iter: int = Field(1000, ge=1)


class RidgeParams(_Section):
    alpha: float = Field(1.0, ge=0)


class RandomForestParams(_Section):
    n_estimators: int = Field(200, ge=1, le=10_000)
    max_depth: int | None = Field(None, ge=1)
    min_samples_leaf: int = Field(1, ge=1)
    max_features: Any = "sqrt"

    @field_validator("max_features")
    @classmethod
    def _max_features(cls, v: Any) -> Any:
        if v is None or v in ("sqrt", "log2"):
            return v
        if isinstance(v, float) and 0 < v <= 1:
            return v
        raise ValueError('must be "sqrt", "log2", null or a fraction in (0, 1]')


class HistGradientBoostingParams(_Section):
    learning_rate: float = Field(0.1, gt=0)
    max_iter: int = Field(200, ge=1)
    max_leaf_nodes: int | None = Field(31, ge=2)
    max_depth: int | None = Field(None, ge=1)
    l2_regularization: float = Field(0.0, ge=0)
    early_stopping: bool = False


def model_task_mismatch(model: str, task: str, how: str = "") -> str:
    """The one line for a ``train.model`` that cannot fit the task (``how`` says how the
    task was decided, when it was not set)."""
    kind = "classifier" if model in CLASSIFIERS else "regressor"
    fits = ", ".join(("auto", *TASK_MODELS[task]))
    return f"train.model {model} is a {kind} but the task is {task}{how}; use one of {fits}"


def task_of_metrics(names: Any) -> str | None:
    """The task a metrics file was written for, from the names evaluate gives each task
    (classification always writes accuracy, regression r2); None when neither is there."""
    names = set(names)
    if "accuracy" in names:
        return "classification"
    if "r2" in names:
        return "regression"
    return None


def resolve_metric(setting: str, task: str | None) -> str:
    """``registry.gate.metric`` / ``monitor.metric`` for a task: ``auto`` is f1 for
    classification and r2 for regression; anything else is taken as written."""
    if setting != "auto":
        return setting
    return AUTO_METRIC.get(task or "classification", "f1")


class TrainParams(_Section):
    # auto: logistic_regression for classification, linear_regression for regression.
    model: Literal[("auto", *MODELS)] = "auto"  # type: ignore[valid-type]
    seed: int = Field(0, ge=0)
    # linear_regression only: exact normal equations, or gradient descent.
    solver: Literal["closed_form", "gd"] = "closed_form"
    # Gradient descent (logistic_regression, and linear_regression with solver: gd).
    lr: Any = "auto"
    epochs: int = Field(2000, ge=1)
    batch_size: int | None = Field(None, ge=1)
    # auto: Nesterov's schedule k/(k+3) full batch (restarted on overshoot), 0.9 per mini-batch.
    momentum: Any = "auto"
    l2: float = Field(0.0, ge=0)
    tol: float = Field(1e-6, ge=0)
    early_stopping: bool = False
    validation_fraction: float = Field(0.1, gt=0, lt=1)
    n_iter_no_change: int = Field(10, ge=1)
    dtype: Literal["float32", "float64"] = "float32"
    # Hyper-parameters of the allow-listed scikit-learn estimators.
    sklearn_logistic_regression: SklearnLogisticParams = Field(
        default_factory=SklearnLogisticParams
    )
    ridge: RidgeParams = Field(default_factory=RidgeParams)
    random_forest: RandomForestParams = Field(default_factory=RandomForestParams)
    hist_gradient_boosting: HistGradientBoostingParams = Field(
        default_factory=HistGradientBoostingParams
    )

    @field_validator("lr")
    @classmethod
    def _lr(cls, v: Any) -> Any:
        if v == "auto":
            return v
        if isinstance(v, int | float) and not isinstance(v, bool) and 0 < v <= 1e6:
            return float(v)  # a NaN fails the comparison too
        raise ValueError('must be a positive number or "auto" (1/L from the data), at most 1e6')

    @field_validator("momentum")
    @classmethod
    def _momentum(cls, v: Any) -> Any:
        if v == "auto":
            return v
        if isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < 1:
            return float(v)  # a NaN fails the comparison too
        raise ValueError('must be a number in [0, 1) or "auto" (Nesterov\'s schedule)')

    def for_task(self, task: str, how: str = "") -> TrainParams:
        """These params with ``model`` resolved for ``task``: ``auto`` becomes the task's
        default; a model that cannot fit the task is a ParamsError naming the ones that can."""
        if self.model == "auto":
            return self.model_copy(update={"model": AUTO_MODEL[task]})
        if self.model not in TASK_MODELS[task]:
            raise ParamsError(model_task_mismatch(self.model, task, how))
        return self

    def used(self) -> dict[str, Any]:
        """Only the keys that shape the chosen model (recorded in the bundle and card);
        call it on the params ``for_task`` returned, so the card names the real kind."""
        gd_keys = (
            "lr",
            "epochs",
            "batch_size",
            "momentum",
            "l2",
            "tol",
            "early_stopping",
            "validation_fraction",
            "n_iter_no_change",
            "dtype",
        )
        out: dict[str, Any] = {"model": self.model, "seed": self.seed}
        if self.model in SKLEARN_MODELS:
            out[self.model] = getattr(self, self.model).model_dump()
            return out
        if self.model == "linear_regression":
            out["solver"] = self.solver
            if self.solver == "closed_form":
                return {**out, "l2": self.l2}
        return {**out, **{k: getattr(self, k) for k in gd_keys}}


class EvaluateParams(_Section):
    importance: Literal["auto", "coefficients", "permutation"] = "auto"
    permutation_repeats: int = Field(5, ge=1, le=100)
    importance_max_rows: int = Field(5000, ge=10)
    curve_points: int = Field(200, ge=10, le=100_000)


class GateParams(_Section):
    # auto: f1 for classification, r2 for regression (the candidate's own task).
    metric: str = "auto"
    tolerance: float = Field(0.0, ge=0)
    # auto: lower is better for rmse, mae and log_loss; higher for the rest.
    direction: Direction = "auto"

    def metric_for(self, task: str | None) -> str:
        return resolve_metric(self.metric, task)


class RegistryParams(_Section):
    stages: list[str] = Field(default_factory=lambda: ["dev", "staging", "prod"], min_length=1)
    protected_stages: list[str] = Field(default_factory=lambda: ["prod"])
    gate: GateParams = Field(default_factory=GateParams)

    @field_validator("stages")
    @classmethod
    def _stage_names(cls, v: list[str]) -> list[str]:
        import re

        for stage in v:
            if not re.fullmatch(r"[a-z][a-z0-9-]*", stage):
                raise ValueError(f"stage {stage!r} must be lowercase letters, digits and '-'")
        return v

    @model_validator(mode="after")
    def _protected_are_stages(self) -> RegistryParams:
        unknown = [s for s in self.protected_stages if s not in self.stages]
        if unknown:
            raise ValueError(f"protected_stages {unknown} are not in registry.stages")
        return self


class LogParams(_Section):
    # None: no prediction log. A directory (relative to the repository, ignored by git).
    dir: str | None = None
    rotate_mb: float = Field(64.0, gt=0)
    rotate_seconds: float = Field(3600.0, gt=0)
    exclude: list[str] = Field(default_factory=list)  # input columns never written
    queue: int = Field(10_000, ge=1)  # answered requests waiting to be written, per worker


class ServingParams(_Section):
    max_rows: int = Field(1000, ge=1)
    max_body_bytes: int = Field(1_048_576, ge=1024)
    poll_seconds: float = Field(5.0, ge=0, le=MAX_POLL_SECONDS)
    unknown_categories: Literal["reject", "allow"] = "reject"
    token_env: str | None = "MODELOPS_TOKEN"
    chunk_rows: int = Field(50_000, ge=1)
    log: LogParams = Field(default_factory=LogParams)


class MonitorParams(_Section):
    psi_warn: float = Field(0.1, gt=0)
    psi_alert: float = Field(0.25, gt=0)
    ks_alpha: float = Field(0.01, gt=0, lt=1)
    ks_min_statistic: float = Field(0.1, ge=0, le=1)
    missing_rate_increase: float = Field(0.1, ge=0, le=1)
    unseen_share_alert: float = Field(0.05, ge=0, le=1)
    metric: str = "auto"  # auto: f1 for classification, r2 for regression
    max_metric_drop: float = Field(0.05, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> MonitorParams:
        if self.psi_warn >= self.psi_alert:
            raise ValueError(
                f"psi_warn ({self.psi_warn}) must be below psi_alert ({self.psi_alert})"
            )
        return self


class Params(_Section):
    data: DataParams = Field(default_factory=DataParams)
    split: SplitParams = Field(default_factory=SplitParams)
    features: FeaturesParams = Field(default_factory=FeaturesParams)
    train: TrainParams = Field(default_factory=TrainParams)
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    registry: RegistryParams = Field(default_factory=RegistryParams)
    serving: ServingParams = Field(default_factory=ServingParams)
    monitor: MonitorParams = Field(default_factory=MonitorParams)
    # Free-form path table used only by dvc.yaml's ${paths.*} templating.
    paths: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _model_fits_task(self) -> Params:
        task = self.data.task or (
            self.data.synthetic.task
            if self.data.source == "synthetic"
            else {"breast_cancer": "classification", "diabetes": "regression"}.get(self.data.source)
        )
        # A CSV's task is inferred from its target by prepare; train checks it then
        # (TrainParams.for_task) with the same message.
        model = self.train.model
        if task is not None and model != "auto" and model not in TASK_MODELS[task]:
            raise ValueError(model_task_mismatch(model, task))
        return self


def _composer() -> type:
    from ruamel.yaml.composer import Composer, ComposerError

    class BoundedComposer(Composer):
        """Counts every node as often as aliases repeat it, refusing past MAX_YAML_NODES
        while composing, in time and memory linear in the text."""

        def compose_node(self, parent: Any, index: Any) -> Any:
            sizes = self.__dict__.setdefault("_expanded", {})
            mark = self.parser.peek_event().start_mark
            node = super().compose_node(parent, index)
            if id(node) in sizes:  # an alias: its size was counted when it was composed
                return node
            value = node.value
            if isinstance(value, list):
                children = [
                    c for item in value for c in (item if isinstance(item, tuple) else (item,))
                ]
            else:
                children = []
            size = 1 + sum(sizes.get(id(c), 1) for c in children)
            sizes[id(node)] = size
            if size > MAX_YAML_NODES:
                raise ComposerError(
                    None,
                    None,
                    f"anchors and aliases expand to more than {MAX_YAML_NODES:,} values",
                    mark,
                )
            return node

    return BoundedComposer


def yaml_loads(text: str) -> Any:
    """Parse YAML the way DVC does (YAML 1.2, safe loader), refusing documents whose
    anchors and aliases expand past MAX_YAML_NODES values or nest past MAX_YAML_DEPTH."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    yaml.Composer = _composer()
    yaml.max_depth = MAX_YAML_DEPTH
    return yaml.load(text)


def read_yaml(path: str | Path) -> Any:
    """Read a YAML file the way DVC does; ParamsError naming the file and line on failure."""
    from ruamel.yaml.error import YAMLError

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found; run from the repository root") from None
    except OSError as exc:
        raise ParamsError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ParamsError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    try:
        return yaml_loads(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = str(getattr(exc, "problem", None) or "invalid YAML").splitlines()[0][:200]
        if problem.startswith("maximum depth"):
            problem = f"nested deeper than {MAX_YAML_DEPTH} levels"
        if problem.startswith(("anchors and aliases", "nested deeper")):
            raise ParamsError(f"{path}:{where}: {problem}; write the values out") from None
        raise ParamsError(f"{path}:{where}: {problem}; fix the YAML syntax") from None


def _describe(error: dict[str, Any], model: type[BaseModel]) -> str:
    loc = [str(p) for p in error["loc"]]
    key = ".".join(loc) if loc else "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        parent: Any = model
        for part in loc[:-1]:
            field = parent.model_fields.get(part)
            parent = field.annotation if field is not None else None
            if not (isinstance(parent, type) and issubclass(parent, BaseModel)):
                parent = None
                break
        known = sorted(parent.model_fields) if parent is not None else []
        close = difflib.get_close_matches(loc[-1], known, n=1)
        hint = (
            f"did you mean {'.'.join([*loc[:-1], close[0]])}?"
            if close
            else (f"known keys: {', '.join(known)}" if known else "remove it")
        )
        return f"{key}: unknown key; {hint}"
    msg = error["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    got = error.get("input")
    if not loc:  # a cross-section rule: its message already names the keys
        return msg
    shown = "" if kind == "missing" or isinstance(got, dict) else f" (got {got!r})"
    return f"{key}: {msg}{shown}"


def validate(raw: Any, source: str = "params.yaml") -> Params:
    """Validate a parsed params mapping; raise ParamsError naming the first bad key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: must be a mapping of sections (data, split, train, ...)")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ParamsError(f"{source}: {_describe(first, Params)}") from None


def load(path: str | Path = "params.yaml") -> Params:
    """Load and validate params.yaml."""
    return validate(read_yaml(path), str(path))
