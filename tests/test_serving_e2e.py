"""A real uvicorn server on a loopback port, driven with httpx; and batch predict."""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelops import api, cli
from modelops.bundle import Model
from tests.helpers import cli_error, free_port, git, rss, server, set_params

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def repo(base: Path, tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("serving") / "repo"
    shutil.copytree(base, repo, symlinks=True)
    set_params(repo, **{"serving.poll_seconds": 0.5})
    git(repo, "commit", "-q", "-am", "poll fast")
    api.promote("model@v0.0.1", stage="prod", root=repo)
    return repo


@pytest.fixture(scope="module")
def url(repo: Path):
    with server(repo) as u:
        yield u


@pytest.fixture(scope="module")
def records(repo: Path) -> list[dict]:
    frame = pd.read_feather(repo / "data/prepared/test.arrow").drop(columns=["diagnosis"])
    return frame.head(100).to_dict("records")


def model_at(repo: Path, version: str) -> Model:
    return api.load("model", version=version, root=repo).model


def wait_for_version(url: str, version: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = httpx.get(f"{url}/v1/model").json()
        if info["version"] == version:
            return info
        time.sleep(0.2)
    raise AssertionError(f"server still on {info['version']}, wanted {version}: {info}")


def test_routes(url: str, records: list[dict], repo: Path):
    assert httpx.get(f"{url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{url}/ready").json() == {"ready": True, "version": "v0.0.1"}
    info = httpx.get(f"{url}/v1/model").json()
    assert info["version"] == "v0.0.1" and info["stage"] == "prod"
    assert info["classes"] == ["benign", "malignant"] and info["task"] == "classification"
    assert len(info["features"]) == 30 and info["features"][0]["type"] == "number"
    at_v1 = git(repo, "show", "model@v0.0.1:metrics/metrics.json").stdout
    assert info["metrics"]["f1"] == json.loads(at_v1)["f1"]
    spec = httpx.get(f"{url}/openapi.json").json()
    assert "/v1/predict" in spec["paths"]

    out = httpx.post(f"{url}/v1/predict", json=records).json()
    expected = model_at(repo, "v0.0.1").predict_proba(pd.DataFrame(records))
    got = np.array([[p["benign"], p["malignant"]] for p in out["probabilities"]])
    np.testing.assert_allclose(got, expected, atol=1e-11)
    assert out["version"] == "v0.0.1" and len(out["predictions"]) == 100


@pytest.mark.parametrize(
    ("mutate", "status", "error", "field"),
    [
        (
            lambda r: [{k: v for k, v in r[0].items() if k != "mean radius"}],
            422,
            "missing_feature",
            "mean radius",
        ),
        (lambda r: [{**r[0], "mean radius": "big"}], 422, "wrong_type", "mean radius"),
        (lambda r: [], 422, "empty", None),
        (lambda r: r * 11, 413, "too_many_rows", None),
        (lambda r: {"records": r}, 422, "not_a_list", None),
    ],
)
def test_bad_requests_get_4xx_naming_the_field(url, records, mutate, status, error, field):
    resp = httpx.post(f"{url}/v1/predict", json=mutate(records))
    assert resp.status_code == status, resp.text
    assert resp.json()["error"] == error and resp.json().get("field") == field


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"[{", 400, "malformed_json"),
        (b'[{"mean radius": NaN}]', 400, "malformed_json"),
        (b'[{"mean radius": Infinity}]', 400, "malformed_json"),
        (b"[" + b"1," * 600_000 + b"1]", 413, "too_large"),
    ],
)
def test_bad_bodies(url, body, status, error):
    resp = httpx.post(
        f"{url}/v1/predict", content=body, headers={"content-type": "application/json"}
    )
    assert resp.status_code == status and resp.json()["error"] == error


