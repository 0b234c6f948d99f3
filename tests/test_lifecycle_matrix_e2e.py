"""Every model kind on every task it supports, through the whole life of a model.

One repository holds a messy CSV and an incoming batch per task (binary and multiclass with
string labels, regression), and a git worktree per task sharing its tags and DVC cache. Each
case points its task's params.yaml at its model, runs `dvc repro` (prepare, train, evaluate,
and monitor over the incoming batch) and commits; then `modelops register`, `promote`,
`predict` on a batch, `monitor` on the same batch, and one request to the one server, which
follows prod from version to version (and task to task) on `/v1/reload`. prepare runs once
per task. The stage processes are most of the cost (each imports scikit-learn), so a worker
thread per worktree runs its next case's `dvc repro` while the other tasks' cases are
checked: the cases come in rounds, one per task.

The numbers are checked against other paths, not against themselves: the served answer and
the loaded bundle's against `modelops predict`'s, monitor's batch metrics against
scikit-learn's on predict's output, evaluate's metrics against ranges the data allows, and the
registered bundle against the workspace's and its own re-saved bytes.
"""

from __future__ import annotations

import io
import json
import queue
import threading
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from modelops import api, cli, monitoring
from modelops.bundle import Model
from modelops.models.sklearn_estimators import ESTIMATORS
from tests.helpers import (
    LABELS,
    TARGET,
    TASKS,
    customers,
    dvc,
    git,
    kinds,
    make_project,
    server,
    set_params,
    task_params,
)

pytestmark = pytest.mark.e2e

UNLABELLED_ROW = 7  # in the batch: no target; in predict's input: a stray text value


def interleaved(cases: list[tuple[str, str, dict]]) -> list[tuple[str, str, dict]]:
    """The cases in rounds, one per task each, so a task's next `dvc repro` runs in the
    background while the other tasks' cases are checked."""
    per_task = {t: [c for c in cases if c[1] == t] for t in TASKS}
    rounds = max(len(v) for v in per_task.values())
    return [per_task[t][i] for i in range(rounds) for t in TASKS if i < len(per_task[t])]


CASES = interleaved(kinds())


