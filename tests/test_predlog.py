"""The prediction log without a server: signed request ids, the Parquet writer (rotation,
excluded columns, hidden files until complete, a full queue, a directory that goes away),
the feedback store and the rules for labels."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from modelops import predlog
from modelops.inference import Outputs
from modelops.params import LogParams

NAMES = (["age", "income"], ["plan"])
RULES = {
    "v1.0.0": predlog.Rules("classification", ("no", "yes"), "churn"),
    "v2.0.0": predlog.Rules("regression", (), "spend"),
}


def answered(ids: predlog.RequestIds, version: str = "v1.0.0", n: int = 3) -> predlog.Answered:
    rng = np.random.default_rng(len(version) + n)
    numeric = rng.normal(size=(n, 2))
    numeric[0, 1] = np.nan  # a missing income
    plans = np.array(["basic", None, "<b>pro</b>"] * n, dtype=object)[:n]
    p = rng.uniform(size=n)
    outputs = Outputs("classification", ["no", "yes"], np.c_[1 - p, p], None, np.zeros(n, bool), {})
    return predlog.Answered(
        ids.issue(version, n), 1_700_000_000.0, version, NAMES, numeric, [plans], outputs
    )


@pytest.fixture
def ids(tmp_path: Path) -> predlog.RequestIds:
    return predlog.RequestIds.of(tmp_path / "logs")


def test_request_ids_are_signed_and_name_their_version(tmp_path, ids):
    issued = ids.issue("v1.2.3", 50)
    assert len(set(issued)) == 50
    assert all(ids.version_of(rid) == "v1.2.3" for rid in issued)
    again = predlog.RequestIds.of(tmp_path / "logs")  # another worker, or a later server
    assert again.secret == ids.secret and again.version_of(issued[0]) == "v1.2.3"
    assert (tmp_path / "logs" / predlog.SECRET_FILE).stat().st_mode & 0o777 == 0o600
    version, rand, sig = issued[0].split("~")
    forged = [
        f"v9.9.9~{rand}~{sig}",  # another version under the same signature
        f"{version}~{rand}~{'0' * len(sig)}",
        issued[0] + "x",
        "v1.2.3",
        None,
        5,
        "~" * 2,
        "a" * 500,
    ]
    assert [ids.version_of(f) for f in forged] == [None] * len(forged)
    assert ids.version_of("\ud800~a~b") is None  # a lone surrogate: not ours, not a crash
    other = predlog.RequestIds.of(tmp_path / "elsewhere")
    assert other.version_of(issued[0]) is None


def test_the_log_writes_parquet_files_whole_with_each_versions_columns(tmp_path, ids):
    directory = tmp_path / "logs"
    settings = LogParams(dir="logs", exclude=["income"], rotate_seconds=3600)
    log = predlog.PredictionLog(directory, settings).start()
    first, second = answered(ids), answered(ids, n=2)
    other = answered(ids, version="v1.1.0", n=4)
    for item in (first, second, other):
        log.submit(item)
    log.close()
    written = predlog.files(directory)
    assert len(written) == 2  # the version changed: a file each
    assert not list(directory.glob(".*.tmp"))
    table = pq.read_table(written[0])
    assert table.column_names == [
        "request_id",
        "time",
        "version",
        "input.age",  # income is excluded (serving.log.exclude)
        "input.plan",
        "output.prediction",
        "output.proba_no",
        "output.proba_yes",
    ]
    rows = table.to_pylist()
    assert [r["request_id"] for r in rows] == first.ids + second.ids
    assert {r["version"] for r in rows} == {"v1.0.0"}
    assert [r["input.plan"] for r in rows[:3]] == ["basic", None, "<b>pro</b>"]
    np.testing.assert_array_equal(
        [r["input.age"] for r in rows], np.r_[first.numeric[:, 0], second.numeric[:, 0]]
    )
    assert [r["output.proba_yes"] for r in rows[:3]] == first.outputs.proba[:, 1].tolist()
    assert pq.read_table(written[1]).column("version").to_pylist() == ["v1.1.0"] * 4
    assert log.stats.to_dict() == {
        "pid": os.getpid(),
        "taken": 9,
        "written": 9,
        "dropped": 0,
        "files": 2,
        "error": None,
    }


def test_a_file_is_published_by_size_and_by_age(tmp_path, ids):
    by_size = predlog.PredictionLog(tmp_path / "a", LogParams(rotate_mb=1e-6)).start()
    for i in range(3):
        by_size.submit(answered(ids))
        deadline = time.monotonic() + 10
        while len(list((tmp_path / "a").glob("*.parquet*"))) < i + 1:  # taken: its own batch
            assert time.monotonic() < deadline, f"request {i} was not written"
            time.sleep(0.02)
    by_size.close()
    assert len(predlog.files(tmp_path / "a")) == 3  # each write passes the size at once
    burst = predlog.PredictionLog(tmp_path / "c", LogParams()).start()
    for _ in range(50):
        burst.submit(answered(ids))
    burst.close()
    (one,) = predlog.files(tmp_path / "c")
    assert pq.ParquetFile(one).metadata.num_row_groups < 50  # a burst is written together
    by_age = predlog.PredictionLog(tmp_path / "b", LogParams(rotate_seconds=0.2)).start()
    by_age.submit(answered(ids))
    deadline = time.monotonic() + 10
    while by_age.stats.written < 3:  # published without another request or a close
        assert time.monotonic() < deadline, "an old file was not published"
        time.sleep(0.05)
    assert by_age.stats.written == 3 and len(predlog.files(tmp_path / "b")) == 1
    by_age.close()


def test_a_full_queue_drops_and_counts_and_never_blocks(tmp_path, ids):
    log = predlog.PredictionLog(tmp_path / "logs", LogParams(queue=2))  # not started: none taken
    start = time.monotonic()
    for _ in range(5):
        log.submit(answered(ids))
    assert time.monotonic() - start < 1
    assert log.stats.dropped == 3 * 3  # three requests of three records
    log.start()
    log.close()
    assert log.stats.written == 2 * 3


def test_a_directory_that_goes_away_stops_the_log_not_the_answers(tmp_path, ids, caplog):
    directory = tmp_path / "logs"
    log = predlog.PredictionLog(directory, LogParams()).start()
    for path in directory.iterdir():
        path.unlink()
    directory.rmdir()
    directory.write_text("not a directory any more")
    log.submit(answered(ids))
    deadline = time.monotonic() + 10
    while log.stats.error is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert log.stats.error.startswith("prediction log stopped: ")
    log.submit(answered(ids))  # counted, not queued, not raised
    log.close()
    assert log.stats.dropped == 6 and log.stats.written == 0
    assert "answering goes on without it" in caplog.text


def test_feedback_is_all_or_none_and_the_first_label_stands(tmp_path, ids):
    store = predlog.Feedback(tmp_path / "logs")
    a, b, c = ids.issue("v1.0.0", 3)
    store.add([(a, "v1.0.0", "yes")])
    with pytest.raises(predlog.FeedbackError, match=r"record 1: request .* already has feedback"):
        store.add([(b, "v1.0.0", "no"), (a, "v1.0.0", "no")])
    assert store.labels() == {a: "yes"}  # b was not stored either
    store.add([(b, "v1.0.0", "no"), (c, "v1.0.0", "yes")])
    assert store.labels() == {a: "yes", b: "no", c: "yes"}


@pytest.mark.parametrize(
    ("body", "status", "error", "record"),
    [
        ({"request_id": "x"}, 422, "not_a_list", None),
        ([], 422, "not_a_list", None),
        (["x"], 422, "bad_record", 0),
        ([{"request_id": "{ok}", "label": "yes", "extra": 1}], 422, "bad_record", 0),
        ([{"request_id": "v1.0.0~00~00", "label": "yes"}], 422, "unknown_request_id", 0),
        ([{"request_id": "{ok}", "label": "maybe"}], 422, "unknown_label", 0),
        ([{"request_id": "{ok}", "label": True}], 422, "unknown_label", 0),
        (
            [{"request_id": "{ok}", "label": "yes"}, {"request_id": "{ok}", "label": "no"}],
            409,
            "duplicate_feedback",
            1,
        ),
        ([{"request_id": "{v2}", "label": "12.5"}], 422, "not_finite", 0),
        ([{"request_id": "{v2}", "label": float("nan")}], 422, "not_finite", 0),
        ([{"request_id": "{v3}", "label": 1}], 422, "unknown_version", 0),
        ([{"request_id": "{v2}", "label": 10**400}], 422, "not_finite", 0),
        ([{"request_id": "{v2}", "label": 1e308}], 422, "not_finite", 0),
        ([{"request_id": "{ok}", "label": None}], 422, "unknown_label", 0),
    ],
)
def test_feedback_refusals_name_the_record(ids, body, status, error, record):
    fill = {
        "{ok}": ids.issue("v1.0.0", 1)[0],
        "{v2}": ids.issue("v2.0.0", 1)[0],
        "{v3}": ids.issue("v3.0.0", 1)[0],
    }
    if isinstance(body, list):
        body = [
            {k: fill.get(v, v) if k == "request_id" else v for k, v in r.items()}
            if isinstance(r, dict)
            else r
            for r in body
        ]
        if status == 409:
            body[1]["request_id"] = body[0]["request_id"]
    with pytest.raises(predlog.FeedbackError) as caught:
        predlog.check_labels(body, ids, RULES.get)
    assert (caught.value.status, caught.value.error, caught.value.record) == (status, error, record)
    if record is not None:
        assert str(caught.value).startswith(f"record {record}")


def test_labels_are_kept_as_the_model_knows_them(ids):
    a = ids.issue("v1.0.0", 1)[0]
    b = ids.issue("v2.0.0", 1)[0]
    rows = predlog.check_labels(
        [{"request_id": a, "label": "yes"}, {"request_id": b, "label": 12}], ids, RULES.get
    )
    assert rows == [(a, "v1.0.0", "yes"), (b, "v2.0.0", 12)]


def test_a_regressors_answers_are_logged_as_numbers(tmp_path, ids):
    n = 4
    outputs = Outputs(
        "regression", None, None, np.array([1.5, -2.0, 0.0, 1e6]), np.zeros(n, bool), {}
    )
    item = predlog.Answered(
        ids.issue("v2.0.0", n), 1_700_000_000.0, "v2.0.0", (["x"], []), np.ones((n, 1)), [], outputs
    )
    log = predlog.PredictionLog(tmp_path / "logs", LogParams()).start()
    log.submit(item)
    log.close()
    table = pq.read_table(predlog.files(tmp_path / "logs")[0])
    assert table.column_names == ["request_id", "time", "version", "input.x", "output.prediction"]
    assert table.column("output.prediction").to_pylist() == [1.5, -2.0, 0.0, 1e6]
    assert str(table.schema.field("time").type) == "timestamp[us, tz=UTC]"


def test_a_foreign_file_in_the_log_is_one_line_naming_it(tmp_path, ids):
    from modelops.errors import BatchError

    log = predlog.PredictionLog(tmp_path / "logs", LogParams()).start()
    log.submit(answered(ids))
    log.close()
    (tmp_path / "logs" / "zz-notes.parquet").write_text("not parquet")
    paths = predlog.files(tmp_path / "logs")
    with pytest.raises(BatchError, match=r"^log .*zz-notes\.parquet: not a file of the prediction"):
        list(predlog.tables(paths, "v1.0.0", None, ["age", "plan"]))
    with pytest.raises(BatchError, match=r"has no column 'email' \(serving.log.exclude named"):
        list(predlog.tables(paths[:1], "v1.0.0", None, ["age", "email"]))
    assert list(predlog.tables(paths[:1], "v1.0.0", 2e9, ["age", "email"])) == []  # not in time
    (table,) = [t for _, t in predlog.tables(paths[:1], "v1.0.0", None, ["age", "plan"])]
    assert table.num_rows == 3
    assert list(predlog.tables(paths[:1], "v9.0.0", None, ["age"])) == []  # another version's
    assert list(predlog.tables(paths[:1], "v1.0.0", 2e9, ["age"])) == []  # since the future


def test_a_model_with_boolean_classes_takes_json_booleans(ids):
    rid = ids.issue("v1.0.0", 2)
    rules = {"v1.0.0": predlog.Rules("classification", ("False", "True"), "churn")}.get
    rows = predlog.check_labels(
        [{"request_id": rid[0], "label": True}, {"request_id": rid[1], "label": "False"}],
        ids,
        rules,
    )
    assert [r[2] for r in rows] == ["True", "False"]


def test_a_broken_feedback_store_is_one_line_exit_4(tmp_path):
    from modelops.errors import BatchError

    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / predlog.FEEDBACK_FILE).write_text("not a database")
    with pytest.raises(BatchError, match=r"feedback\.sqlite: "):
        predlog.Feedback(tmp_path / "logs").labels()


def test_hidden_files_of_killed_servers_are_removed_at_start(tmp_path, ids):
    directory = tmp_path / "logs"
    directory.mkdir(exist_ok=True)
    dead = directory / ".20240101T000000-999999999-00001.parquet.tmp"  # no such process
    mine = directory / f".20240101T000000-{os.getpid()}-00001.parquet.tmp"
    dead.write_bytes(b"half a file")
    mine.write_bytes(b"being written")
    predlog.PredictionLog(directory, LogParams()).start().close()
    assert not dead.exists() and mine.exists()
