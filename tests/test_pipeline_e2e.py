"""The pipeline through real git and DVC, in temp copies of the project."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from ruamel.yaml import YAML

from tests.helpers import dvc, git, set_params, tree_state

pytestmark = pytest.mark.e2e


def test_fresh_clone_reproduces_byte_identical_outputs(project):
    """`dvc repro` on a clone re-creates every output; dvc.lock and git stay unchanged (on any
    x86-64 CPU: the stages pin their numerics). Bundles record Python's feature release, so
    the committed lock is for the one that wrote it."""
    import platform

    recorded = json.loads((project / "metrics/card.json").read_text())["versions"]["python"]
    if recorded != ".".join(platform.python_version_tuple()[:2]):
        pytest.skip(f"the committed dvc.lock was written with Python {recorded}")
    lock_before = (project / "dvc.lock").read_text()
    dvc(project, "repro")
    assert (project / "models/model.npz").is_file()
    assert git(project, "status", "--porcelain").stdout == ""
    assert (project / "dvc.lock").read_text() == lock_before
    assert "up to date" in dvc(project, "repro").stdout
    metrics = json.loads((project / "metrics/metrics.json").read_text())
    assert set(metrics) == {"accuracy", "f1", "log_loss", "precision", "recall", "roc_auc"}
    assert metrics["accuracy"] > 0.9
    shown = dvc(project, "plots", "show", "-o", str(project / "../plots"))
    assert "failed" not in shown.stdout + shown.stderr


def test_bad_params_stop_dvc_repro_with_one_line_and_nothing_written(project):
    set_params(project, **{"train.epochs": -3})
    before = tree_state(project)
    proc = dvc(project, "repro", check=False)
    assert proc.returncode != 0
    assert "error: params.yaml: train.epochs: Input should be greater than or equal to 1" in (
        proc.stderr + proc.stdout
    )
    assert tree_state(project) == before


def test_bring_your_own_csv(project):
    n = 300
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(n)],
            "tenure": [i % 60 for i in range(n)],
            "monthly": [20.0 + (i * 7) % 80 for i in range(n)],
            "plan": [["basic", "plus", "pro"][i % 3] for i in range(n)],
            "churn": ["Yes" if (i % 60) < 12 or i % 7 == 0 else "No" for i in range(n)],
        }
    )
    frame.loc[::17, "monthly"] = None
    (project / "data/raw/customers.csv").write_text(frame.to_csv(index=False).replace(",,", ",?,"))
    dvc(project, "add", "data/raw/customers.csv")
    set_params(
        project,
        **{
            "data.source": "csv",
            "data.path": "data/raw/customers.csv",
            "data.target": "churn",
            "data.positive_class": "Yes",
        },
    )
    out = dvc(project, "repro").stdout
    assert "dropped column 'customer_id'" in out
    card = json.loads((project / "metrics/card.json").read_text())
    assert card["features"]["categorical"] == {"plan": ["basic", "plus", "pro"]}
    assert "customer_id" in card["features"]["dropped"]
    assert card["data"]["positive_class"] == "Yes"
    recorded = YAML(typ="safe").load((project / "data/raw/customers.csv.dvc").read_text())
    assert card["data"]["source"]["md5"] == recorded["outs"][0]["md5"]
    lock = (project / "dvc.lock").read_text()
    assert "data/raw" in lock and card["model"]["md5"] in lock


def test_regression_with_random_forest_is_reproducible(project):
    set_params(
        project,
        **{
            "data.source": "diabetes",
            "train.model": "random_forest",
            "train.random_forest.n_estimators": 30,
        },
    )
    dvc(project, "repro")
    metrics = json.loads((project / "metrics/metrics.json").read_text())
    assert set(metrics) == {"mae", "r2", "rmse"} and metrics["r2"] > 0.2
    first = (project / "models/model.npz").read_bytes()
    plots = json.loads((project / "metrics/plots/predicted_vs_actual.json").read_text())
    assert (
        len(plots)
        == json.loads((project / "metrics/card.json").read_text())["data"]["rows"]["test"]
    )
    dvc(project, "repro", "-f", "-s", "train")  # train alone, again: the same bytes
    assert (project / "models/model.npz").read_bytes() == first
