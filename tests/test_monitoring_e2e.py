"""modelops monitor / make-batch on a registered repo, and the monitor DVC stage."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from modelops import api, cli
from tests.helpers import dvc, git

pytestmark = pytest.mark.e2e


@pytest.fixture
def repo(base: Path, tmp_path: Path, monkeypatch) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(base, copy, symlinks=True)
    monkeypatch.chdir(copy)
    api.promote("model@v0.0.1", stage="prod")
    return copy


def make(tmp: Path, *args: str) -> Path:
    out = tmp / f"batch{len(list(tmp.glob('*.csv')))}.csv"
    assert cli.main(["make-batch", "--stage", "prod", "-o", str(out), *args]) == 0
    return out


def test_ok_batch_exits_0(repo: Path, tmp_path: Path, capsys):
    batch = make(tmp_path, "--rows", "2000")
    capsys.readouterr()
    assert cli.main(["monitor", "--stage", "prod", "--batch", str(batch)]) == 0
    out = capsys.readouterr().out
    assert "OK" in out.splitlines()[0] and "no action needed" in out


def test_drifted_batch_exits_1_and_names_the_feature(repo: Path, tmp_path: Path, capsys):
    batch = make(tmp_path, "--shift", "mean", "--feature", "mean radius", "--strength", "1.5")
    capsys.readouterr()
    report_file = tmp_path / "report.md"
    assert (
        cli.main(
            [
                "monitor",
                "--version",
                "v0.0.1",
                "--batch",
                str(batch),
                "--format",
                "md",
                "--output",
                str(report_file),
            ]
        )
        == 1
    )
    assert "retrain: " in capsys.readouterr().out
    assert "| mean radius | alert |" in report_file.read_text()
    assert cli.main(["monitor", "--stage", "prod", "--batch", str(batch), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "model@v0.0.1" and "mean radius" in report["causes"]


def test_labelled_batch_reports_performance(repo: Path, tmp_path: Path, capsys):
    batch = make(tmp_path, "--shift", "label", "--with-target")
    capsys.readouterr()
    cli.main(["monitor", "--stage", "prod", "--batch", str(batch), "--format", "json"])
    perf = json.loads(capsys.readouterr().out)["performance"]
    # the reference is v0.0.1's test F1 (read at its commit), not the workspace's v0.0.2
    at_v1 = git(repo, "show", "model@v0.0.1:metrics/metrics.json").stdout
    workspace_f1 = json.loads((repo / "metrics/metrics.json").read_text())["f1"]
    assert json.loads(at_v1)["f1"] != workspace_f1  # else this could not tell them apart
    assert perf["metric"] == "f1" and perf["reference"] == json.loads(at_v1)["f1"]
    assert perf["drop"] == pytest.approx(perf["reference"] - perf["batch"])


def test_bad_batch_is_a_data_error_not_an_alert(repo: Path, tmp_path: Path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    assert cli.main(["monitor", "--stage", "prod", "--batch", str(bad)]) == 4
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "column 'mean radius' is missing" in err


def test_the_monitor_stage_versions_drift(repo: Path, tmp_path: Path):
    git(repo, "checkout", "-q", "model@v0.0.1")
    dvc(repo, "checkout")
    shifted = make(tmp_path, "--shift", "scale", "--feature", "mean area")
    shutil.copy(shifted, repo / "data/incoming/week1.csv")
    out = dvc(repo, "repro").stdout
    assert "monitor: week1.csv: alert" in out
    drift = json.loads((repo / "metrics/drift.json").read_text())
    assert drift["batches"] == 1 and drift["alerts"] == 1
    assert drift["files"]["week1.csv"]["verdict_code"] == 2
    shown = json.loads(dvc(repo, "metrics", "show", "--json").stdout)
    assert any("metrics/drift.json" in str(v) for v in shown.values())
