"""`modelops verify` on real git + DVC repositories: identical, differs, unreachable, tampered."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from modelops import api, cli
from tests.helpers import bucket_of, copy_repo, dvc, free_port, git, tree_state, use_remote

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent
EXTRA = b"id,reading\n1,0.5\n2,0.25\n3,0.125\n"

# Appended to the v0.0.2 commit's own evaluation code: f1 halved. Its outputs are the ones
# v0.0.1's code wrote (`dvc commit -f`), so only a run of that commit's code can tell.
HALVE_F1 = """

_classification_metrics = classification_metrics


def classification_metrics(y, proba, positive_index):
    m = _classification_metrics(y, proba, positive_index)
    return {**m, "f1": m["f1"] / 2}
"""


@pytest.fixture(scope="module")
def base(reproduced: Path, tmp_path_factory) -> Path:
    """v0.0.1 (holds prod): reproduced with a `dvc add`ed CSV in data/raw. v0.0.2: its code
    halves f1 but its recorded outputs are v0.0.1's, so it does not reproduce."""
    repo = copy_repo(reproduced, tmp_path_factory.mktemp("verify") / "repo")
    (repo / "data/raw/extra.csv").write_bytes(EXTRA)
    dvc(repo, "add", "data/raw/extra.csv")
    dvc(repo, "repro")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "extra raw data")
    api.register(root=repo)
    api.promote("model@v0.0.1", stage="prod", root=repo)
    with open(repo / "src/modelops/evaluation.py", "a") as f:
        f.write(HALVE_F1)
    card = json.loads((repo / "metrics/card.json").read_text())
    card["versions"]["numpy"] = "1.0.0"  # as if trained with another numpy
    (repo / "metrics/card.json").write_text(json.dumps(card, indent=2) + "\n")
    dvc(repo, "commit", "--force")
    git(repo, "commit", "-q", "-am", "evaluation code that does not match the outputs")
    api.register(root=repo)
    return repo


@pytest.fixture
def repo(base: Path, tmp_path: Path, monkeypatch) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(base, copy, symlinks=True)
    monkeypatch.chdir(copy)
    # verify's temporary worktree goes under here, so the test can see it is gone
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setenv("TMPDIR", str(temp))
    return copy


def cache_state(repo: Path) -> dict[str, bytes]:
    root = repo / ".dvc/cache"
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def snapshot(repo: Path) -> dict:
    """Everything verify must leave alone: files, branch, index, tags, worktrees, cache."""
    return {
        "head": git(repo, "rev-parse", "HEAD").stdout,
        "branch": git(repo, "symbolic-ref", "HEAD").stdout,
        "status": git(repo, "status", "--porcelain", "--ignored", "--untracked-files=all").stdout,
        "index": (repo / ".git/index").read_bytes(),
        "tags": git(repo, "for-each-ref", "refs/tags").stdout,
        "worktrees": git(repo, "worktree", "list", "--porcelain").stdout,
        "files": tree_state(repo),
        "cache": cache_state(repo),
    }


def assert_untouched(repo: Path, before: dict) -> None:
    after = snapshot(repo)
    for key in before:
        assert after[key] == before[key], key
    assert after["worktrees"].count("worktree ") == 1
    left = list(Path(tempfile.gettempdir()).glob("modelops-verify-*"))
    assert not left, "temporary worktree left behind"


def lock_md5(repo: Path, rev: str, path: str) -> str:
    return api.workspace(repo).lock_outs_at(rev)[path]


def extra_object(repo: Path) -> Path:
    md5 = hashlib.md5(EXTRA).hexdigest()
    return repo / ".dvc/cache/files/md5" / md5[:2] / md5[2:]


def metrics_at(repo: Path, rev: str) -> dict:
    return json.loads(git(repo, "show", f"{rev}:metrics/metrics.json").stdout)


def cli_error(capsys, argv: list[str], code: int) -> tuple[str, str]:
    assert cli.main(argv) == code
    out, err = capsys.readouterr()
    err = err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return out, err


