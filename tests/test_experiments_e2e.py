"""Experiments, reports and merges through real DVC queues and git merges in temp repos."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from dvc import api as dvc_api

from modelops import api, cli
from modelops.params import yaml_loads
from tests.helpers import BIN, cli_error, copy_repo, dvc, git, set_params, tree_state

pytestmark = pytest.mark.e2e


@pytest.fixture
def repo(reproduced: Path, tmp_path: Path, monkeypatch) -> Path:
    """A private copy of the reproduced, committed project; cwd is the repo."""
    repo = copy_repo(reproduced, tmp_path / "repo")
    monkeypatch.chdir(repo)
    return repo


def metrics(repo: Path) -> dict:
    return json.loads((repo / "metrics/metrics.json").read_text())


def run_queue(repo: Path, jobs: int, expected: int) -> list[dict]:
    """Run the queued experiments as ``dvc exp run --run-all -j N`` does: it starts the
    queue's workers and waits for every task (``dvc queue start`` would return at once and
    leave the test polling); return the rows of the experiments on this commit.

    Its output goes to a file, not a pipe: the workers it starts inherit the pipe and keep it
    open for their 10-second idle timeout after the command has returned."""
    with open(repo.parent / "queue.log", "ab") as log:
        subprocess.run(  # exits 255 if one experiment failed
            [str(BIN / "dvc"), "exp", "run", "--run-all", "-j", str(jobs)],
            cwd=repo,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=300,
        )
    rows = [
        r
        for r in dvc_api.exp_show(repo=str(repo))
        if r.get("typ") in ("branch_base", "branch_commit") and r.get("Experiment")
    ]
    assert len(rows) == expected, dvc(repo, "queue", "status").stdout
    assert all(r.get("State") in (None, "Success", "Failed") for r in rows), rows
    return rows


def test_a_failed_experiment_is_named_beside_others_run_in_parallel_and_best_to_a_branch(
    repo: Path, capsys
):
    # One queue run for all three: starting DVC's queue workers takes seconds each run
    dvc(repo, "exp", "run", "--queue", "-S", "train.epochs=0", "-n", "broken")
    for l2, epochs in (("0.0001", "50"), ("0.5", "300")):
        dvc(repo, "exp", "run", "--queue", "-S", f"train.l2={l2}", "-S", f"train.epochs={epochs}")
    rows = run_queue(repo, jobs=2, expected=3)
    assert [r["Experiment"] for r in rows if r["State"] == "Failed"] == ["broken"]
    rows = [r for r in rows if r["State"] != "Failed"]
    assert len(rows) == 2 and all(isinstance(r.get("f1"), float) for r in rows), rows
    best_f1 = max(r["f1"] for r in rows)
    by_name = {r["Experiment"]: r for r in rows}

    # the failure is listed and the rest ranked (issue 13, 23)
    assert cli.main(["exp", "best", "--metric", "f1", "--branch", "best-run"]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "1 experiment(s) failed: broken" in out + captured.err
    winner = next(line for line in out.splitlines() if line.lstrip().startswith("1 ")).split()[1]
    assert by_name[winner]["f1"] == best_f1  # ties are broken by name
    assert "train.epochs" in out and "train.l2" in out
    # Issue 13, item 23: integer params print as the integers they are (not 300.0)
    assert re.search(r"train\.epochs=(50|300) train\.l2=(0\.0001|0\.5)\b", out), out
    assert ".0 " not in out.split("train.epochs=", 1)[1].split("train.l2")[0]
    # log_loss ranks the other way round by default
    board = api.exp_best("log_loss")
    assert not board.higher_is_better
    assert board.best.value == min(r["log_loss"] for r in rows)
    git(repo, "checkout", "-q", "best-run")
    assert metrics(repo) == {k: by_name[winner][k] for k in metrics(repo)}
    epochs = yaml_loads((repo / "params.yaml").read_text())["train"]["epochs"]
    assert type(epochs) is int and f"train.epochs={epochs} " in out  # the schema's type

    # with only the failure left, nothing is ranked and the failure says where its log is
    git(repo, "checkout", "-q", "-")  # back to the commit the experiments were run on
    dvc(repo, "exp", "remove", *by_name)
    err = cli_error(capsys, ["exp", "best", "--metric", "f1"], code=7)
    assert "no finished experiments" in err and "1 experiment(s) failed: broken" in err
    assert "dvc queue logs broken" in err


def test_exp_best_refusals(repo: Path, capsys):
    assert "no finished experiments on this commit" in cli_error(
        capsys, ["exp", "best", "--metric", "f1"], code=7
    )
    dvc(repo, "exp", "run", "-S", "train.l2=0.01", "-n", "one")
    err = cli_error(capsys, ["exp", "best", "--metric", "f2"], code=2)
    assert "--metric 'f2' is not a metric here; known metrics: accuracy, " in err
    assert ", f1, " in err
    assert "already exists" in cli_error(
        capsys, ["exp", "best", "--metric", "f1", "--branch", "main"], code=2
    )
    # the workspace holds experiment "one"'s result, which its ref keeps: applying is safe
    assert cli.main(["exp", "best", "--metric", "f1", "--apply"]) == 0
    assert "l2: 0.01" in (repo / "params.yaml").read_text()
    # an edit that no experiment holds would be lost: refused, nothing changed
    (repo / "README.md").write_text("my notes")
    before = tree_state(repo)
    assert "uncommitted changes in README.md would be overwritten" in cli_error(
        capsys, ["exp", "best", "--metric", "f1", "--apply"], code=7
    )
    assert tree_state(repo) == before


def test_report_has_params_metric_deltas_and_gate(repo: Path, capsys):
    before = metrics(repo)
    set_params(repo, **{"train.l2": 0.5})
    dvc(repo, "repro")
    assert cli.main(["report", "--format", "json", "--plots-dir", str(repo / "plots")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["params"] == [{"key": "train.l2", "old": 0.001, "new": 0.5}]
    after = metrics(repo)
    assert {m["name"] for m in data["metrics"]} >= set(after)  # drift counters come too
    for m in (m for m in data["metrics"] if m["name"] in after):
        assert m["old"] == before[m["name"]] and m["new"] == after[m["name"]]
        assert m["delta"] == pytest.approx(after[m["name"]] - before[m["name"]])
    assert data["gate"]["metric"] == "f1" and data["gate"]["passed"] is False
    assert (repo / data["plots"]).is_file()
    assert cli.main(["report", "--no-plots"]) == 0
    assert "| train.l2 | 0.001 | 0.5 |" in capsys.readouterr().out
    assert "--against 'nope' is not a revision" in cli_error(
        capsys, ["report", "--against", "nope"], code=2
    )


def branch_with(repo: Path, name: str, **changes) -> None:
    git(repo, "checkout", "-q", "-b", name, "main")
    set_params(repo, **changes)
    dvc(repo, "repro")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"{name}: {changes}")


def test_merge_regenerates_conflicting_outputs(repo: Path, capsys):
    branch_with(repo, "more-l2", **{"train.l2": 0.01})
    branch_with(repo, "unscaled", **{"features.scale": False})
    assert cli.main(["merge", "more-l2"]) == 0
    out = capsys.readouterr().out
    assert "regenerated (were in conflict): " in out and "dvc.lock" in out
    assert "reproduced (run, or restored from DVC's run cache): " in out and "train" in out
    subject, blank, *_ = git(repo, "log", "-1", "--format=%B").stdout.splitlines()
    assert subject == "Merge more-l2" and blank == ""  # issue 13, item 22
    assert git(repo, "status", "--porcelain").stdout == ""
    params = (repo / "params.yaml").read_text()
    assert "l2: 0.01" in params and "scale: false" in params
    assert "up to date" in dvc(repo, "status").stdout
    lock = (repo / "dvc.lock").read_text()
    # the merge commit's lock is what re-running the stages the merge touched gives (prepare's
    # data and split are the same on both sides)
    dvc(repo, "repro", "-f", "--downstream", "train")
    assert (repo / "dvc.lock").read_text() == lock
    assert len(git(repo, "log", "-1", "--format=%P").stdout.split()) == 2


def test_merge_of_a_plain_descendant_fast_forwards(repo: Path, capsys):
    """Issue 13, item 22: no merge commit where git would fast-forward."""
    branch_with(repo, "ahead", **{"train.l2": 0.02})
    target = git(repo, "rev-parse", "ahead").stdout.strip()
    git(repo, "checkout", "-q", "main")
    dvc(repo, "checkout")
    assert cli.main(["merge", "ahead"]) == 0
    assert git(repo, "rev-parse", "HEAD").stdout.strip() == target
    assert git(repo, "status", "--porcelain").stdout == ""
    assert "up to date" in dvc(repo, "status").stdout
    assert "l2: 0.02" in (repo / "params.yaml").read_text()
    # Issue 14: nothing left to merge is read from the commit graph, not from git's English
    capsys.readouterr()
    for merged in ("ahead", "main", "HEAD~1"):
        assert cli.main(["merge", merged]) == 0
        assert capsys.readouterr().out.strip() == f"already up to date with {merged}"
    assert git(repo, "rev-parse", "HEAD").stdout.strip() == target
    assert git(repo, "status", "--porcelain").stdout == ""


def test_conflicting_params_stop_in_merging_state(repo: Path, capsys):
    branch_with(repo, "a", **{"train.l2": 0.01})
    branch_with(repo, "b", **{"train.l2": 0.5})
    err = cli_error(capsys, ["merge", "a"], code=7)
    assert "code, params or data conflict in params.yaml" in err and "git merge --abort" in err
    assert (repo / ".git/MERGE_HEAD").exists()
    git(repo, "merge", "--abort")
    assert git(repo, "status", "--porcelain").stdout == ""
    assert "l2: 0.5" in (repo / "params.yaml").read_text()


def test_merge_refusals_change_nothing(repo: Path, capsys):
    before = tree_state(repo)
    assert "'nope' is not a branch" in cli_error(capsys, ["merge", "nope"], code=2)
    (repo / "README.md").write_text("edited")
    assert "uncommitted changes in README.md" in cli_error(capsys, ["merge", "main"], code=7)
    (repo / "README.md").write_bytes(before["README.md"])
    assert tree_state(repo) == before
