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
    assert params.validate({}).train.model == "logistic_regression"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"train": {"lrr": 0.1}}, "train.lrr: unknown key; did you mean train.lr?"),
        ({"trian": {}}, "trian: unknown key; did you mean train?"),
        ({"train": {"epochs": "ten"}}, "train.epochs: Input should be a valid integer"),
        ({"train": {"epochs": 0}}, "train.epochs: Input should be greater than or equal to 1"),
        ({"train": {"lr": -1}}, 'train.lr: must be a positive number or "auto"'),
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
            {"data": {"source": "diabetes"}},
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
