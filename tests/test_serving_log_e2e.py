"""Closing the loop with a real server: every answered record logged once to Parquet with a
signed request id, ground truth taken back, the log monitored as a batch would be and
exported as the next batch; SIGTERM publishes, SIGKILL leaves only whole files, two workers
lose and duplicate nothing, an unwritable log directory stops the log and not the answers."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pandas as pd
import pyarrow.parquet as pq
import pytest

from modelops import api, cli, predlog
from tests.helpers import BIN, copy_repo, free_port, server, set_params

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def repo(base: Path, tmp_path_factory) -> Path:
    repo = copy_repo(base, tmp_path_factory.mktemp("log") / "repo")
    api.promote("model@v0.0.1", stage="prod", root=repo)
    set_params(repo, **{"serving.log.dir": "data/logs", "serving.poll_seconds": 0})
    return repo


@pytest.fixture(scope="module")
def labelled(repo: Path) -> pd.DataFrame:
    return pd.read_feather(repo / "data/prepared/test.arrow").head(60)


def fresh(repo: Path, tmp_path: Path) -> Path:
    """A copy of the repository without the log the other tests wrote."""
    import shutil

    copy = copy_repo(repo, tmp_path / "repo")
    shutil.rmtree(copy / "data/logs", ignore_errors=True)
    return copy


def records(frame: pd.DataFrame) -> list[dict]:
    return frame.drop(columns=["diagnosis"]).to_dict("records")


def logged(directory: Path) -> pd.DataFrame:
    files = predlog.files(directory)
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


def test_serve_log_feedback_monitor_and_export(repo, labelled, tmp_path, monkeypatch, capsys):
    logs = repo / "data/logs"
    with server(repo) as url:
        ids = []
        for part in (labelled[:20], labelled[20:40], labelled[40:]):
            answer = httpx.post(f"{url}/v1/predict", json=records(part)).json()
            assert len(answer["request_ids"]) == len(part)
            assert {predlog.RequestIds.of(logs).version_of(r) for r in answer["request_ids"]} == {
                "v0.0.1"
            }
            ids += answer["request_ids"]
        truth = labelled["diagnosis"].astype(str).tolist()
        first = [{"request_id": r, "label": y} for r, y in zip(ids[:30], truth[:30], strict=True)]
        stored = httpx.post(f"{url}/v1/feedback", json=first)
        assert stored.status_code == 200 and stored.json() == {"stored": 30}
        again = httpx.post(f"{url}/v1/feedback", json=[{"request_id": ids[0], "label": truth[1]}])
        assert again.status_code == 409 and again.json()["record"] == 0
        assert httpx.get(f"{url}/v1/model").json()["log"]["dropped"] == 0
    # SIGTERM published the open file: every answered record, once, in the order answered
    table = logged(logs)
    assert table["request_id"].tolist() == ids
    assert predlog.Feedback(logs).labels() == dict(zip(ids[:30], truth[:30], strict=True))
    sent = labelled.drop(columns=["diagnosis"]).reset_index(drop=True)
    for col in sent.columns:
        pd.testing.assert_series_equal(
            table[f"input.{col}"], sent[col], check_names=False, check_dtype=False
        )

    # the log monitored says what the same rows as a batch file say
    monkeypatch.chdir(repo)
    batch = sent.assign(diagnosis=truth[:30] + [None] * 30)
    batch.to_csv(tmp_path / "same.csv", index=False)
    from_logs = api.monitor(stage="prod", from_logs=True)
    as_batch = api.monitor(stage="prod", batch=tmp_path / "same.csv")
    for key in ("rows", "verdict", "features", "prediction", "performance", "recommendation"):
        assert from_logs[key] == as_batch[key], key
    assert from_logs["performance"]["labelled_rows"] == 30

    # and the log is the next batch: the labelled records, the labels in the target column
    out = repo / "data/incoming/from-logs.csv"
    argv = ["logs", "export", "--stage", "prod", "--labelled-only", "-o", str(out)]
    assert cli.main(argv) == 0
    assert (
        f"wrote 30 logged record(s), 30 with feedback labels, to {out}" in capsys.readouterr().out
    )
    exported = pd.read_csv(out)
    assert exported["diagnosis"].tolist() == truth[:30]
    everything = tmp_path / "all.csv"  # no --stage: the version that answered last
    assert cli.main(["logs", "export", "-o", str(everything)]) == 0
    assert "wrote 60 logged record(s), 30 with feedback labels" in capsys.readouterr().out
    assert len(pd.read_csv(everything)) == 60
    assert cli.main(["monitor", "--stage", "prod", "--batch", str(out)]) in (0, 1)
    capsys.readouterr()
    newest = logged(logs)["time"].max().timestamp()
    time.sleep(max(0.0, newest + 1.05 - time.time()))  # the last record is over a second old
    assert cli.main(["monitor", "--stage", "prod", "--from-logs", "--since", "1s"]) == 4
    assert "no logged records" in capsys.readouterr().err


@contextlib.contextmanager
def workers(repo: Path, n: int, preexec_fn=None, stderr=subprocess.DEVNULL):
    """``modelops serve --workers n`` in its own process group (SIGKILL reaches every worker);
    ``preexec_fn`` runs in the server's process before it starts (limits)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MODELOPS_TOKEN"}
    argv = ["serve", "--stage", "prod", "--port", str(port), "--workers", str(n)]
    proc = subprocess.Popen(
        [str(BIN / "modelops"), *argv],
        cwd=repo,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        start_new_session=True,
        preexec_fn=preexec_fn,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                break
        assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
        time.sleep(0.2)
    try:
        yield url, proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)


