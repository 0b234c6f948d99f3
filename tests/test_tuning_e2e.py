"""modelops tune on the bundled data through real DVC experiments: refusals before any trial,
a grid whose diverging trial is recorded, the best as a branch, Ctrl-C and resuming, and
trials run two at a time through DVC's queue."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from dvc import api as dvc_api

from modelops import api, cli
from modelops.params import yaml_loads
from tests.helpers import BIN, cli_error, copy_repo, dvc, git, set_params, tree_state

pytestmark = pytest.mark.e2e


@pytest.fixture
def repo(reproduced: Path, tmp_path: Path, monkeypatch) -> Path:
    repo = copy_repo(reproduced, tmp_path / "repo")
    monkeypatch.chdir(repo)
    return repo


def experiments(repo: Path) -> dict[str, dict]:
    rows = dvc_api.exp_show(repo=str(repo))
    return {r["Experiment"]: r for r in rows if r.get("Experiment")}


L2 = ["--param", "train.l2=log:1e-4..1"]


REFUSALS = [
    (["--param", "train.l2=1..0"], 2, "the low end must be below the high end"),
    (["--param", "train.ll2=0..1"], 3, "params.yaml has no such key; did you mean train.l2?"),
    (["--param", "train.model=ridge,logistic_regression"], 3, "ridge is refused"),
    (["--param", "train.l2=-1..1"], 3, "-1.0 is refused (train.l2"),
    (["--sampler", "grid", *L2], 2, "--sampler grid takes choice lists"),
    (["--sampler", "bayes", *L2], 2, "--sampler 'bayes': one of tpe, random, grid"),
    (["--trials", "0", *L2], 2, "--trials and -j take a whole number of at least 1"),
    (["--study", "../up", *L2], 2, "--study '../up': use letters"),
    (["--study", "a..b", *L2], 2, "--study 'a..b': use letters"),
    (["--study", "", *L2], 2, "--study '': use letters"),
    (["--branch", "a..b", *L2], 2, "--branch 'a..b' is not a valid branch name"),
    (["--storage", "data", *L2], 2, "--storage data: not a regular file"),
    (["--param", "registry.gate.tolerance=0..0.1"], 3, "no stage reads the registry"),
    (["--branch", "main", *L2], 2, "--branch 'main' already exists"),
    ([], 2, "give at least one --param"),
    (["--metric", "rmse", *L2], 2, "--metric 'rmse': HEAD's metrics are accuracy, f1, log_loss"),
]


def test_a_bad_search_is_refused_before_any_trial(repo: Path, capsys):
    """Each refusal on one copy of the project (a copy each cost seconds): every one is one
    line with its exit code, and none leaves anything behind."""
    before = tree_state(repo)
    for argv, code, says in REFUSALS:
        err = cli_error(capsys, ["tune", "--metric", "f1", *argv], code)
        assert says in err, (argv, err)
        assert tree_state(repo) == before and not (repo / ".modelops").exists(), argv
    assert not experiments(repo)


def test_a_grid_records_a_diverging_trial_and_branches_the_best(repo: Path, capsys):
    """Gradient descent on a regression task with lr 10^6 diverges: that trial fails with the
    train stage's own line, the study goes on, and the best becomes a branch."""
    set_params(
        repo,
        **{"data.source": "diabetes", "train.model": "linear_regression", "train.solver": "gd"},
    )
    dvc(repo, "repro", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "regression by gradient descent")
    argv = ["tune", "--metric", "r2", "--sampler", "grid", "--study", "g", "--trials", "5"]
    argv += ["--param", "train.lr=0.1,1000000.0", "--branch", "best-r2"]
    assert cli.main(argv) == 0
    out, err = capsys.readouterr()
    assert "trial 1 (2/2)  failed: error: " in err and "gradient descent diverged" in err
    assert "note: the grid has 2 distinct configurations; ran those" in out
    assert "created branch best-r2 from g-000" in out
    found = experiments(repo)
    assert "g-000" in found and "g-001" not in found  # a failed --temp run leaves no ref
    assert found["g-000"]["train.lr"] == 0.1
    branch = yaml_loads(git(repo, "show", "best-r2:params.yaml").stdout)
    assert branch["train"]["lr"] == 0.1
    # The trial is an ordinary DVC experiment: exp best ranks it with what evaluate wrote.
    board = api.exp_best("r2")
    assert board.best.name == "g-000" and board.best.value == found["g-000"]["r2"]