class Lab:
    """One task's worktree and a worker thread that runs its cases' `dvc repro` one at a time,
    each after the previous case's checks are done."""

    def __init__(self, task: str, repo: Path, cases: list[tuple[str, str, dict]]) -> None:
        self.task, self.repo = task, repo
        self.batch = repo / f"data/incoming/{task}/batch.csv"
        self.input = repo.parent / f"new-{task}.csv"
        self._todo: queue.Queue = queue.Queue()
        self._done: dict[str, queue.Queue] = {}
        for case in cases:
            self._todo.put(case)
            self._done[case[0] + case[2].get("solver", "")] = queue.Queue()
        self._next = threading.Event()
        self._next.set()
        self._thread = threading.Thread(target=self._work, name=f"repro-{task}", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            self._next.wait()
            self._next.clear()
            try:
                model, task, train = self._todo.get_nowait()
            except queue.Empty:
                return
            try:
                set_params(self.repo, **task_params(task, model, train))
                dvc(self.repo, "repro")  # prepare (once per task), train, evaluate, monitor
                git(self.repo, "add", "-A")
                git(self.repo, "commit", "-q", "-m", f"{model} on {task}")
                result: Exception | None = None
            except Exception as exc:  # reported by the case's test
                result = exc
            self._done[model + train.get("solver", "")].put(result)

    def reproduced(self, model: str, train: dict) -> None:
        """Wait for this case's `dvc repro` and commit; raise what it raised."""
        result = self._done[model + train.get("solver", "")].get(timeout=600)
        if result is not None:
            raise result

    def release(self) -> None:
        """The case is checked: the worker may change the workspace for the next one."""
        self._next.set()

    def close(self) -> None:
        self._todo = queue.Queue()
        self._next.set()
        self._thread.join(600)


class Matrix:
    """The repository (its main worktree serves prod) and a worktree per task: one registry
    of tags, one DVC cache, one server that follows prod from task to task."""

    def __init__(self, main: Path) -> None:
        self.main = main
        self.labs: dict[str, Lab] = {}
        self.url: str | None = None
        self._server = None

    def serving(self) -> str:
        if self.url is None:
            self._server = server(self.main)  # `modelops serve --stage prod` on a free port
            self.url = self._server.__enter__()
        return self.url

    def close(self) -> None:
        for lab in self.labs.values():
            lab.close()
        if self._server is not None:
            self._server.__exit__(None, None, None)


@pytest.fixture(scope="module")
def matrix(request, tmp_path_factory):
    """Three messy CSVs (each with a stray word the params declare as missing) and an incoming
    batch per task, committed; then a worktree per task whose worker reproduces the cases
    selected to run (`-k` may pick a few), in their order."""
    selected = [
        (item.callspec.params["model"], item.callspec.params["task"], item.callspec.params["train"])
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_model_kind_through_the_whole_life"
    ]
    root = tmp_path_factory.mktemp("matrix")
    main = make_project(root / "main")
    for t, task in enumerate(TASKS):
        raw = customers(task, 300, seed=t)
        raw.loc[11, "income"] = "unknown"  # declared in data.na_values below
        raw.to_csv(main / f"data/raw/{task}.csv", index=False)
        batch = customers(task, 120, seed=10 + t)
        batch.loc[UNLABELLED_ROW, TARGET[task]] = None
        (main / f"data/incoming/{task}").mkdir()
        batch.to_csv(main / f"data/incoming/{task}/batch.csv", index=False)
        batch["notes"] = "called twice"  # a column no model uses
        batch.loc[UNLABELLED_ROW, "income"] = "about 40"  # not a number, not declared missing
        batch.drop(columns=[TARGET[task]]).to_csv(root / f"new-{task}.csv", index=False)
    tracked = [f"data/raw/{t}.csv" for t in TASKS] + [f"data/incoming/{t}/batch.csv" for t in TASKS]
    dvc(main, "add", *tracked)
    set_params(
        main,
        **{
            **task_params("binary", "logistic_regression", {}),  # each worktree sets its own
            "data.source": "csv",
            "data.na_values": ["", "NA", "?", "unknown"],
            "train.random_forest.n_estimators": 10,
            "train.hist_gradient_boosting.max_iter": 20,
            "registry.gate.tolerance": 1.0,  # every case goes to prod; the gate still runs
            "serving.poll_seconds": 0,  # the server swaps on /v1/reload only
        },
    )
    git(main, "add", "-A")
    git(main, "commit", "-q", "-m", "three messy CSVs and their incoming batches")
    git(main, "config", "gc.auto", "0")  # no auto-gc packing refs under a concurrent commit
    m = Matrix(main)
    try:
        for task in sorted({case[1] for case in selected}, key=TASKS.index):
            tree = root / task
            git(main, "worktree", "add", "-q", "-b", task, str(tree), "HEAD")
            dvc(tree, "cache", "dir", "--local", str(main / ".dvc/cache"))
            dvc(tree, "checkout", *(f"{path}.dvc" for path in tracked))
            m.labs[task] = Lab(task, tree, [c for c in selected if c[1] == task])
        yield m
    finally:
        m.close()


def ok(capsys, argv: list[str]) -> str:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert code == 0, f"modelops {' '.join(argv)} exited {code}: {err}"
    return out


def check_metrics(task: str, metrics: dict) -> None:
    """What evaluate reports on the test split, in the range this data allows."""
    if task == "regression":
        assert set(metrics) == {"mae", "r2", "rmse"}
        assert metrics["r2"] > 0.6 and 0 < metrics["mae"] <= metrics["rmse"] < 30
    else:
        assert {"accuracy", "f1", "log_loss", "precision", "recall", "roc_auc"} <= set(metrics)
        assert metrics["accuracy"] > (0.7 if task == "binary" else 0.55)
        assert metrics["roc_auc"] > 0.75 and 0 < metrics["log_loss"] < 5


def check_round_trip(repo: Path, model: str, version: str, batch: pd.DataFrame) -> Model:
    """The registered bundle (fetched and md5-checked as serve does) loads, predicts what it
    predicted, and saves back to the same bytes (scikit-learn: the same arrays)."""
    from modelops import versions

    ws = api.workspace(repo)
    info = api.reg.need_version(api.reg.state(ws), "model", version)
    data, _ = versions.fetch(ws, "model", info)
    assert data == (repo / "models/model.npz").read_bytes()
    loaded = Model.from_bytes(data)
    again = Model.from_bytes(loaded.to_bytes())
    if model in ESTIMATORS:
        blobs = [np.load(io.BytesIO(b))["model_skops"].tobytes() for b in (data, again.to_bytes())]
        members = [zipfile.ZipFile(io.BytesIO(b)) for b in blobs]
        names = [n for n in members[0].namelist() if n.endswith(".npy")]
        assert [members[0].read(n) for n in names] == [members[1].read(n) for n in names]
    else:
        assert loaded.to_bytes() == data
    np.testing.assert_array_equal(again.predict(batch), loaded.predict(batch))
    return loaded


@pytest.mark.parametrize(
    ("model", "task", "train"),
    CASES,
    ids=[f"{m}-{train.get('solver', '')}-{t}".replace("--", "-") for m, t, train in CASES],
)
def test_model_kind_through_the_whole_life(matrix, model, task, train, monkeypatch, capsys):
    lab = matrix.labs[task]
    try:
        lab.reproduced(model, train)
        check_case(matrix, lab, model, task, monkeypatch, capsys)
    finally:
        lab.release()


def check_case(matrix: Matrix, lab: Lab, model: str, task: str, monkeypatch, capsys) -> None:
    repo = lab.repo
    monkeypatch.chdir(repo)
    target = TARGET[task]
    assert git(repo, "status", "--porcelain").stdout == ""
    metrics = json.loads((repo / "metrics/metrics.json").read_text())
    check_metrics(task, metrics)
    card = json.loads((repo / "metrics/card.json").read_text())
    assert card["features"]["numeric"] == ["age", "income"]
    assert card["features"]["categorical"] == {
        "plan": ["basic", "plus", "pro"],
        "region": ["east", "north", "south", "west"],
    }
    assert "customer_id" in card["features"]["dropped"]
    if task != "regression":
        assert card["data"]["classes"] == LABELS[task]
    drift = json.loads((repo / "metrics/drift.json").read_text())
    assert drift["batches"] == 1 and drift["files"]["batch.csv"]["rows"] == 120

    # register and promote (the gate compares with whatever held prod before)
    registered = ok(capsys, ["register"])
    version = registered.split("@")[1].split()[0]
    assert ok(capsys, ["promote", f"model@{version}", "--stage", "prod"]).startswith("promoted")

    batch = pd.read_csv(lab.batch, na_values=["NA", "?"])
    loaded = check_round_trip(repo, model, version, batch)

    # batch predict: the stray text row is reported and skipped, unused columns ignored
    preds_path = repo.parent / f"preds-{version}.csv"
    said = ok(
        capsys,
        [
            "predict",
            "--version",
            version,
            "--input",
            str(lab.input),
            "--output",
            str(preds_path),
            "--skip-invalid",
        ],
    )
    assert "predicted 119 of 120 rows" in said and "'income' = 'about 40'" in said
    assert "notes" in said
    preds = pd.read_csv(preds_path)
    rows = (preds["line"] - 2).to_numpy()  # line 1 is the header
    assert UNLABELLED_ROW not in rows and len(rows) == 119
    direct = loaded.predict(batch.iloc[rows])  # the DataFrame path, not the chunked CSV one
    if task == "regression":
        np.testing.assert_allclose(direct, preds["prediction"], rtol=1e-12)
    else:
        assert direct.tolist() == preds["prediction"].tolist()

    # monitor the labelled batch: its metrics equal scikit-learn's on predict's output
    code = cli.main(
        ["monitor", "--version", version, "--batch", str(lab.batch), "--format", "json"]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == (1 if report["verdict"] == "alert" else 0)
    for fmt in ("text", "md"):  # the other renderings of the same report, for every task
        assert report["recommendation"] in monitoring.render(report, fmt)
    perf = report["performance"]
    assert perf["labelled_rows"] == 119 and perf["metric"] == (
        "r2" if task == "regression" else "f1"
    )
    truth = batch[target].to_numpy()[rows]
    if task == "regression":
        expect = {
            "r2": skm.r2_score(truth, preds["prediction"]),
            "mae": skm.mean_absolute_error(truth, preds["prediction"]),
        }
    else:
        average = "binary" if task == "binary" else "macro"
        kw = {"pos_label": "churned"} if task == "binary" else {}
        expect = {
            "accuracy": skm.accuracy_score(truth, preds["prediction"]),
            "f1": skm.f1_score(truth, preds["prediction"], average=average, **kw),
        }
        proba = preds[[f"proba_{c}" for c in LABELS[task]]].to_numpy()
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    for name, value in expect.items():
        assert perf["metrics"][name] == pytest.approx(value, rel=1e-9, abs=1e-12), name

    # the server, following prod: it swaps to this version and agrees with predict
    url = matrix.serving()
    swap = httpx.post(f"{url}/v1/reload", timeout=60).json()
    assert swap["version"] == version and swap["error"] is None, swap
    info = httpx.get(f"{url}/v1/model").json()
    assert info["task"] == ("regression" if task == "regression" else "classification")
    sent = batch.drop(columns=[target]).iloc[rows[:25]]
    records = [
        {k: (None if pd.isna(v) else v) for k, v in r.items()} for r in sent.to_dict("records")
    ]
    resp = httpx.post(f"{url}/v1/predict", json=records, timeout=60)
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["version"] == version
    expected = preds.iloc[:25]
    if task == "regression":
        np.testing.assert_allclose(answer["predictions"], expected["prediction"], rtol=1e-12)
    else:
        assert answer["predictions"] == expected["prediction"].tolist()
        served = np.array([[p[c] for c in LABELS[task]] for p in answer["probabilities"]])
        np.testing.assert_allclose(
            served, expected[[f"proba_{c}" for c in LABELS[task]]].to_numpy(), atol=1e-11
        )