def test_two_workers_log_every_record_once_and_take_each_others_ids(repo, labelled, tmp_path):
    repo = fresh(repo, tmp_path)
    set_params(repo, **{"serving.log.rotate_mb": 0.01})  # several files per worker
    body = records(labelled[:5])
    close = {"Connection": "close"}  # a new connection each: either worker may accept it
    with workers(repo, 2) as (url, _):
        # /ready answers once one worker is up; wait until both answer before the traffic
        deadline, up = time.monotonic() + 60, set()
        while len(up) < 2:
            assert time.monotonic() < deadline, f"only worker(s) {up} started"
            up.add(httpx.get(f"{url}/v1/model", headers=close).json()["log"]["pid"])
        answers = []
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            # four rounds a second apart: a worker's writer gathers a burst for 0.25 s into one
            # batch, and a file rotates only between batches, so one burst of all 120 requests
            # could leave each worker a single file (CI saw exactly that)
            for _ in range(4):
                answers += pool.map(
                    lambda _: httpx.post(f"{url}/v1/predict", json=body, headers=close),
                    range(30),
                )
                time.sleep(1.0)
        ids = [r for a in answers for r in a.json()["request_ids"]]
        taken: dict[int, int] = {}  # worker pid -> records it answered and queued
        for _ in range(100):
            log = httpx.get(f"{url}/v1/model", headers=close).json()["log"]
            taken[log["pid"]] = log["taken"]
            if len(taken) == 2:
                break
        assert len(taken) == 2 and all(taken.values()), taken  # both workers answered
        labels = [{"request_id": r, "label": "benign"} for r in ids]
        for i in range(0, len(labels), 100):  # whichever worker answers, it knows the ids
            stored = httpx.post(f"{url}/v1/feedback", json=labels[i : i + 100], headers=close)
            assert stored.status_code == 200
    table = logged(repo / "data/logs")
    assert len(ids) == 600 == len(set(ids))
    assert sorted(table["request_id"]) == sorted(ids)  # none lost, none twice
    pids = {int(f.name.split("-")[1]) for f in predlog.files(repo / "data/logs")}
    assert pids == set(taken) and len(predlog.files(repo / "data/logs")) > 2
    assert len(predlog.Feedback(repo / "data/logs").labels()) == 600


def test_sigkill_mid_traffic_leaves_only_whole_files(repo, labelled, tmp_path):
    repo = fresh(repo, tmp_path)
    set_params(repo, **{"serving.log.rotate_mb": 0.005})
    body = records(labelled[:10])
    answered = 0
    with workers(repo, 1) as (url, proc), httpx.Client() as client:
        # until a file is published (a batch is gathered for 0.25 s, and a file is published
        # when the next batch finds it full), then half a second more: a file is open
        deadline, more = time.monotonic() + 60, None
        while more is None or time.monotonic() < more:
            answered += len(client.post(f"{url}/v1/predict", json=body).json()["request_ids"])
            if more is None and predlog.files(repo / "data/logs"):
                more = time.monotonic() + 0.5
            assert time.monotonic() < deadline, "no file was published within 60 s of traffic"
        os.killpg(proc.pid, signal.SIGKILL)
    published = predlog.files(repo / "data/logs")
    assert published, "no file was published before the kill"
    rows = sum(pq.read_table(f).num_rows for f in published)  # every file reads whole
    assert 0 < rows <= answered
    assert all(pq.ParquetFile(f).metadata.num_rows % 10 == 0 for f in published)


