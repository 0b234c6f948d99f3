"""params.yaml validation: every bad value is one line naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelops import params
from modelops.errors import ParamsError

ROOT = Path(__file__).resolve().parents[1]


def test_project_params_are_valid():
    p = params.load(ROOT / "params.yaml")
    assert p.data.source == "breast_cancer"
    assert p.train.tol == pytest.approx(1e-6)


def test_defaults_when_empty():
    p = params.validate({})
    assert p.train.model == "auto"
    assert p.registry.gate.metric == "auto" and p.monitor.metric == "auto"


def test_project_params_default_per_task():
    # Issue 13, item 15: the shipped params.yaml picks the model and the metrics by task.
    p = params.load(ROOT / "params.yaml")
    assert (p.train.model, p.registry.gate.metric, p.monitor.metric) == ("auto",) * 3


@pytest.mark.parametrize(
    ("task", "model"),
    [("classification", "logistic_regression"), ("regression", "linear_regression")],
)
def test_auto_model_resolves_per_task(task, model):
    train = params.validate({}).train.for_task(task)
    assert train.model == model
    # what the bundle and the card record is the real kind, never "auto"
    assert train.used()["model"] == model
    assert params.validate({}).train.model == "auto"  # the params themselves are unchanged


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("model", ["random_forest", "hist_gradient_boosting"])
def test_tree_ensembles_fit_either_task(task, model):
    train = params.validate({"train": {"model": model}}).train
    assert train.for_task(task) is train


@pytest.mark.parametrize(
    ("model", "task", "expected"),
    [
        (
            "ridge",
            "classification",
            "train.model ridge is a regressor but the task is classification (inferred); "
            "use one of auto, logistic_regression, sklearn_logistic_regression, random_forest, "
            "hist_gradient_boosting",
        ),
        (
            "linear_regression",
            "classification",
            "train.model linear_regression is a regressor but the task is classification",
        ),
        (
            "logistic_regression",
            "regression",
            "train.model logistic_regression is a classifier but the task is regression "
            "(inferred); use one of auto, linear_regression, ridge, random_forest, "
            "hist_gradient_boosting",
        ),
        (
            "sklearn_logistic_regression",
            "regression",
            "train.model sklearn_logistic_regression is a classifier but the task is regression",
        ),
    ],
)
def test_a_model_that_cannot_fit_the_inferred_task_is_one_line(model, task, expected):
    # A CSV's task is known only after prepare: the schema cannot refuse these (no task).
    csv = {"source": "csv", "path": "a.csv", "target": "y"}
    train = params.validate({"data": csv, "train": {"model": model}}).train
    with pytest.raises(ParamsError) as info:
        train.for_task(task, " (inferred)")
    assert expected in str(info.value) and "\n" not in str(info.value)
    assert info.value.exit_code == 3


def test_an_explicit_task_and_the_inferred_one_give_the_same_words():
    with pytest.raises(ParamsError) as explicit:
        params.validate({"data": {"task": "classification"}, "train": {"model": "ridge"}})
    train = params.validate({"data": {"task": "regression"}, "train": {"model": "ridge"}}).train
    with pytest.raises(ParamsError) as inferred:
        train.for_task("classification")
    assert str(explicit.value) == f"params.yaml: {inferred.value}"


def test_metric_auto_follows_the_task_evaluate_wrote():
    # The names come from evaluate's own functions, so renaming a metric there breaks this.
    import numpy as np

    from modelops import evaluation as ev

    y = np.array([0, 1, 1, 0, 1])
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.6, 0.4], [0.9, 0.1]])
    for found in (
        ev.classification_metrics(y, proba, 1),
        ev.classification_metrics(np.array([0, 1, 2, 1]), np.eye(3)[[0, 1, 2, 0]], None),
    ):
        assert params.task_of_metrics(found) == "classification"
        metric = params.validate({}).registry.gate.metric_for("classification")
        assert metric == "f1" and metric in found
    found = ev.regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.1, 1.9, 3.2]))
    assert params.task_of_metrics(found) == "regression"
    gate = params.validate({}).registry.gate
    assert gate.metric_for("regression") == "r2" and "r2" in found
    assert params.higher_is_better("r2", gate.direction)
    assert not params.higher_is_better("rmse", gate.direction)
    assert params.task_of_metrics({"psi": 0.1}) is None
    # an explicit metric is taken as written, whatever the task
    assert params.resolve_metric("rmse", "classification") == "rmse"
    assert params.resolve_metric("auto", "regression") == "r2"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"train": {"lrr": 0.1}}, "train.lrr: unknown key; did you mean train.lr?"),
        ({"trian": {}}, "trian: unknown key; did you mean train?"),
        ({"train": {"epochs": "ten"}}, "train.epochs: Input should be a valid integer"),
        ({"train": {"epochs": 0}}, "train.epochs: Input should be greater than or equal to 1"),
        ({"train": {"lr": -1}}, 'train.lr: must be a positive number or "auto"'),
        ({"train": {"momentum": 1}}, 'train.momentum: must be a number in [0, 1) or "auto"'),
        ({"train": {"momentum": "fast"}}, 'train.momentum: must be a number in [0, 1) or "auto"'),
        ({"train": {"momentum": True}}, 'train.momentum: must be a number in [0, 1) or "auto"'),
        (
            {"train": {"early_stopping": "yes"}},
            "train.early_stopping: Input should be a valid boolean",
        ),
        ({"split": {"test_size": 1.5}}, "split.test_size: Input should be less than 1"),
        ({"train": {"model": "xgboost"}}, "train.model: Input should be"),
        ({"data": {"source": "csv"}}, "source is csv: set data.path"),
        ({"data": {"source": "csv", "path": "a.csv"}}, "set data.target"),
        ({"data": {"path": "a.csv"}}, "data.path is only used with source: csv"),
        (
            {"data": {"source": "diabetes"}, "train": {"model": "logistic_regression"}},
            "logistic_regression is a classifier but the task is regression",
        ),
        ({"train": {"model": "ridge"}}, "ridge is a regressor but the task is classification"),
        ({"train": {"random_forest": {"max_features": "all"}}}, "train.random_forest.max_features"),
        (
            {"data": {"synthetic": {"n_features": 3, "n_informative": 5}}},
            "n_informative (5) must not exceed",
        ),
        ([1, 2], "must be a mapping of sections"),
    ],
)
def test_bad_params_name_the_key(raw, expected):
    with pytest.raises(ParamsError) as info:
        params.validate(raw)
    msg = str(info.value)
    assert expected in msg
    assert "\n" not in msg


def test_yaml_is_read_like_dvc_reads_it(tmp_path):
    # YAML 1.2: 1e-6 is a number (PyYAML would read a string), "yes" is a string.
    f = tmp_path / "params.yaml"
    f.write_text(
        "train:\n  tol: 1e-6\ndata:\n  source: csv\n  path: a.csv\n  target: t\n"
        "  positive_class: yes\n"
    )
    p = params.load(f)
    assert p.train.tol == pytest.approx(1e-6)
    assert p.data.positive_class == "yes"


def test_yaml_syntax_error_names_the_line(tmp_path):
    f = tmp_path / "params.yaml"
    f.write_text("train:\n  lr: [0.1\n")
    with pytest.raises(ParamsError, match=r"params.yaml: line \d+"):
        params.load(f)


def test_missing_file(tmp_path):
    with pytest.raises(ParamsError, match="file not found"):
        params.load(tmp_path / "nope.yaml")


def test_used_keeps_only_the_models_keys():
    p = params.validate({"train": {"model": "random_forest"}})
    assert set(p.train.used()) == {"model", "seed", "random_forest"}
    p = params.validate(
        {
            "data": {"source": "diabetes"},
            "train": {"model": "linear_regression", "solver": "closed_form"},
        }
    )
    assert set(p.train.used()) == {"model", "seed", "solver", "l2"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {"data": {"source": "synthetic", "synthetic": {"n_rows": 10**12}}},
            "data.synthetic.n_rows: Input should be less than or equal to 10000000",
        ),
        (
            {"data": {"synthetic": {"n_rows": 10_000_000, "n_features": 1000}}},
            "n_rows x n_features (10,000,000 x 1,000) must not exceed 100,000,000 values",
        ),
        (
            {"data": {"synthetic": {"noise": float("inf")}}},
            "data.synthetic.noise: Input should be a finite number",
        ),
        (
            {"data": {"synthetic": {"noise": float("nan")}}},
            "data.synthetic.noise: Input should be a finite",
        ),
        (
            {"train": {"lr": float("inf")}},
            'train.lr: must be a positive number or "auto" (1/L from the data), at most 1e6',
        ),
        ({"train": {"lr": float("nan")}}, "train.lr: must be a positive number"),
        ({"train": {"momentum": float("nan")}}, "train.momentum: must be a number in [0, 1)"),
        (
            {"train": {"hist_gradient_boosting": {"learning_rate": float("inf")}}},
            "train.hist_gradient_boosting.learning_rate: Input should be a finite number",
        ),
        ({"train": {"l2": float("inf")}}, "train.l2: Input should be a finite number"),
        (
            {"serving": {"poll_seconds": float("inf")}},
            "serving.poll_seconds: Input should be a finite number",
        ),
        (
            {"serving": {"poll_seconds": 1e300}},
            "serving.poll_seconds: Input should be less than or equal to 86400",
        ),
        ({"monitor": {"psi_alert": float("nan")}}, "monitor.psi_alert: Input should be a finite"),
        ({"registry": {"gate": {"tolerance": float("inf")}}}, "registry.gate.tolerance: Input"),
    ],
)
def test_values_the_code_cannot_run_are_refused_naming_the_key(raw, expected):
    """The schema accepted these and the code then could not run them: 10^12 synthetic rows,
    infinite noise or learning rates, and an infinite poll interval, which killed the poll
    thread (Event.wait overflows) so the server silently stopped following its stage."""
    with pytest.raises(ParamsError) as info:
        params.validate(raw)
    msg = str(info.value)
    assert expected in msg and "\n" not in msg


def test_yaml_infinities_reach_the_schema_as_floats(tmp_path):
    f = tmp_path / "params.yaml"
    f.write_text("serving:\n  poll_seconds: .inf\n")
    with pytest.raises(ParamsError, match=r"serving.poll_seconds: Input should be a finite number"):
        params.load(f)


def test_a_billion_laughs_params_yaml_is_refused_quickly_in_bounded_memory(tmp_path):
    """Ten aliases of ten aliases, nine deep: 10^9 values if anything walks it (validation did,
    for as long as memory lasted). Refused while parsing, naming the file and the line."""
    import time
    import tracemalloc

    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    f = tmp_path / "params.yaml"
    f.write_text("\n".join([*lines, "train: *a9"]) + "\n")
    tracemalloc.start()
    start = time.monotonic()
    try:
        with pytest.raises(ParamsError) as info:
            params.load(f)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.monotonic() - start < 5
    assert peak < 50 * 2**20
    msg = str(info.value)
    assert msg.startswith(f"{f}: line 6: anchors and aliases expand to more than 1,000,000")
    assert "\n" not in msg


def test_deep_nesting_is_one_line_not_a_recursion_error(tmp_path):
    f = tmp_path / "params.yaml"
    f.write_text("train: " + "[" * 400 + "]" * 400 + "\n")
    with pytest.raises(ParamsError, match=r"params.yaml: line 1: nested deeper than 200 levels"):
        params.load(f)


def test_a_few_anchors_still_parse(tmp_path):
    """DVC's own files may share a node through an anchor; only the expansion is capped."""
    assert params.yaml_loads("a: &x {b: 1}\nc: *x\nd: [*x, *x]\n") == {
        "a": {"b": 1},
        "c": {"b": 1},
        "d": [{"b": 1}, {"b": 1}],
    }