def test_fields_the_model_does_not_use_are_ignored_and_named(url, records):
    """Item 18: ids and timestamps ride along; the answer names what was ignored."""
    body = [{**records[0], "request_id": "r-1", "ts": "2026-11-28T08:00:00Z"}, records[1]]
    resp = httpx.post(f"{url}/v1/predict", json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["ignored_fields"] == ["request_id", "ts"]
    assert len(resp.json()["predictions"]) == 2
    assert "ignored_fields" not in httpx.post(f"{url}/v1/predict", json=records[:1]).json()


def test_huge_integers_and_deep_nesting_get_a_4xx_naming_the_record(url, records):
    """Item 6: both were 500s (OverflowError, RecursionError)."""
    good = json.dumps(records[0])[:-1].encode()
    body = b"[" + good + b', "mean radius": 1' + b"0" * 400 + b"}]"
    resp = httpx.post(f"{url}/v1/predict", content=body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["record"] == 0 and resp.json()["field"] == "mean radius"
    body = b"[" + good + b"}, " + good + b', "extra": ' + b"[" * 1000 + b"]" * 1000 + b"}]"
    resp = httpx.post(f"{url}/v1/predict", content=body)
    assert resp.status_code == 422 and resp.json()["error"] == "too_deep", resp.text
    assert resp.json()["record"] == 1 and resp.json()["field"] == "extra"


@pytest.mark.parametrize("value", [1e308, -1e308])
def test_extreme_values_are_refused_never_answered_with_nan(url, records, value):
    """Item 7: every feature at 1e308 gave 200 with NaN probabilities and a made-up class."""
    body = [records[0], dict.fromkeys(records[0], value)]
    resp = httpx.post(f"{url}/v1/predict", json=body)
    assert resp.status_code == 422, resp.text
    err = json.loads(resp.text, parse_constant=lambda c: pytest.fail(f"{c} in the body"))
    assert err["error"] == "no_finite_answer" and err["record"] == 1
    assert err["field"] in records[0] and "training range" in err["message"]


def test_a_chunked_body_stops_at_the_limit(url, records):
    """Item 8: a body without Content-Length was read whole before the limit applied."""
    limit = 1_048_576  # serving.max_body_bytes (the default)
    piece = b" " * 65536
    sent = 0

    def chunks():
        nonlocal sent
        yield b"["
        while sent < 48 * limit:
            sent += len(piece)
            yield piece

    before = rss(url)
    resp = httpx.post(f"{url}/v1/predict", content=chunks(), timeout=30)
    assert resp.status_code == 413 and resp.json()["error"] == "too_large", resp.text
    # The server answered and closed without reading on: the client could send no more than
    # the limit and the sockets' buffers, and the server's memory did not grow with the body.
    assert sent < 16 * limit and rss(url) - before < 16 * limit, (sent, rss(url) - before)
    assert httpx.get(f"{url}/health").status_code == 200
    assert httpx.post(f"{url}/v1/predict", json=records[:1]).status_code == 200


def test_null_is_a_missing_value_and_imputed(url, records):
    resp = httpx.post(f"{url}/v1/predict", json=[{**records[0], "mean radius": None}])
    assert resp.status_code == 200


def test_promotion_rollback_and_tampering_reach_the_running_server(url, repo, records):
    api.promote("model@v0.0.2", stage="prod", force=True, reason="test", root=repo)
    wait_for_version(url, "v0.0.2")  # by polling, no restart
    assert httpx.post(f"{url}/v1/predict", json=records[:1]).json()["version"] == "v0.0.2"
    api.rollback(stage="prod", root=repo)
    # At once, on request; the 0.5 s poll may get there first (then nothing is left to swap).
    swap = httpx.post(f"{url}/v1/reload").json()
    assert swap["version"] == "v0.0.1" and swap["error"] is None

    # v0.0.2's cached bytes are tampered with; promoting it must not dislodge v0.0.1
    md5 = api.workspace(repo).lock_outs_at("model@v0.0.2")["models/model.npz"]
    cached = repo / ".dvc/cache/files/md5" / md5[:2] / md5[2:]
    original = cached.read_bytes()
    cached.chmod(0o644)
    cached.write_bytes(original[:-1] + b"!")
    try:
        api.promote("model@v0.0.2", stage="prod", force=True, reason="test", root=repo)
        swap = httpx.post(f"{url}/v1/reload").json()
        assert swap["swapped"] is False and swap["version"] == "v0.0.1"
        assert "does not match" in swap["error"]
        info = httpx.get(f"{url}/v1/model").json()
        assert info["version"] == "v0.0.1" and "does not match" in info["last_reload_error"]
        resp = httpx.post(f"{url}/v1/predict", json=records[:2])
        assert resp.status_code == 200 and resp.json()["version"] == "v0.0.1"
    finally:
        cached.write_bytes(original)
        api.rollback(stage="prod", root=repo)
        httpx.post(f"{url}/v1/reload")


def test_reload_on_request_when_polling_is_off(repo: Path, tmp_path: Path, records):
    """poll_seconds 0: the server stays on its version until /v1/reload, which swaps."""
    quiet = tmp_path / "repo"
    shutil.copytree(repo, quiet, symlinks=True)
    set_params(quiet, **{"serving.poll_seconds": 0})
    git(quiet, "commit", "-q", "-am", "no polling")
    with server(quiet) as u:
        before = httpx.get(f"{u}/v1/model").json()["version"]
        other = "v0.0.2" if before == "v0.0.1" else "v0.0.1"
        api.promote(f"model@{other}", stage="prod", force=True, reason="test", root=quiet)
        time.sleep(1.0)  # twice the module's poll interval: a poll would have swapped by now
        assert httpx.get(f"{u}/v1/model").json()["version"] == before
        swap = httpx.post(f"{u}/v1/reload").json()
        assert swap == {"swapped": True, "version": other, "error": None}
        assert httpx.post(f"{u}/v1/predict", json=records[:1]).json()["version"] == other


def test_a_retired_holder_stops_answering_as_a_new_server_refuses_it(
    repo: Path, tmp_path: Path, records, capsys, monkeypatch
):
    """Item 4: after `retire --force` a running server kept serving, ready and without error."""
    copy = tmp_path / "repo"
    shutil.copytree(repo, copy, symlinks=True)
    set_params(copy, **{"serving.poll_seconds": 0})
    git(copy, "commit", "-q", "-am", "no polling")
    with server(copy) as u:
        held = httpx.get(f"{u}/ready").json()["version"]
        api.retire(f"model@{held}", force=True, reason="test", root=copy)
        swap = httpx.post(f"{u}/v1/reload").json()
        refusal = f"model#prod is held by retired model@{held}; promote or roll back first"
        assert swap == {"swapped": False, "version": None, "error": refusal}
        ready = httpx.get(f"{u}/ready")
        assert ready.status_code == 503 and ready.json() == {"ready": False, "error": refusal}
        resp = httpx.post(f"{u}/v1/predict", json=records[:1])
        assert resp.status_code == 503 and resp.json()["message"] == refusal
        monkeypatch.chdir(copy)  # a new server says the same, and does not start
        assert cli.main(["serve", "--stage", "prod", "--port", str(free_port())]) == 6
        assert capsys.readouterr().err == f"error: {refusal}\n"
        other = "v0.0.2" if held == "v0.0.1" else "v0.0.1"
        api.promote(f"model@{other}", stage="prod", force=True, reason="test", root=copy)
        swap = httpx.post(f"{u}/v1/reload").json()
        assert swap == {"swapped": True, "version": other, "error": None}
        assert httpx.post(f"{u}/v1/predict", json=records[:1]).json()["version"] == other


def test_bearer_token(repo: Path):
    with server(repo, token="s3cret-token") as u:
        assert httpx.get(f"{u}/health").status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-token"}):
            for path in ("/ready", "/v1/model", "/openapi.json"):
                resp = httpx.get(f"{u}{path}", headers=headers)
                assert resp.status_code == 401 and "s3cret" not in resp.text
            assert httpx.post(f"{u}/v1/predict", json=[], headers=headers).status_code == 401
        ok = {"Authorization": "Bearer s3cret-token"}
        assert httpx.get(f"{u}/v1/model", headers=ok).status_code == 200


extreme_numbers = (
    st.integers(min_value=-(10**420), max_value=10**420)  # most are beyond float range
    | st.sampled_from([10**308, 10**309, -(10**400), 2**1024, 1e308, -1e308, 5e-324, 1.7e38])
    | st.floats(min_value=1e300, allow_infinity=False)
    | st.floats(max_value=-1e300, allow_infinity=False)
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | extreme_numbers
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def nested(draw) -> bytes:
    """A real record with one field, or the whole body, nested up to 5,000 deep."""
    depth = draw(st.integers(1, 5000))
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"k": ', b"}")]))
    inner = opener * depth + draw(st.sampled_from([b"1", b"null", b""])) + closer * depth
    if draw(st.booleans()):
        return inner
    key = draw(st.sampled_from([b"mean radius", b"new field"]))
    return b'[{"' + key + b'": ' + inner + b"}]"


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzzed_predict_requests_never_get_a_5xx(url, records, data):
    kind = data.draw(st.sampled_from(["record", "value", "raw", "extreme", "nested"]))
    if kind == "record":  # a real record with a few fields changed, dropped or added
        rec = dict(records[0])
        keys = [*rec, "unknown", ""]
        for key in data.draw(st.lists(st.sampled_from(keys), max_size=3)):
            if data.draw(st.booleans()):
                rec[key] = data.draw(json_values)
            else:
                rec.pop(key, None)
        body = json.dumps([rec]).encode()
    elif kind == "extreme":  # real records whose numbers are set to the edges of float and beyond
        rows = [dict(r) for r in records[: data.draw(st.integers(1, 3))]]
        for rec in rows:
            for key in data.draw(st.lists(st.sampled_from(list(rec)), max_size=30)):
                rec[key] = data.draw(extreme_numbers)
        body = json.dumps(rows).encode()
    elif kind == "nested":
        body = data.draw(nested())
    elif kind == "value":
        body = json.dumps(data.draw(json_values)).encode()
    else:
        body = data.draw(st.binary(max_size=64))
    resp = httpx.post(
        f"{url}/v1/predict", content=body, headers={"content-type": "application/json"}
    )
    assert resp.status_code < 500, (body[:200], resp.text)
    answer = json.loads(resp.text, parse_constant=lambda c: pytest.fail(f"{c} in {resp.text}"))
    if resp.status_code == 200:
        assert all(math.isfinite(sum(p.values())) for p in answer["probabilities"])
        assert set(answer["predictions"]) <= {"benign", "malignant"}
    elif resp.status_code == 422 and "record" in answer:
        assert f"record {answer['record']}" in answer["message"]


def test_serve_refusals(repo: Path, capsys, monkeypatch):
    monkeypatch.chdir(repo)
    assert cli.main(["serve", "--stage", "staging"]) == 6
    assert "no version of model holds stage 'staging'" in capsys.readouterr().err
    assert cli.main(["serve", "--stage", "prod", "--port", "0"]) == 2
    assert cli.main(["serve", "--stage", "qa"]) == 6
    assert cli.main(["serve"]) == 2
    assert "name the version: NAME@vX.Y.Z, --stage S or --version V" in capsys.readouterr().err
    assert cli.main(["serve", "model@v0.0.1", "--stage", "prod"]) == 2
    assert "name the version once" in capsys.readouterr().err
    assert cli.main(["serve", "model@v9.9.9"]) == 6
    assert "model@v9.9.9 is not registered" in capsys.readouterr().err


def test_serve_pins_a_version_named_as_the_other_commands_do(
    repo: Path, tmp_path: Path, records, capsys, monkeypatch
):
    """Issue 13, item 23: serve took only --stage. NAME@vX.Y.Z (or --version) serves that
    version and no other: promotions do not move it; retiring it stops it, as a stage's
    retired holder stops a server that follows the stage."""
    copy = tmp_path / "repo"
    shutil.copytree(repo, copy, symlinks=True)
    pinned = api.reg.state(api.workspace(copy)).holder("model", "prod")
    other = "v0.0.2" if pinned == "v0.0.1" else "v0.0.1"
    with server(copy, what=(f"model@{pinned}",)) as u:
        info = httpx.get(f"{u}/v1/model").json()
        assert info["version"] == pinned and info["stage"] is None
        assert httpx.post(f"{u}/v1/predict", json=records[:1]).json()["version"] == pinned
        # prod moves on; a server following prod would swap, this one stays
        api.promote(f"model@{other}", stage="prod", force=True, reason="test", root=copy)
        assert httpx.post(f"{u}/v1/reload").json() == {
            "swapped": False,
            "version": pinned,
            "error": None,
        }
        api.retire(f"model@{pinned}", reason="test", root=copy)
        swap = httpx.post(f"{u}/v1/reload").json()
        assert swap["version"] is None and f"model@{pinned} was retired" in swap["error"]
        assert httpx.post(f"{u}/v1/predict", json=records[:1]).status_code == 503
    monkeypatch.chdir(copy)  # a new server refuses it too, before binding
    assert cli.main(["serve", "--version", pinned, "--port", str(free_port())]) == 6
    assert f"model@{pinned} is retired and is not served" in capsys.readouterr().err


@pytest.mark.parametrize("token", ["", "  "])
def test_an_empty_token_refuses_to_start(repo: Path, capsys, monkeypatch, token):
    """Item 9: MODELOPS_TOKEN="" silently turned authentication off."""
    monkeypatch.chdir(repo)
    monkeypatch.setenv("MODELOPS_TOKEN", token)
    assert cli.main(["serve", "--stage", "prod", "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the environment variable MODELOPS_TOKEN (serving.token_env)")
    assert err.count("\n") == 1 and "unset MODELOPS_TOKEN" in err


# -- batch predict ---------------------------------------------------------------------
def write_csv(repo: Path, tmp_path: Path, edit=None) -> Path:
    frame = pd.read_feather(repo / "data/prepared/test.arrow").drop(columns=["diagnosis"])
    frame.insert(0, "patient", [f"P{i}" for i in range(len(frame))])
    text = frame.to_csv(index=False)
    if edit:
        text = edit(text)
    path = tmp_path / "batch.csv"
    path.write_text(text)
    return path


def test_batch_predict_matches_the_model(repo: Path, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.chdir(repo)
    src = write_csv(repo, tmp_path)
    out = tmp_path / "pred.csv"
    assert cli.main(["predict", "--stage", "prod", "--input", str(src), "--output", str(out)]) == 0
    assert "ignored columns the model does not use: patient" in capsys.readouterr().out
    pred = pd.read_csv(out)
    frame = pd.read_csv(src)
    expected = model_at(repo, "v0.0.1").predict_proba(frame)
    np.testing.assert_allclose(pred["proba_malignant"], expected[:, 1], atol=1e-12)
    assert list(pred["line"]) == list(range(2, len(frame) + 2))


def test_batch_predict_bad_rows(repo: Path, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.chdir(repo)

    def spoil(text: str) -> str:
        lines = text.splitlines()
        for n, bad in ((5, "oops"), (7, "inf")):
            cells = lines[n - 1].split(",")
            cells[1] = bad  # the "mean radius" column
            lines[n - 1] = ",".join(cells)
        return "\n".join(lines) + "\n"

    src = write_csv(repo, tmp_path, spoil)
    out = tmp_path / "pred.csv"
    argv = ["predict", "--version", "v0.0.1", "--input", str(src), "--output", str(out)]
    assert cli.main(argv) == 4
    err = capsys.readouterr().err
    assert "2 invalid row(s): line 5: 'mean radius' = 'oops' is not a finite number" in err
    assert "line 7" in err and "--skip-invalid" in err and not out.exists()
    assert cli.main([*argv, "--skip-invalid"]) == 0
    assert "skipped 2 invalid row(s)" in capsys.readouterr().out
    lines = set(pd.read_csv(out)["line"])
    assert 5 not in lines and 7 not in lines and 6 in lines


def test_batch_predict_refuses_rows_without_a_finite_answer(
    repo: Path, tmp_path: Path, capsys, monkeypatch
):
    """Item 7: a row at 1e308 was written as nan probabilities and a made-up class."""
    monkeypatch.chdir(repo)

    def extreme(text: str) -> str:
        lines = text.splitlines()
        cells = lines[3].split(",")
        lines[3] = ",".join([cells[0], *["1e308"] * (len(cells) - 1)])
        return "\n".join(lines) + "\n"

    src = write_csv(repo, tmp_path, extreme)
    out = tmp_path / "pred.csv"
    argv = ["predict", "--version", "v0.0.1", "--input", str(src), "--output", str(out)]
    assert cli.main(argv) == 4
    err = capsys.readouterr().err
    assert "1 invalid row(s): line 4: 'mean radius' = 1e+308 is too far outside the training" in err
    assert not out.exists()
    assert cli.main([*argv, "--skip-invalid"]) == 0
    assert "skipped 1 invalid row(s)" in capsys.readouterr().out
    pred = pd.read_csv(out, keep_default_na=False)
    assert 4 not in set(pred["line"]) and len(pred) == len(pd.read_csv(src)) - 1
    assert np.isfinite(pred[["proba_benign", "proba_malignant"]].to_numpy(float)).all()
    assert set(pred["prediction"]) <= {"benign", "malignant"}


def test_batch_predict_refusals(repo: Path, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.chdir(repo)
    out = tmp_path / "pred.csv"
    src = write_csv(repo, tmp_path, lambda t: t.replace("mean radius", "radius", 1))
    assert cli.main(["predict", "--stage", "prod", "--input", str(src), "--output", str(out)]) == 4
    assert "column 'mean radius' is missing" in capsys.readouterr().err
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert (
        cli.main(["predict", "--stage", "prod", "--input", str(empty), "--output", str(out)]) == 4
    )
    assert "empty file" in capsys.readouterr().err
    assert (
        cli.main(
            [
                "predict",
                "--stage",
                "prod",
                "--input",
                str(tmp_path / "no.csv"),
                "--output",
                str(out),
            ]
        )
        == 4
    )
    assert "no such file" in capsys.readouterr().err
    assert not out.exists()


def test_batch_predict_keeps_an_existing_output_unless_forced(
    repo: Path, tmp_path: Path, capsys, monkeypatch
):
    """predict replaced params.yaml, uncommitted edits and all, and renamed its CSV onto
    /dev/stdout (as root, the node itself); `get -o` already refused."""
    monkeypatch.chdir(repo)
    src = write_csv(repo, tmp_path)
    out = tmp_path / "pred.csv"
    out.write_text("last week's predictions\n")
    argv = ["predict", "--stage", "prod", "--input", str(src), "--output", str(out)]
    assert f"--output {out}: exists; use --force to overwrite it" in cli_error(capsys, argv, 2)
    assert out.read_text() == "last week's predictions\n"
    assert cli.main([*argv, "--force"]) == 0
    assert list(pd.read_csv(out)["line"])[:2] == [2, 3]
    # stand-ins for /dev/null and /dev/stdout (a test that failed must not replace those)
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "stdout").symlink_to(out)
    for node, why in [("pipe", "is not a regular file"), ("stdout", "is a symbolic link")]:
        argv = ["predict", "--stage", "prod", "--input", str(src), "--output", str(tmp_path / node)]
        assert why in cli_error(capsys, [*argv, "--force"], 2)
    assert (tmp_path / "pipe").is_fifo() and (tmp_path / "stdout").is_symlink()
    batch = tmp_path / "batch.csv"
    batch.write_text("x\n")
    assert "exists; use --force" in cli_error(
        capsys, ["make-batch", "--stage", "prod", "-o", str(batch)], 2
    )
    assert batch.read_text() == "x\n"


def test_batch_predict_refuses_a_row_cut_short_or_shifted_and_writes_nothing(
    repo: Path, tmp_path: Path, capsys, monkeypatch
):
    monkeypatch.chdir(repo)
    out = tmp_path / "pred.csv"

    def shifted(text: str) -> str:  # an unquoted thousands separator on line 5
        lines = text.splitlines()
        lines[4] = lines[4].replace(",", ",1,000,", 1)
        return "\n".join(lines) + "\n"

    def cut(text: str) -> str:  # the last row cut off mid-write
        return text.rstrip("\n").rsplit(",", 20)[0]

    params = (repo / "params.yaml").read_text()  # the module's repo: put back below
    set_params(repo, **{"serving.chunk_rows": 10})  # the cut row comes after chunks were written
    try:
        for spoil in (shifted, cut):
            src = write_csv(repo, tmp_path, spoil)
            lines = src.read_text().splitlines()
            width = len(lines[0].split(","))
            bad = next(i for i, line in enumerate(lines, 1) if len(line.split(",")) != width)
            argv = ["predict", "--stage", "prod", "--input", str(src), "--output", str(out)]
            err = cli_error(capsys, argv, 4)
            assert f"line {bad} has " in err and f"where the header has {width}" in err, err
            assert not out.exists() and not list(tmp_path.glob(".pred.csv*"))  # no temp file
    finally:
        (repo / "params.yaml").write_text(params)
    assert bad == len(lines)  # the cut row is the last


def test_batch_predict_with_every_row_skipped_writes_the_columns_and_no_rows(
    repo: Path, tmp_path: Path, capsys, monkeypatch
):
    monkeypatch.chdir(repo)

    def spoil(text: str) -> str:
        head, *rows = text.splitlines()  # every row's "mean radius" is text
        return "\n".join(
            [head, *(",".join([r.split(",")[0], "oops", *r.split(",")[2:]]) for r in rows)]
        )

    src = write_csv(repo, tmp_path, spoil)
    out = tmp_path / "pred.csv"
    argv = ["predict", "--stage", "prod", "--input", str(src), "--output", str(out)]
    assert cli.main([*argv, "--skip-invalid"]) == 0
    assert f"predicted 0 of {len(src.read_text().splitlines()) - 1} rows" in capsys.readouterr().out
    assert out.read_text().splitlines() == ['"line","prediction","proba_benign","proba_malignant"']