def test_identical_version_from_its_stage_leaves_the_checkout_alone(repo: Path, capsys):
    git(repo, "switch", "-q", "-c", "work")  # the user's own branch, with uncommitted work
    (repo / "README.md").write_text("work in progress")
    git(repo, "add", "README.md")
    (repo / "notes.txt").write_text("untracked")
    before = snapshot(repo)
    assert cli.main(["verify", "--stage", "prod"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("identical: model@v0.0.1 ")
    assert "reproduces all 8 outputs" in out  # prepared, loss, model, 4 of evaluate, drift
    assert "stages prepare, train, evaluate, monitor" in out
    assert "with the library versions the card records" in out
    assert_untouched(repo, before)


def test_output_that_its_code_does_not_produce_differs(repo: Path, capsys):
    before = snapshot(repo)
    assert cli.main(["verify", "model@v0.0.2"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("differs: ")
    table = out.split("\n\n")[0]
    assert "metrics/metrics.json  evaluate" in table
    assert lock_md5(repo, "model@v0.0.2", "metrics/metrics.json") in table
    assert "models/model.npz" not in table  # the train stage's code did not change
    f1 = metrics_at(repo, "model@v0.0.2")["f1"]
    row = next(line for line in out.splitlines() if line.startswith("metrics/metrics.json: f1"))
    recorded, reproduced, delta = row.split()[2:]
    assert float(recorded) == f1
    assert float(reproduced) == pytest.approx(f1 / 2, rel=1e-12)
    assert float(delta) == pytest.approx(-f1 / 2, rel=1e-5)
    numpy = importlib.metadata.version("numpy")
    assert "library versions differ from the ones in the version's model card" in out
    assert f"(the likely cause of a difference): numpy 1.0.0 -> {numpy}" in out
    assert_untouched(repo, before)


def test_json_report_has_the_verdict_and_the_exit_code(repo: Path, capsys):
    assert cli.main(["verify", "model", "--version", "v0.0.2", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "differs" and report["exit_code"] == 1
    assert report["version"] == "v0.0.2"
    assert report["commit"] == git(repo, "rev-parse", "model@v0.0.2^{commit}").stdout.strip()
    assert report["stages"] == ["prepare", "train", "evaluate", "monitor"]
    differing = {o["path"] for o in report["outputs"] if not o["identical"]}
    assert "metrics/metrics.json" in differing and "models/model.npz" not in differing
    by_path = {o["path"]: o for o in report["outputs"]}
    prepared = by_path["data/prepared"]
    assert prepared["identical"] and prepared["recorded"].endswith(".dir")
    assert report["library_versions"]["changed"] == {
        "numpy": ["1.0.0", importlib.metadata.version("numpy")]
    }
    f1 = next(m for m in report["metrics"] if m["key"] == "f1")
    assert f1["delta"] == pytest.approx(-f1["recorded"] / 2)
    inputs = {i["path"]: i for i in report["inputs"]}
    assert inputs["data/raw/extra.csv"]["md5"] == hashlib.md5(EXTRA).hexdigest()
    assert inputs["data/raw/extra.csv"]["record"] == "data/raw/extra.csv.dvc"
    lock = api.workspace(repo).yaml_at("model@v0.0.2", "dvc.lock")
    raw = next(d for d in lock["stages"]["prepare"]["deps"] if d["path"] == "data/raw")
    assert inputs["data/raw"]["md5"] == raw["md5"]
    assert "src/modelops/evaluation.py" in inputs


def test_tampered_cache_object_stops_before_anything_runs(repo: Path, capsys):
    obj = extra_object(repo)
    obj.chmod(0o644)
    obj.write_bytes(EXTRA.replace(b"0.5", b"0.6"))
    before = snapshot(repo)
    _, err = cli_error(capsys, ["verify", "model@v0.0.1"], 5)
    assert "data/raw/extra.csv of model@v0.0.1" in err and "corrupt" in err
    assert str(obj) in err and "remove it and `dvc fetch` it again" in err
    assert hashlib.md5(obj.read_bytes()).hexdigest() in err
    out, err = cli_error(capsys, ["verify", "--stage", "prod", "--json"], 5)
    report = json.loads(out)
    assert report["verdict"] == "unverifiable" and report["exit_code"] == 5
    assert report["path"] == "data/raw/extra.csv" and report["version"] == "model@v0.0.1"
    assert_untouched(repo, before)


def test_data_missing_from_the_cache_without_a_remote(repo: Path, capsys):
    extra_object(repo).unlink()
    before = snapshot(repo)
    _, err = cli_error(capsys, ["verify", "model@v0.0.1"], 5)
    assert "data/raw/extra.csv of model@v0.0.1" in err
    assert "not in the DVC cache and no DVC remote is configured" in err
    assert "make remote-s3" in err
    assert_untouched(repo, before)


def _tag_with_edited_lock(repo: Path, edit) -> None:
    """Commit a dvc.lock that no longer matches the tree and tag it model@v0.0.3 by hand
    (`modelops register` would refuse the stale pipeline)."""
    from modelops.params import yaml_loads

    lock = yaml_loads((repo / "dvc.lock").read_text())
    edit(lock)
    (repo / "dvc.lock").write_text(json.dumps(lock, indent=1))  # JSON is YAML
    git(repo, "commit", "-q", "-am", "a lock that does not match")
    git(repo, "tag", "-a", "model@v0.0.3", "-m", "Register model v0.0.3")


def _code_md5(lock: dict) -> None:
    dep = next(d for d in lock["stages"]["prepare"]["deps"] if d["path"] == "src/modelops/data.py")
    dep["md5"] = "0" * 32


def _param(lock: dict) -> None:
    lock["stages"]["prepare"]["params"]["params.yaml"]["split"]["seed"] = 7


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (_code_md5, "src/modelops/data.py: input of stage prepare of model@v0.0.3 has md5 "),
        (_param, "params.yaml: split of model@v0.0.3 is {'test_size': 0.2, 'seed': 42} but"),
    ],
)
def test_inputs_that_do_not_match_the_lock_stop_it(repo: Path, capsys, edit, expected):
    _tag_with_edited_lock(repo, edit)
    before = snapshot(repo)
    _, err = cli_error(capsys, ["verify", "model@v0.0.3"], 5)
    assert expected in err and "nothing was run" in err
    assert_untouched(repo, before)


def test_a_stage_that_fails_today_differs(repo: Path, capsys):
    with open(repo / "src/modelops/evaluation.py", "a") as f:
        f.write('\nraise RuntimeError("boom: this code no longer runs")\n')
    md5 = hashlib.md5((repo / "src/modelops/evaluation.py").read_bytes()).hexdigest()
    git(repo, "commit", "-q", "-am", "code that crashes")

    def edit(lock: dict) -> None:  # the lock records the crashing code, as if it had run
        for stage in lock["stages"].values():
            for dep in stage.get("deps", []):
                if dep["path"] == "src/modelops/evaluation.py":
                    dep["md5"] = md5

    _tag_with_edited_lock(repo, edit)
    before = snapshot(repo)
    assert cli.main(["verify", "model@v0.0.3"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("differs: ")
    table = out.split("\n\n")[0]
    for path in ("metrics/metrics.json", "metrics/drift.json"):
        assert f"{path} " in table  # the outputs of the failed stage and of those after it
    # train does not import evaluation.py: its bundle still reproduces, as does prepare's data
    assert "not produced" in table and "data/prepared" not in table
    assert "models/model.npz " not in table
    assert "dvc repro failed:" in out and "boom: this code no longer runs" in out
    assert "metrics/metrics.json: f1" not in out  # no metric rows for a file not produced
    assert_untouched(repo, before)


@pytest.mark.parametrize(
    ("argv", "expected", "code"),
    [
        (["verify"], "say which version", 2),
        (["verify", "model@v0.0.1", "--stage", "prod"], "exactly one of", 2),
        (["verify", "model@v9.9.9"], "model@v9.9.9 is not registered", 6),
        (["verify", "--stage", "staging"], "no version of model holds stage 'staging'", 6),
        (["verify", "--stage", "nope"], "stage 'nope' is not one of", 6),
    ],
)
def test_refusals(repo: Path, capsys, argv, expected, code):
    before = snapshot(repo)
    assert expected in cli_error(capsys, argv, code)[1]
    assert_untouched(repo, before)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_verify_removes_its_worktree(repo: Path, sig):
    before = snapshot(repo)
    proc = subprocess.Popen(
        [str(BIN / "modelops"), "verify", "model@v0.0.1"],
        cwd=repo,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    temp = Path(tempfile.gettempdir())
    deadline = time.monotonic() + 60
    # interrupt once dvc repro is running in the worktree (the prepared data appears)
    while not list(temp.glob("modelops-verify-*/*/data/prepared")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert err.strip() == "interrupted: verify stopped; the temporary worktree was removed"
    assert_untouched(repo, before)


# -- data from a real S3 remote (SeaweedFS) -------------------------------------------------
@pytest.fixture(scope="module")
def pushed(base: Path, s3, tmp_path_factory) -> Path:
    """The registered repo with an S3 remote (the README's recipe) holding all its data."""
    repo = tmp_path_factory.mktemp("pushed") / "repo"
    shutil.copytree(base, repo, symlinks=True)
    use_remote(repo, s3, s3.bucket("verify-pushed"), commit=False)
    dvc(repo, "push")
    return repo


@pytest.fixture
def remote_only(pushed: Path, repo: Path, s3) -> Path:
    """A copy of ``pushed`` with a bucket of its own (a server-side copy) and no local cache."""
    import uuid

    client = s3.client()
    bucket = s3.bucket(f"v-{uuid.uuid4().hex[:8]}")
    for obj in client.list_objects_v2(Bucket="verify-pushed")["Contents"]:
        client.copy_object(
            Bucket=bucket, Key=obj["Key"], CopySource={"Bucket": "verify-pushed", "Key": obj["Key"]}
        )
    for name in ("config", "config.local"):
        text = (pushed / ".dvc" / name).read_text().replace("verify-pushed", bucket)
        (repo / ".dvc" / name).write_text(text)
    shutil.rmtree(repo / ".dvc/cache")
    return repo


def remote_key(repo: Path, data: bytes) -> tuple[str, str]:
    md5 = hashlib.md5(data).hexdigest()
    return bucket_of(repo), f"store/files/md5/{md5[:2]}/{md5[2:]}"


def test_inputs_come_from_the_remote_without_filling_the_cache(remote_only: Path, capsys):
    repo = remote_only
    before = snapshot(repo)
    assert cli.main(["verify", "--stage", "prod"]) == 0
    assert capsys.readouterr().out.startswith("identical: model@v0.0.1 ")
    assert_untouched(repo, before)
    assert not (repo / ".dvc/cache").exists()  # read from the remote, hashed, never cached


def test_a_corrupt_remote_object_then_a_missing_one(remote_only: Path, s3, capsys):
    repo = remote_only
    bucket, key = remote_key(repo, EXTRA)
    s3.client().put_object(Bucket=bucket, Key=key, Body=b"id,reading\n1,9\n")
    before = snapshot(repo)
    _, err = cli_error(capsys, ["verify", "model@v0.0.1"], 5)
    assert "data/raw/extra.csv of model@v0.0.1: the bytes in DVC remote 'storage'" in err
    assert hashlib.md5(b"id,reading\n1,9\n").hexdigest() in err and "corrupt" in err
    assert "`dvc push` a good copy" in err
    assert_untouched(repo, before)

    s3.client().delete_object(Bucket=bucket, Key=key)
    _, err = cli_error(capsys, ["verify", "model@v0.0.1"], 5)
    assert "is not in the DVC cache nor on DVC remote 'storage'" in err
    assert "`dvc push` it from a machine that has it" in err
    assert_untouched(repo, before)


def test_an_unreachable_remote(remote_only: Path, s3, capsys):
    # The session's server stays up for other tests: the remote points at a closed port.
    dvc(
        remote_only,
        "remote",
        "modify",
        "--local",
        "storage",
        "endpointurl",
        f"http://127.0.0.1:{free_port()}",
    )
    before = snapshot(remote_only)
    _, err = cli_error(capsys, ["verify", "model@v0.0.1"], 5)
    assert "DVC remote 'storage' cannot be reached" in err and s3.secret_key not in err
    assert_untouched(remote_only, before)