def test_an_unwritable_log_directory_stops_the_log_not_the_server(repo, labelled, tmp_path):
    repo = fresh(repo, tmp_path)
    (repo / "data/logs").write_text("a file where the log directory should be")
    with server(repo) as url:
        answer = httpx.post(f"{url}/v1/predict", json=records(labelled[:3]))
        assert answer.status_code == 200 and "request_ids" not in answer.json()
        info = httpx.get(f"{url}/v1/model").json()["log"]
        assert info["error"].startswith("prediction log not started: ")
        refused = httpx.post(f"{url}/v1/feedback", json=[{"request_id": "x", "label": "benign"}])
        assert refused.status_code == 503 and refused.json()["error"] == "log_unavailable"
        assert "prediction log not started" in refused.json()["message"]


def test_feedback_refusals_store_nothing(repo, labelled):
    with server(repo) as url:
        ids = httpx.post(f"{url}/v1/predict", json=records(labelled[:2])).json()["request_ids"]
        before = predlog.Feedback(repo / "data/logs").labels()
        cases = [
            (b"{not json", 400, "not_json"),
            (
                json.dumps(
                    [
                        {"request_id": ids[0], "label": "benign"},
                        {"request_id": "v0.0.1~a~b", "label": "benign"},
                    ]
                ),
                422,
                "unknown_request_id",
            ),
            (
                json.dumps(
                    [
                        {"request_id": ids[0], "label": "benign"},
                        {"request_id": ids[1], "label": "cancer"},
                    ]
                ),
                422,
                "unknown_label",
            ),
            (
                json.dumps([{"request_id": ids[0], "label": "benign"}] * 2),
                409,
                "duplicate_feedback",
            ),
            (
                json.dumps([{"request_id": ids[0], "label": "benign"}] * 1001),
                413,
                "too_many_records",
            ),
        ]
        for body, status, error in cases:
            refused = httpx.post(f"{url}/v1/feedback", content=body)
            assert (refused.status_code, refused.json()["error"]) == (status, error), body[:80]
        assert predlog.Feedback(repo / "data/logs").labels() == before
        token = {"MODELOPS_TOKEN": "s3cret"}
    with server(repo, token=token["MODELOPS_TOKEN"]) as url:
        denied = httpx.post(f"{url}/v1/feedback", json=[{"request_id": ids[0], "label": "benign"}])
        assert denied.status_code == 401


def test_a_disk_that_fills_up_stops_the_log_not_the_answers(repo, labelled, tmp_path):
    """The log's file may not grow past 300 kB (RLIMIT_FSIZE: the kernel refuses the write
    with EFBIG, as a full disk refuses it with ENOSPC): the server keeps answering, the log
    stops with its reason in /v1/model, and the half-written file is not left behind."""
    import resource

    repo = fresh(repo, tmp_path)
    set_params(repo, **{"serving.log.rotate_mb": 100})

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))

    body = records(labelled)  # 60 records a request
    log = (tmp_path / "server.log").open("w")
    with workers(repo, 1, small_files, log) as (url, _), httpx.Client() as client:
        deadline = time.monotonic() + 60  # the writer's first write comes after its gathering
        while True:
            assert client.post(f"{url}/v1/predict", json=body).status_code == 200
            info = client.get(f"{url}/v1/model").json()["log"]
            if info["error"] or time.monotonic() > deadline:
                break
        assert info["error"] and info["error"].startswith("prediction log stopped: OSError")
        after = client.post(f"{url}/v1/predict", json=body)
        assert after.status_code == 200 and len(after.json()["request_ids"]) == 60
        final = client.get(f"{url}/v1/model").json()["log"]
        assert final["dropped"] >= 60 and final["written"] == 0
    log.close()
    err = (tmp_path / "server.log").read_text()
    assert "prediction log stopped" in err and "answering goes on without it" in err
    assert not list((repo / "data/logs").glob(".*.tmp"))  # the torn file was removed


def test_an_exclude_that_names_no_input_refuses_to_start(repo, tmp_path, monkeypatch, capsys):
    """A misspelt serving.log.exclude would log the very column it meant to keep out."""
    from tests.helpers import cli_error

    repo = fresh(repo, tmp_path)
    set_params(repo, **{"serving.log.exclude": ["Mean Radius"]})
    monkeypatch.chdir(repo)
    err = cli_error(capsys, ["serve", "--stage", "prod", "--port", str(free_port())], code=2)
    assert err.startswith(
        "error: serving.log.exclude: 'Mean Radius' is not an input of model@v0.0.1"
    )
    assert not (repo / "data/logs").exists()