def start_tune(repo: Path, argv: list[str]) -> subprocess.Popen:
    """`modelops tune` in a process group of its own, as a terminal runs it: SIGINT to the
    group is Ctrl-C."""
    return subprocess.Popen(
        [str(BIN / "modelops"), *argv],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def test_ctrl_c_stops_a_study_that_the_same_command_resumes(repo: Path, capsys):
    argv = ["tune", "--metric", "f1", "--study", "r", "--trials", "1", "--seed", "0", *L2]
    proc = start_tune(repo, argv)
    log = repo / ".modelops/studies/r.logs/r-000.log"
    deadline = time.monotonic() + 120
    while not (log.exists() and "Running stage" in log.read_text(errors="replace")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the terminal's whole group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == (
        f"interrupted: tune stopped with 0 of 1 trials completed; study r is saved in "
        f"{repo / '.modelops/studies/r.journal'}: run the same command with --study r to "
        f"resume"
    )
    assert "r-000" not in experiments(repo)
    standalone = repo / ".dvc/tmp/exps/standalone"
    assert not standalone.exists() or not list(standalone.iterdir())  # DVC's copy went too

    assert cli.main([*argv, "--apply", "--json"]) == 0  # the interrupted trial is not counted
    import json

    report = json.loads(capsys.readouterr().out)
    found = [(t["number"], t["state"], t["error"]) for t in report["trials"]]
    assert found == [(0, "failed", "interrupted"), (1, "complete", None)]
    assert report["resumed"] is True
    rows = experiments(repo)
    assert set(rows) == {"r-001"}
    l2 = report["trials"][1]["params"]["train.l2"]
    assert rows["r-001"]["train.l2"] == l2
    assert yaml_loads((repo / "params.yaml").read_text())["train"]["l2"] == l2  # --apply


def test_two_trials_at_a_time_through_dvc_s_queue(repo: Path, capsys):
    argv = ["tune", "--metric", "f1", "--study", "q", "--trials", "2", "-j", "2", "--json"]
    assert cli.main([*argv, *L2]) == 0
    import json

    report = json.loads(capsys.readouterr().out)
    assert [t["state"] for t in report["trials"]] == ["complete", "complete"]
    rows = experiments(repo)
    assert set(rows) == {"q-000", "q-001"}
    for t in report["trials"]:
        assert rows[t["experiment"]]["f1"] == t["value"]
        assert rows[t["experiment"]]["train.l2"] == t["params"]["train.l2"]
    assert report["best"]["value"] == max(t["value"] for t in report["trials"])
    for name in ("q-000", "q-001"):  # each trial's own DVC output
        assert (
            f"Reproducing experiment '{name}'"
            in (repo / f".modelops/studies/q.logs/{name}.log").read_text()
        )


def test_apply_over_uncommitted_edits_is_refused_before_any_trial(repo: Path, capsys):
    set_params(repo, **{"train.l2": 0.5})
    before = tree_state(repo)
    err = cli_error(capsys, ["tune", "--metric", "f1", "--apply", *L2], 7)
    assert "--apply would overwrite uncommitted changes in params.yaml" in err
    assert tree_state(repo) == before and not experiments(repo)


def test_parallel_trials_refuse_a_queue_that_holds_experiments(repo: Path, capsys):
    dvc(repo, "exp", "run", "--queue", "-S", "train.l2=0.3", "-n", "waiting")
    err = cli_error(capsys, ["tune", "--metric", "f1", "-j", "2", *L2], 2)
    assert "DVC's queue holds 1 experiment(s); tune -j 2 runs the queue" in err
    assert not (repo / ".modelops").exists()


def test_ctrl_c_with_parallel_trials_stops_dvc_s_workers_too(repo: Path):
    """DVC's queue workers run in process groups of their own: Ctrl-C does not reach them, so
    tune kills their tasks (retrying while DVC says one is still starting); nothing goes on
    running, and the study holds each trial as DVC left it."""
    from modelops import tuning

    argv = ["tune", "--metric", "f1", "--study", "k", "--trials", "2", "-j", "2", *L2]
    proc = start_tune(repo, argv)
    deadline = time.monotonic() + 120
    while not list(api.workspace(repo).dvc.experiments.celery_queue.iter_active()):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, err
    assert "tune stopped with" in err and "could not stop" not in err, err
    # DVC lists a task as active until its worker has recorded the kill (CI once saw one
    # listed just after tune returned): a stopped one leaves the list within seconds
    deadline = time.monotonic() + 30
    while list(api.workspace(repo).dvc.experiments.celery_queue.iter_active()):
        assert time.monotonic() < deadline, "a trial DVC runs was left running"
        time.sleep(0.5)
    time.sleep(3)  # a worker left running would have finished its trial by now
    study, _ = tuning.open_study(
        repo / ".modelops/studies/k.journal",
        "k",
        tuning.Settings(
            "f1",
            True,
            "tpe",
            None,
            ["train.l2=log:0.0001..1.0"],
            git(repo, "rev-parse", "HEAD").stdout.strip(),
            "none",
        ),
    )
    refs = git(repo, "for-each-ref", "--format=%(refname:lstrip=-1)", "refs/exps").stdout.split()
    shown = experiments(repo)
    for t in tuning.records(study):
        name = f"k-{t.number:03d}"
        if t.state == "complete":
            assert name in refs and shown[name]["f1"] == t.value
        else:  # killed: no experiment, and not left in DVC's queue as a failure
            assert t.error == "interrupted" and name not in refs and name not in shown
