"""Experiments without DVC: the params exp_show reports, typed as their files hold them."""

from __future__ import annotations

from typing import Any

from modelops.experiments import exact_params

PARAMS = {
    "train": {"epochs": 200, "l2": 1.0, "lr": "auto", "scale": True, "seed": 0, "batch": None},
    "grid": [1, 2],
}


def read(files: dict[str, Any]):
    seen: list[str] = []

    def reader(file: str) -> Any:
        seen.append(file)
        return files.get(file)

    return reader, seen


def test_numbers_keep_the_type_their_file_gives_them():
    """Issue 13, item 23: DVC's exp_show API reports every number as a float and 0 as None,
    so `exp best` printed train.epochs=200.0."""
    shown = {
        "train.epochs": 200.0,
        "train.l2": 1.0,
        "train.lr": "auto",
        "train.scale": "True",
        "train.seed": None,
        "train.batch": None,
    }
    reader, seen = read({"params.yaml": PARAMS})
    exact = exact_params(shown, reader)
    assert exact == {
        "train.epochs": 200,
        "train.l2": 1.0,
        "train.lr": "auto",
        "train.scale": True,
        "train.seed": 0,
        "train.batch": None,
    }
    assert type(exact["train.epochs"]) is int and type(exact["train.l2"]) is float
    assert " ".join(f"{k}={v}" for k, v in exact.items()).startswith("train.epochs=200 ")
    assert set(seen) == {"params.yaml"}


def test_a_file_prefix_names_the_file_and_unknown_keys_keep_dvcs_value():
    reader, seen = read({"params.yaml": PARAMS, "other.yaml": {"train": {"epochs": 7}}})
    exact = exact_params(
        {"other.yaml:train.epochs": 7.0, "train.missing": 3.0, "grid": "[1, 2]"}, reader
    )
    assert exact == {"other.yaml:train.epochs": 7, "train.missing": 3.0, "grid": "[1, 2]"}
    assert "other.yaml" in seen
    # a file that cannot be read (None) leaves DVC's values as they are
    assert exact_params({"train.epochs": 200.0}, lambda f: None) == {"train.epochs": 200.0}
