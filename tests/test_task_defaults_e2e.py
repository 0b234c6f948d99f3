"""Issue 13, item 15: a regression CSV through the pipeline and the registry with nothing but
its path and target set: train.model, the gate's metric and the monitor's follow the task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelops import api, cli
from tests.helpers import cli_error, dvc, git, make_project, message, numbers, set_params, snapshot

pytestmark = pytest.mark.e2e


def reproduce(repo: Path, why: str) -> dict:
    dvc(repo, "repro")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", why)
    return json.loads((repo / "metrics/metrics.json").read_text())


def test_a_regression_csv_with_default_params_goes_through_the_default_gate(
    tmp_path, monkeypatch, capsys
):
    repo = make_project(tmp_path / "repo")
    numbers(400, seed=3).rename(columns={"y": "price"}).to_csv(
        repo / "data/raw/houses.csv", index=False
    )
    dvc(repo, "add", "data/raw/houses.csv")
    set_params(
        repo, **{"data.source": "csv", "data.path": "data/raw/houses.csv", "data.target": "price"}
    )
    first = reproduce(repo, "houses")
    assert set(first) == {"mae", "r2", "rmse"} and first["r2"] > 0.3
    card = json.loads((repo / "metrics/card.json").read_text())
    assert card["model"]["kind"] == "linear_regression"
    monkeypatch.chdir(repo)

    assert cli.main(["register"]) == 0
    assert cli.main(["promote", "model@v0.0.1", "--stage", "prod"]) == 0
    assert "no version holds the stage yet" in capsys.readouterr().out
    lineage = api.show("model@v0.0.1")["lineage"]
    assert lineage["params"]["train"]["model"] == "linear_regression"

    # A weaker candidate: a heavy L2 penalty shrinks the coefficients, so r2 falls.
    set_params(repo, **{"train.l2": 10.0})
    second = reproduce(repo, "heavy l2")
    assert second["r2"] < first["r2"] and second["rmse"] > first["rmse"]
    assert cli.main(["register"]) == 0
    capsys.readouterr()
    before = snapshot(repo)
    err = cli_error(capsys, ["promote", "model@v0.0.2", "--stage", "prod"], code=6)
    assert err == (
        f"error: gate: model@v0.0.2 has r2 {second['r2']:.6g}, worse than {first['r2']:.6g} "
        "of model@v0.0.1 holding 'prod' (tolerance 0); use --force --reason TEXT to promote "
        "anyway"
    )
    assert snapshot(repo) == before
    # The explicit lower-is-better metric still works next to auto.
    set_params(repo, **{"registry.gate.metric": "rmse", "registry.gate.tolerance": 100.0})
    git(repo, "commit", "-q", "-am", "gate on rmse, loosely")
    assert cli.main(["promote", "model@v0.0.2", "--stage", "prod"]) == 0
    gate = message(repo, "model#prod#2")["gate"]
    assert gate["metric"] == "rmse" and gate["higher_is_better"] is False
    assert gate["candidate"] == pytest.approx(second["rmse"])
    assert gate["holder"] == pytest.approx(first["rmse"])
