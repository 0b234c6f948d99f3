"""Stage entry points: a user mistake is one line on stderr, exit 1, and no output written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from modelops.stages import evaluate, prepare, train

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


def run_all(workdir: Path) -> None:
    assert prepare.main(["--out", "prep"]) == 0
    assert train.main(["--data", "prep", "--model", "m/model.npz", "--loss", "loss.json"]) == 0
    assert (
        evaluate.main(
            [
                "--data",
                "prep",
                "--model",
                "m/model.npz",
                "--metrics",
                "metrics.json",
                "--plots",
                "plots",
                "--card",
                "card",
            ]
        )
        == 0
    )


def test_stages_in_process(workdir, capsys):
    run_all(workdir)
    for name in (
        "prep/train.parquet",
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
    assert prepare.main(["--out", "prep"]) == 1
    assert expected in one_line_error(capsys)
    assert sorted(p.name for p in workdir.iterdir()) == ["params.yaml"]


def test_bad_csv_writes_nothing(workdir, capsys):
    (workdir / "d.csv").write_text("a,b\n1,2\n3,4\n")
    edit(workdir / "params.yaml", "source: breast_cancer", "source: csv")
    edit(workdir / "params.yaml", "path: null", "path: d.csv")
    edit(workdir / "params.yaml", "target: null", "target: label")
    assert prepare.main(["--out", "prep"]) == 1
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
    code = evaluate.main(
        [
            "--data",
            "prep",
            "--model",
            "m/model.npz",
            "--metrics",
            "metrics.json",
            "--plots",
            "plots",
            "--card",
            "card",
        ]
    )
    assert code == 1
    assert "does not match 000" in one_line_error(capsys)
    assert before == {p: p.read_bytes() for p in before}


def test_traceback_flag_shows_the_traceback(workdir):
    edit(workdir / "params.yaml", "  lr: auto ", "  lr: -1 ")
    from modelops.errors import ParamsError

    with pytest.raises(ParamsError):
        prepare.main(["--out", "prep", "--traceback"])
