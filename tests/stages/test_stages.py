"""Stage entry points: a user mistake is one line on stderr, exit 1, and no output written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from modelops.stages import evaluate, prepare, train
from tests.helpers import numbers

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


EVALUATE = [
    "--data", "prep", "--model", "m/model.npz", "--metrics", "metrics.json",
    "--plots", "plots", "--card", "card",
]  # fmt: skip


def run_all(workdir: Path) -> None:
    assert prepare.main(["--out", "prep"]) == 0
    assert train.main(["--data", "prep", "--model", "m/model.npz", "--loss", "loss.json"]) == 0
    assert evaluate.main(EVALUATE) == 0


def test_stages_in_process(workdir, capsys):
    run_all(workdir)
    for name in (
        "prep/train.arrow",
        "prep/schema.json",
        "m/model.npz",
        "loss.json",
        "metrics.json",
        "plots/roc.json",
        "card.json",
        "card.md",
    ):
        assert (workdir / name).is_file(), name


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("  lr: auto ", "  lr: -1 ", "train.lr: must be a positive number"),
        (
            "  epochs: 2000",
            "  epochs: 2000\n  epoch: 3",
            "train.epoch: unknown key; did you mean train.epochs?",
        ),
        ("source: breast_cancer ", "source: csv\n  xx: 1 ", "data.xx: unknown key"),
        ("  test_size: 0.2", "  test_size: 0", "split.test_size: Input should be greater than 0"),
        ("  importance: auto ", "  importance: shap ", "evaluate.importance: Input should be"),
    ],
)
def test_bad_params_stop_prepare_before_writing(workdir, capsys, old, new, expected):
    edit(workdir / "params.yaml", old, new)
    assert prepare.main(["--out", "prep"]) == 3
    assert expected in one_line_error(capsys)
    assert sorted(p.name for p in workdir.iterdir()) == ["params.yaml"]


def test_bad_csv_writes_nothing(workdir, capsys):
    (workdir / "d.csv").write_text("a,b\n1,2\n3,4\n")
    edit(workdir / "params.yaml", "source: breast_cancer", "source: csv")
    edit(workdir / "params.yaml", "path: null", "path: d.csv")
    edit(workdir / "params.yaml", "target: null", "target: label")
    assert prepare.main(["--out", "prep"]) == 4
    assert "data.target: column 'label' is not in d.csv; its columns are: a, b" in one_line_error(
        capsys
    )
    assert not (workdir / "prep").exists()


def test_evaluate_refuses_a_bundle_that_does_not_match_dvc_lock(workdir, capsys):
    run_all(workdir)
    before = {p: p.read_bytes() for p in (workdir / "metrics.json", workdir / "card.json")}
    (workdir / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  train:\n    outs:\n    - path: m/model.npz\n      md5: '"
        + "0" * 32
        + "'\n"
    )
    code = evaluate.main(EVALUATE)
    assert code == 5
    assert "does not match 000" in one_line_error(capsys)
    assert before == {p: p.read_bytes() for p in before}


def test_traceback_flag_shows_the_traceback(workdir):
    edit(workdir / "params.yaml", "  lr: auto ", "  lr: -1 ")
    from modelops.errors import ParamsError

    with pytest.raises(ParamsError):
        prepare.main(["--out", "prep", "--traceback"])


# -- issue 13, item 15: train.model auto, and a model that cannot fit the inferred task ----
def csv_workdir(workdir: Path, target: str, frame) -> None:
    frame.to_csv(workdir / "d.csv", index=False)
    edit(workdir / "params.yaml", "source: breast_cancer", "source: csv")
    edit(workdir / "params.yaml", "path: null", "path: d.csv")
    edit(workdir / "params.yaml", "target: null", f"target: {target}")


TRAIN = ["--data", "prep", "--model", "m/model.npz", "--loss", "loss.json"]


def set_model(workdir: Path, model: str) -> None:
    import re

    path = workdir / "params.yaml"
    text, n = re.subn(r"(?m)^  model: auto\b", f"  model: {model}", path.read_text())
    assert n == 1
    path.write_text(text)


def test_a_regression_csv_with_default_params_trains_linear_regression(workdir, capsys):
    import json

    import numpy as np
    import pandas as pd
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score
    from sklearn.preprocessing import StandardScaler

    from modelops import params

    csv_workdir(workdir, "y", numbers(300, seed=0))
    run_all(workdir)
    card = json.loads((workdir / "card.json").read_text())
    assert card["model"]["kind"] == "linear_regression" and card["model"]["task"] == "regression"
    assert card["params"]["train"]["model"] == "linear_regression"  # never "auto"
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert set(metrics) == {"mae", "r2", "rmse"}
    # scikit-learn on the same split: Ridge(alpha = n * l2) on standardised columns
    train, test = (pd.read_feather(workdir / f"prep/{s}.arrow") for s in ("train", "test"))
    cols = ["a", "b", "c"]
    scaler = StandardScaler().fit(train[cols])
    l2 = params.load("params.yaml").train.l2
    ref = Ridge(alpha=len(train) * l2).fit(scaler.transform(train[cols]), train["y"])
    expected = r2_score(test["y"], ref.predict(scaler.transform(test[cols])))
    assert expected > 0.3
    assert metrics["r2"] == pytest.approx(expected, abs=1e-9)
    assert np.isfinite(metrics["rmse"])


def test_a_classification_csv_with_a_regressor_stops_train_in_one_line(workdir, capsys):
    frame = numbers(120, seed=1)
    frame["y"] = ["high" if a > 0.5 else "mid" if a > -0.5 else "low" for a in frame["a"]]
    csv_workdir(workdir, "y", frame)
    set_model(workdir, "ridge")
    assert prepare.main(["--out", "prep"]) == 0
    capsys.readouterr()
    assert train.main(TRAIN) == 3
    assert one_line_error(capsys) == (
        "error: params.yaml: train.model ridge is a regressor but the task is classification "
        "(inferred from data.target 'y'; set data.task if that is wrong); use one of auto, "
        "logistic_regression, sklearn_logistic_regression, random_forest, hist_gradient_boosting"
    )
    assert not (workdir / "m").exists() and not (workdir / "loss.json").exists()


def test_a_regression_csv_with_a_classifier_stops_train_in_one_line(workdir, capsys):
    # The 50-class softmax on a truncated numeric target the issue found.
    csv_workdir(workdir, "y", numbers(300, seed=2))
    set_model(workdir, "logistic_regression")
    assert prepare.main(["--out", "prep"]) == 0
    capsys.readouterr()
    assert train.main(TRAIN) == 3
    err = one_line_error(capsys)
    assert "train.model logistic_regression is a classifier but the task is regression" in err
    assert "use one of auto, linear_regression, ridge, random_forest, hist_gradient_boosting" in err
    assert not (workdir / "m").exists() and not (workdir / "loss.json").exists()


def test_evaluate_refuses_predictions_that_are_not_finite_and_writes_nothing(workdir, capsys):
    """A test row whose features lie far beyond training overflows a linear model's output:
    one line naming the rows, exit 4, the previous outputs untouched (they were a traceback
    with the plots already replaced)."""
    import pandas as pd

    csv_workdir(workdir, "y", numbers(300, seed=0))
    run_all(workdir)
    before = tree_of(workdir, "metrics.json", "card.json", "card.md", "plots")
    test = pd.read_feather(workdir / "prep/test.arrow")
    # y = 40 + 3a - 2b + 0.5c (tests/helpers.numbers): every term overflows the same way
    test.loc[test.index[[2, 5]], ["a", "b", "c"]] = [[1.7e308, -1.7e308, 1.7e308]] * 2
    test.to_feather(workdir / "prep/test.arrow")
    capsys.readouterr()
    assert evaluate.main(EVALUATE) == 4
    assert one_line_error(capsys) == (
        "error: evaluate: the model gives no finite prediction for 2 of 60 rows of "
        "prep/test.arrow (row 2, 5, counted from 0): their features lie far outside the "
        "training data; correct or drop them in the source data and run prepare again"
    )
    assert tree_of(workdir, "metrics.json", "card.json", "card.md", "plots") == before


def test_evaluate_refuses_probabilities_that_are_not_finite_and_writes_nothing(workdir, capsys):
    """The same for a classifier: +inf and -inf features give a logit of inf - inf (NaN) in
    the softmax of a three-class logistic regression; no metric may be computed from it."""
    import pandas as pd

    frame = numbers(300, seed=3)
    frame["y"] = ["high" if a > 0.5 else "mid" if a > -0.5 else "low" for a in frame["a"]]
    csv_workdir(workdir, "y", frame)
    run_all(workdir)
    before = tree_of(workdir, "metrics.json", "card.json", "card.md", "plots")
    test = pd.read_feather(workdir / "prep/test.arrow")
    test.loc[test.index[[0, 7, 9, 11]], ["a", "b", "c"]] = [[1.7e308, -1.7e308, 1.7e308]] * 4
    test.to_feather(workdir / "prep/test.arrow")
    capsys.readouterr()
    assert evaluate.main(EVALUATE) == 4
    assert one_line_error(capsys) == (
        "error: evaluate: the model gives no finite probabilities for 4 of 60 rows of "
        "prep/test.arrow (row 0, 7, 9, ..., counted from 0): their features lie far outside "
        "the training data; correct or drop them in the source data and run prepare again"
    )
    assert tree_of(workdir, "metrics.json", "card.json", "card.md", "plots") == before


def tree_of(root: Path, *names: str) -> dict[str, bytes]:
    out = {}
    for name in names:
        path = root / name
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        out |= {f.relative_to(root).as_posix(): f.read_bytes() for f in files if f.is_file()}
    return out


def test_a_missing_or_foreign_split_stops_train_and_evaluate_with_one_line(workdir, capsys):
    run_all(workdir)
    before = (workdir / "m/model.npz").read_bytes()
    (workdir / "prep/train.arrow").unlink()
    capsys.readouterr()
    assert train.main(["--data", "prep", "--model", "m/model.npz", "--loss", "loss.json"]) == 4
    assert one_line_error(capsys) == (
        "error: prep/train.arrow is missing; run the prepare stage again (`dvc repro prepare`, "
        "or `dvc checkout` to restore it)"
    )
    (workdir / "prep/test.arrow").write_bytes(b"PAR1 a parquet file from an older prepare")
    assert evaluate.main([*EVALUATE, "--lock", "none.lock"]) == 4
    assert "prep/test.arrow is not a split prepare wrote" in one_line_error(capsys)
    assert (workdir / "m/model.npz").read_bytes() == before  # nothing was written
