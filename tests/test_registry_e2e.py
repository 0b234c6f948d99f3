"""The registry on real git tags in temp repos: every command, every refusal, GTO/DVC agreement."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modelops import api, cli
from modelops.errors import ModelopsError
from modelops.files import md5_bytes
from tests.helpers import (
    cache_object,
    cli_error,
    dvc,
    git,
    message,
    set_params,
    snapshot,
    tags,
    tamper,
)

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent


@pytest.fixture
def repo(base: Path, tmp_path: Path, monkeypatch) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(base, copy, symlinks=True)
    monkeypatch.chdir(copy)
    return copy


def metrics_at(repo: Path, rev: str) -> dict:
    return json.loads(git(repo, "show", f"{rev}:metrics/metrics.json").stdout)


def lock_md5(repo: Path, rev: str = "HEAD") -> str:
    from modelops.bundle import lock_md5 as parse

    return parse(git(repo, "show", f"{rev}:dvc.lock").stdout, "models/model.npz")


# -- register ------------------------------------------------------------------------------
def test_register_records_lineage(base: Path):
    assert tags(base) == ["model@v0.0.1", "model@v0.0.2"]
    lin = message(base, "model@v0.0.2")
    assert lin["model"]["md5"] == lock_md5(base, "model@v0.0.2")
    assert (
        lin["model"]["sha256"]
        == hashlib.sha256((base / "models/model.npz").read_bytes()).hexdigest()
    )
    assert lin["data"]["prepared_md5"].endswith(".dir")
    assert lin["data"]["source"]["kind"] == "breast_cancer"
    assert lin["params"]["train"]["l2"] == 0.1
    assert lin["metrics"] == json.loads((base / "metrics/metrics.json").read_text())
    assert lin["creator"] == "Test Author <author@example.invalid>"
    assert lin["created"].endswith("+00:00")


def test_register_bumps_and_takes_explicit_versions(repo: Path, capsys):
    git(repo, "commit", "-q", "--allow-empty", "-m", "same model, new commit")
    assert cli.main(["register", "--bump", "minor"]) == 0
    out = capsys.readouterr().out
    # Issue 13, item 21: `git push origin TAG` would share the tag without its bytes.
    assert "share it with: modelops publish model@v0.1.0" in out and "git push" not in out
    assert "model@v0.1.0" in tags(repo)
    git(repo, "commit", "-q", "--allow-empty", "-m", "again")
    assert api.register(version="v2.0.0", message="by hand").version == "v2.0.0"
    assert message(repo, "model@v2.0.0")["message"] == "by hand"


@pytest.mark.parametrize(
    ("argv", "expected", "code"),
    [
        (["register"], "HEAD is already registered as model@v0.0.2", 6),
        (["register", "--version", "1.2.0"], "version '1.2.0' is not a semantic version", 6),
        (["register", "Bad Name"], "model name 'Bad Name' is not valid", 6),
        (["register", "m@x"], "version 'x' is not a semantic version", 6),
        (["register", "other"], "'other' is not declared in dvc.yaml's artifacts", 6),
        (["register", "--bump", "minor", "--version", "v1.0.0"], "either --bump or --version", 2),
        (["register", "model@v5.0.0", "--bump", "major"], "--bump would be ignored", 2),
        (["register", "--version", ""], "--version is empty", 2),  # an unset $VERSION
        (["promote", "model@v0.0.1", "--stage", "dev", "--force", "--reason", " "], "needs", 2),
    ],
)
def test_register_refusals_change_nothing(repo: Path, capsys, argv, expected, code):
    before = snapshot(repo)
    assert expected in cli_error(capsys, argv, code)
    assert snapshot(repo) == before


def test_register_refuses_a_dirty_tree_and_a_stale_pipeline(repo: Path, capsys):
    git(repo, "commit", "-q", "--allow-empty", "-m", "new commit")
    (repo / "README.md").write_text("changed")
    before = snapshot(repo)
    assert "uncommitted changes in README.md" in cli_error(capsys, ["register"], code=7)
    assert snapshot(repo) == before
    git(repo, "checkout", "-q", "README.md")
    set_params(repo, **{"train.l2": 0.5})
    git(repo, "commit", "-q", "-am", "params without repro")
    before = snapshot(repo)
    assert "the pipeline is not up to date (stages train" in cli_error(capsys, ["register"], code=7)
    assert snapshot(repo) == before


def test_two_racing_registers_never_share_a_version(repo: Path):
    git(repo, "commit", "-q", "--allow-empty", "-m", "race")
    procs = [
        subprocess.Popen(
            [str(BIN / "modelops"), "register"],
            cwd=repo,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [(p.wait(), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 6], results
    assert "already registered as model@v0.0.3" in "".join(err for _, _, err in results)
    assert tags(repo) == ["model@v0.0.1", "model@v0.0.2", "model@v0.0.3"]


def test_two_racing_promotes_keep_both_tags(repo: Path):
    procs = [
        subprocess.Popen(
            [str(BIN / "modelops"), "promote", f"model@{v}", "--stage", stage],
            cwd=repo,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for v, stage in (("v0.0.1", "staging"), ("v0.0.2", "dev"))
    ]
    results = [(p.wait(), *p.communicate()) for p in procs]
    assert [code for code, _, _ in results] == [0, 0], results
    assigned = [t for t in tags(repo) if "#" in t]
    assert len(assigned) == 2 and len({t.rsplit("#", 1)[1] for t in assigned}) == 2
    assert {r["version"]: r["stages"] for r in api.list_versions()} == {
        "v0.0.2": ["dev"],
        "v0.0.1": ["staging"],
    }


def test_the_registry_lock_is_shared_by_worktrees(repo: Path, tmp_path: Path):
    """Issue 13, item 5: the lock lived in the worktree's own git dir, so a promote from a
    second worktree did not wait, and two assignments could share a second (GTO and DVC then
    name different holders)."""
    import time

    def blocked_on_a_lock(pid: int) -> bool:
        """Whether ``pid`` waits for a file lock: a ``->`` line of /proc/locks names it."""
        lines = Path("/proc/locks").read_text().splitlines()
        return any("->" in line and str(pid) in line.split("->")[1].split()[3:4] for line in lines)

    other = tmp_path / "other"
    git(repo, "worktree", "add", "-q", "--detach", str(other), "HEAD")
    with api.workspace(repo).lock():
        proc = subprocess.Popen(
            [str(BIN / "modelops"), "promote", "model@v0.0.1", "--stage", "dev"],
            cwd=other,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while not blocked_on_a_lock(proc.pid):  # the kernel says it waits: no guessed sleep
            if proc.poll() is not None or time.monotonic() > deadline:
                out, err = proc.communicate()
                pytest.fail(f"promote in another worktree did not wait for the lock: {out}{err}")
            time.sleep(0.02)
        assert "model#dev#1" not in tags(repo)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "model#dev#1" in tags(repo)


# -- promote and the gate -------------------------------------------------------------------
def test_promote_and_gate(repo: Path, capsys):
    assert cli.main(["promote", "model@v0.0.1", "--stage", "prod"]) == 0
    assert "no version holds the stage yet" in capsys.readouterr().out
    before = snapshot(repo)
    err = cli_error(capsys, ["promote", "model@v0.0.2", "--stage", "prod"], code=6)
    f1 = {v: metrics_at(repo, f"model@{v}")["f1"] for v in ("v0.0.1", "v0.0.2")}
    assert f1["v0.0.2"] < f1["v0.0.1"]
    assert (
        f"gate: model@v0.0.2 has f1 {f1['v0.0.2']:.6g}, worse than {f1['v0.0.1']:.6g} "
        "of model@v0.0.1" in err
    )
    assert snapshot(repo) == before
    assert "--force needs --reason" in cli_error(
        capsys, ["promote", "model@v0.0.2", "--stage", "prod", "--force"], code=2
    )
    assert (
        cli.main(
            [
                "promote",
                "model",
                "--version",
                "v0.0.2",
                "--stage",
                "prod",
                "--force",
                "--reason",
                "recall matters more this quarter",
            ]
        )
        == 0
    )
    data = message(repo, "model#prod#2")
    assert data["forced"] is True and data["reason"] == "recall matters more this quarter"
    assert data["gate"]["candidate"] < data["gate"]["holder"]
    assert [r["stages"] for r in api.list_versions()] == [["prod"], []]


def test_the_gate_refuses_a_candidate_whose_metric_is_not_a_number(repo: Path, capsys):
    """A metrics file is anyone's input (the commit's): text was a traceback (exit 70), and an
    infinite holder could never be beaten."""

    def version_with(f1_text: str, version: str) -> None:
        (repo / "metrics/metrics.json").write_text('{"f1": ' + f1_text + "}")
        git(repo, "commit", "-q", "-am", f"hand-written metrics {f1_text}")
        git(repo, "tag", "-a", f"model@{version}", "-m", "Registering artifact model version")

    version_with('"high"', "v0.0.3")
    before = snapshot(repo)
    assert cli_error(capsys, ["promote", "model@v0.0.3", "--stage", "dev"], code=6) == (
        "error: gate: model@v0.0.3's f1 is 'high', not a finite number; its metrics file is not "
        "the evaluate stage's (re-run `dvc repro` there and register anew)"
    )
    assert snapshot(repo) == before
    version_with("1e999", "v0.0.4")  # JSON's reader makes it infinity
    forced = ["promote", "model@v0.0.4", "--stage", "prod", "--force", "--reason", "x"]
    assert "model@v0.0.4's f1 is inf, not a finite number" in cli_error(capsys, forced, 6)
    # a holder from before this rule (or from gto itself) with an infinite metric
    gto = [str(BIN / "gto"), "assign", "model", "--version", "v0.0.4", "--stage", "prod"]
    subprocess.run(gto, cwd=repo, check=True, capture_output=True)
    capsys.readouterr()
    assert cli.main(["promote", "model@v0.0.1", "--stage", "prod"]) == 0
    assert "v0.0.4 has inf as its f1; nothing to compare" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["promote", "model@v0.0.1", "--stage", "qa"],
            "stage 'qa' is not one of dev, staging, prod",
        ),
        (["promote", "model@v9.0.0", "--stage", "dev"], "model@v9.0.0 is not registered"),
        (["promote", "model@1.0", "--stage", "dev"], "version '1.0' is not a semantic version"),
        (["promote", "model", "--stage", "dev"], "say which version"),
    ],
)
def test_promote_refusals_change_nothing(repo: Path, capsys, argv, expected):
    before = snapshot(repo)
    code = 2 if expected == "say which version" else 6
    assert expected in cli_error(capsys, argv, code)
    assert snapshot(repo) == before


def test_gate_on_a_lower_is_better_metric_with_tolerance(repo: Path):
    set_params(repo, **{"registry.gate.metric": "log_loss", "registry.gate.tolerance": 0.1})
    api.promote("model@v0.0.1", stage="staging")
    # log loss 0.143 vs 0.089: worse, but within the 0.1 tolerance
    _, g = api.promote("model@v0.0.2", stage="staging")
    assert g.passed and not g.higher_is_better


# -- rollback ----------------------------------------------------------------------------
def test_rollback_twice_in_a_row_and_refusals(repo: Path, capsys):
    git(repo, "commit", "-q", "--allow-empty", "-m", "third")
    api.register()
    for v in ("v0.0.1", "v0.0.2", "v0.0.3"):
        api.promote(f"model@{v}", stage="prod", force=True, reason="test")
    assert api.rollback(stage="prod")[1:] == ("v0.0.3", "v0.0.2")
    assert api.rollback(stage="prod")[1:] == ("v0.0.2", "v0.0.1")
    before = snapshot(repo)
    assert "has no earlier holder" in cli_error(capsys, ["rollback", "--stage", "prod"], code=6)
    assert "no version of model holds stage 'dev'" in cli_error(
        capsys, ["rollback", "--stage", "dev"], code=6
    )
    assert "did not hold 'prod' before" in cli_error(
        capsys, ["rollback", "--stage", "prod", "--to", "v0.0.3"], code=6
    )
    assert snapshot(repo) == before
    # history is append-only: every assignment is still there
    assert [t for t in tags(repo) if "#prod#" in t] == [f"model#prod#{i}" for i in range(1, 6)]


def test_rollback_skips_retired_versions_and_takes_to(repo: Path):
    git(repo, "commit", "-q", "--allow-empty", "-m", "third")
    api.register()
    for v in ("v0.0.1", "v0.0.2", "v0.0.3"):
        api.promote(f"model@{v}", stage="prod", force=True, reason="test")
    api.retire("model@v0.0.2", reason="bad calibration")
    assert api.rollback(stage="prod")[1:] == ("v0.0.3", "v0.0.1")
    api.promote("model@v0.0.3", stage="prod", force=True, reason="again")
    assert api.rollback(stage="prod", to="v0.0.1")[2] == "v0.0.1"


# -- retire ------------------------------------------------------------------------------
def test_retire(repo: Path, capsys):
    api.promote("model@v0.0.1", stage="prod")
    before = snapshot(repo)
    assert "holds prod; promote another version to 'prod' first" in cli_error(
        capsys, ["retire", "model@v0.0.1"], code=6
    )
    assert snapshot(repo) == before
    assert cli.main(["retire", "model@v0.0.2", "--reason", "superseded"]) == 0
    assert "model@v0.0.2!" in tags(repo)
    assert "already retired" in cli_error(capsys, ["retire", "model@v0.0.2"], code=6)
    assert "is retired and cannot be promoted" in cli_error(
        capsys, ["promote", "model@v0.0.2", "--stage", "dev"], code=6
    )
    listed = {r["version"]: r["retired"] for r in api.list_versions()}
    assert listed == {"v0.0.2": True, "v0.0.1": False}
    # HEAD is v0.0.2's commit: a second version there would break `gto show` (one a commit)
    before = snapshot(repo)
    assert cli_error(capsys, ["register"], code=6) == (
        "error: HEAD is already registered as model@v0.0.2, which is retired; commit a change "
        "to register a new version"
    )
    assert snapshot(repo) == before
    shown = subprocess.run([str(BIN / "gto"), "show", "--json"], cwd=repo, capture_output=True)
    assert shown.returncode == 0, shown.stderr


# -- reading: list, show, history, and agreement with GTO and DVC ----------------------------
def test_list_agrees_with_gto_show(repo: Path):
    api.promote("model@v0.0.1", stage="prod")
    api.promote("model@v0.0.2", stage="dev")
    api.promote("model@v0.0.2", stage="prod", force=True, reason="x")
    api.rollback(stage="prod")
    ours = {r["version"]: sorted(r["stages"]) for r in api.list_versions()}
    shown = json.loads(
        subprocess.run(
            [str(BIN / "gto"), "show", "model", "--json"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    theirs = {v["version"]: sorted(s["stage"] for s in v["stages"]) for v in shown}
    assert ours == theirs == {"v0.0.1": ["prod"], "v0.0.2": ["dev"]}


def test_show_and_history(repo: Path, capsys):
    api.promote("model@v0.0.1", stage="prod")
    assert cli.main(["show", "model@v0.0.1", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["card"]["model"]["md5"] == shown["lineage"]["model"]["md5"]
    assert [e["event"] for e in shown["events"]] == ["register", "promote"]
    assert cli.main(["history"]) == 0
    out = capsys.readouterr().out
    assert "model#prod#1" in out and "model@v0.0.2" in out
    assert cli.main(["list"]) == 0
    assert "v0.0.1   prod" in capsys.readouterr().out
    # Issue 13, item 23: show's text carries the lineage --json has (data and params) ...
    assert cli.main(["show", "model@v0.0.1"]) == 0
    text = capsys.readouterr().out
    assert f"train_md5={shown['lineage']['data']['train_md5']}" in text
    assert "source.kind=breast_cancer" in text and " train.l2=0.001 " in text
    # ... and history's says which promotion was forced, why, and where a rollback came from
    api.promote("model@v0.0.2", stage="prod", force=True, reason="try it")  # fails the gate
    api.rollback(stage="prod")
    assert cli.main(["history"]) == 0
    rows = capsys.readouterr().out.splitlines()
    forced = next(r for r in rows if "model#prod#2" in r)
    assert "forced; previous v0.0.1; reason: try it" in forced
    assert "from v0.0.2" in next(r for r in rows if "model#prod#3" in r)
    assert cli.main(["show", "model@v0.0.2"]) == 0
    assert "(forced; previous v0.0.1; reason: try it)" in capsys.readouterr().out
    # Issue 13, item 23: the gate's metric is listed even when four others sort before it.
    set_params(repo, **{"registry.gate.metric": "roc_auc"})
    assert cli.main(["list"]) == 0
    header = capsys.readouterr().out.splitlines()[0].split()
    assert header[5:] == ["roc_auc", "accuracy", "f1", "log_loss"]


def test_history_and_show_print_control_characters_escaped(repo: Path, capsys, monkeypatch):
    """Issue 13, item 14: a tag's author and message come from whoever pushed it; escape
    sequences in them must not reach the terminal."""
    evil = "Eve \x1b]0;owned\x07\x1b[2J\u202e"
    monkeypatch.setenv("GIT_COMMITTER_NAME", evil)
    api.promote("model@v0.0.1", stage="prod", force=True, reason="ok\x1b[31m\nforged line")
    for argv in (["history"], ["show", "model@v0.0.1"]):
        assert cli.main(argv) == 0
        out = capsys.readouterr().out
        assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out
        # Issue 13, item 23: the text says what --json says: forced, and why.
        assert "reason: ok\\x1b[31m\\nforged line" in out
        if argv == ["history"]:
            assert "Eve \\x1b]0;owned\\x07\\x1b[2J\\u202e" in out  # shown, escaped
    assert cli.main(["history", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert any(r["author"].startswith(evil) for r in rows)  # JSON keeps the true value


# -- get ---------------------------------------------------------------------------------
def test_get_matches_dvc_artifacts_get(repo: Path, tmp_path: Path):
    api.promote("model@v0.0.1", stage="prod")
    info, md5 = api.get(stage="prod", output=tmp_path / "ours.npz")
    assert info.version == "v0.0.1" and md5 == lock_md5(repo, "model@v0.0.1")
    dvc(repo, "artifacts", "get", ".", "model", "--stage", "prod", "-o", str(tmp_path / "dvc.npz"))
    assert (tmp_path / "ours.npz").read_bytes() == (tmp_path / "dvc.npz").read_bytes()
    assert md5_bytes((tmp_path / "ours.npz").read_bytes()) == md5
    # the workspace still holds v0.0.2's model
    assert md5_bytes((repo / "models/model.npz").read_bytes()) == lock_md5(repo)


def test_get_refuses_tampered_bytes_and_writes_nothing(repo: Path, tmp_path: Path, capsys):
    cached = (
        repo
        / ".dvc/cache/files/md5"
        / lock_md5(repo, "model@v0.0.1")[:2]
        / lock_md5(repo, "model@v0.0.1")[2:]
    )
    cached.chmod(0o644)
    cached.write_bytes(cached.read_bytes()[:-1] + b"X")
    out = tmp_path / "m.npz"
    assert "does not match" in cli_error(
        capsys, ["get", "--version", "v0.0.1", "-o", str(out)], code=5
    )
    assert not out.exists()
    assert "no version of model holds stage 'prod'" in cli_error(
        capsys, ["get", "--stage", "prod", "-o", str(out)], code=6
    )
    assert "name the version: NAME@vX.Y.Z, --stage S or --version V" in cli_error(
        capsys, ["get", "-o", str(out)], code=2
    )
    assert "name the version once" in cli_error(
        capsys, ["get", "model@v0.0.1", "--stage", "prod", "-o", str(out)], code=2
    )
    assert not out.exists()


def test_get_takes_name_at_version_as_the_other_commands_do(repo: Path, tmp_path: Path):
    """Issue 13, item 23: get, predict, monitor and make-batch took only --version."""
    assert cli.main(["get", "model@v0.0.1", "-o", str(tmp_path / "a.npz")]) == 0
    assert cli.main(["get", "--version", "v0.0.1", "-o", str(tmp_path / "b.npz")]) == 0
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    assert md5_bytes((tmp_path / "a.npz").read_bytes()) == lock_md5(repo, "model@v0.0.1")


# -- checkout ----------------------------------------------------------------------------
def test_checkout_moves_code_and_data(repo: Path):
    info = api.checkout("model@v0.0.1")
    assert git(repo, "rev-parse", "HEAD").stdout.strip() == info.commit
    assert md5_bytes((repo / "models/model.npz").read_bytes()) == lock_md5(repo, "model@v0.0.1")
    assert "l2: 0.001" in (repo / "params.yaml").read_text()


def test_checkout_refuses_to_lose_work(repo: Path, capsys):
    (repo / "params.yaml").write_text((repo / "params.yaml").read_text() + "\n# note\n")
    before = snapshot(repo)
    assert "uncommitted changes in params.yaml would be lost" in cli_error(
        capsys, ["checkout", "model@v0.0.1"], code=7
    )
    assert snapshot(repo) == before
    api.checkout("model@v0.0.1", force=True)
    assert "# note" not in (repo / "params.yaml").read_text()


def test_checkout_refuses_to_overwrite_a_changed_model(repo: Path, capsys):
    """A DVC output changed in the workspace (not in git) is unsaved work too."""
    bundle = repo / "models/model.npz"
    bundle.write_bytes(bundle.read_bytes() + b"retrained by hand")
    before = snapshot(repo)
    err = cli_error(capsys, ["checkout", "model@v0.0.1"], code=7)
    assert "uncommitted changes in models/model.npz would be lost" in err
    assert snapshot(repo) == before


def test_checkout_with_missing_data_names_the_file_and_changes_nothing(repo: Path, capsys):
    md5 = lock_md5(repo, "model@v0.0.1")
    (repo / ".dvc/cache/files/md5" / md5[:2] / md5[2:]).unlink()
    before = snapshot(repo)
    err = cli_error(capsys, ["checkout", "model@v0.0.1"], code=5)
    assert "models/model.npz of model@v0.0.1 is not in the DVC cache and no DVC remote" in err
    assert snapshot(repo) == before


def local_remote(repo: Path, store: Path) -> Path:
    dvc(repo, "remote", "add", "--local", "-d", "store", str(store))
    dvc(repo, "push", "-q", "--all-tags")
    return store / "files/md5"


def test_checkout_repairs_a_corrupt_cache_object_from_the_remote(repo: Path, tmp_path: Path):
    objects = local_remote(repo, tmp_path / "store")
    md5 = lock_md5(repo, "model@v0.0.1")
    tamper(cache_object(repo, md5))
    info = api.checkout("model@v0.0.1")
    assert git(repo, "rev-parse", "HEAD").stdout.strip() == info.commit
    assert md5_bytes((repo / "models/model.npz").read_bytes()) == md5
    assert md5_bytes(cache_object(repo, md5).read_bytes()) == md5  # the cache is repaired
    assert md5_bytes((objects / md5[:2] / md5[2:]).read_bytes()) == md5
    assert "up to date" in dvc(repo, "status").stdout  # DVC's state agrees with the copy


def test_checkout_refuses_a_corrupt_object_it_cannot_repair(repo: Path, tmp_path: Path, capsys):
    md5 = lock_md5(repo, "model@v0.0.1")
    tamper(cache_object(repo, md5))
    before = snapshot(repo)
    err = cli_error(capsys, ["checkout", "model@v0.0.1"], code=5)
    assert f"models/model.npz of model@v0.0.1 (object {md5}): the copy in the DVC cache" in err
    assert "no DVC remote is configured" in err and "nothing else was changed" in err
    assert snapshot(repo) == before  # HEAD not moved, the old model in place
    assert not cache_object(repo, md5).exists()  # the bad copy is not kept under the name
    assert not list(repo.rglob("*.modelops-*"))  # no temporary copy left behind

    # The remote holds a corrupt copy too, and the cache none: fetched, hashed, refused.
    objects = local_remote(repo, tmp_path / "store")
    dvc(repo, "push", "-q")  # HEAD's objects; v0.0.1's model is absent from the cache
    bad = objects / md5[:2] / md5[2:]
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(b"not the model")
    before = snapshot(repo)
    err = cli_error(capsys, ["checkout", "model@v0.0.1"], code=5)
    assert "the copy on DVC remote 'store' has md5" in err and md5 in err
    assert snapshot(repo) == before
    assert not cache_object(repo, md5).exists()


def test_publish_hashes_a_directory_remote_it_skips(repo: Path, tmp_path: Path, capsys):
    git(tmp_path, "init", "-q", "--bare", str(tmp_path / "origin.git"))
    git(repo, "remote", "add", "origin", str(tmp_path / "origin.git"))
    objects = local_remote(repo, tmp_path / "store")  # pushed by hand: publish will skip it
    md5 = lock_md5(repo, "model@v0.0.1")
    tamper(objects / md5[:2] / md5[2:])
    err = cli_error(capsys, ["publish", "model@v0.0.1"], code=5)
    assert f"models/model.npz (object {md5}) is corrupt on DVC remote 'store'" in err
    assert git(repo, "ls-remote", "--tags", "origin").stdout == ""  # no tag was pushed


# -- the CLI itself ------------------------------------------------------------------------
def test_every_command_and_option_has_help():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == {
        "register", "promote", "rollback", "checkout", "get", "retire", "list", "show",
        "history", "exp", "report", "merge", "serve", "predict", "monitor", "make-batch",
        "publish", "gc", "verify", "ui", "logs", "tune",
    }  # fmt: skip
    parsers = dict(sub.choices)
    for group, dest in (("exp", "exp_command"), ("logs", "logs_command")):
        nested = next(a for a in parsers[group]._actions if a.dest == dest)
        parsers.update({f"{group} {k}": v for k, v in nested.choices.items()})
    for name, sp in parsers.items():
        assert sp.description, name
        for action in sp._actions:
            assert action.help, f"{name} {action.option_strings or action.dest}"


def test_errors_outside_a_repository(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert "not inside a git repository" in cli_error(capsys, ["list"], code=7)


def test_traceback_flag(repo: Path):
    with pytest.raises(ModelopsError):
        cli.main(["--traceback", "promote", "model@v9.9.9", "--stage", "dev"])


def test_report_against_the_prod_holder(repo: Path):
    api.promote("model@v0.0.1", stage="prod")
    for against in ("#prod", "model#prod"):
        data = api.report(against=against)
        assert data["against"]["ref"] == f"{against} (model@v0.0.1)"
        f1 = next(m for m in data["metrics"] if m["name"] == "f1")
        assert f1["old"] == message(repo, "model@v0.0.1")["metrics"]["f1"]
        assert data["gate"]["passed"] is False  # the workspace holds the weaker v0.0.2
    with pytest.raises(ModelopsError, match="no version of model holds stage 'dev'"):
        api.report(against="#dev")


def test_api_load_is_the_verified_path_the_commands_take(repo: Path):
    """versions.load (api.load) resolves a version or a stage, checks the bytes against
    dvc.lock at that version and loads them; a tampered cache object is refused."""
    import pandas as pd
    from sklearn.metrics import accuracy_score

    from modelops.errors import BundleError, RegistryError

    api.promote("model@v0.0.1", stage="prod", root=repo)
    prod = api.load("model", stage="prod", root=repo)
    assert (prod.info.version, prod.md5) == ("v0.0.1", lock_md5(repo, "model@v0.0.1"))
    test = pd.read_feather(repo / "data/prepared/test.arrow")
    # v0.0.2 is the workspace's model: the loaded one predicts what the evaluate stage scored
    v2 = api.load("model@v0.0.2", root=repo)
    accuracy = accuracy_score(test["diagnosis"], v2.model.predict(test))
    assert accuracy == pytest.approx(
        json.loads((repo / "metrics/metrics.json").read_text())["accuracy"]
    )
    with pytest.raises(RegistryError, match="stage 'qa' is not one of"):
        api.load("model", stage="qa", root=repo)
    tamper(cache_object(repo, prod.md5))
    with pytest.raises(BundleError, match="does not match"):
        api.load("model", stage="prod", root=repo)


def test_the_remembered_artifact_path_cannot_pass_wrong_bytes(repo: Path):
    """DVC's answer for where a commit's artifact lives is kept in .dvc/tmp; a junk memo is
    ignored, and one that names another output of dvc.lock loads nothing."""
    from modelops.errors import BundleError

    memo = repo / ".dvc/tmp/modelops-artifacts.json"
    memo.unlink(missing_ok=True)
    first = api.load("model@v0.0.1", root=repo)
    commit = first.info.commit
    assert json.loads(memo.read_text())[commit] == {"model": "models/model.npz"}
    for junk in ("{not json", "[1, 2]", json.dumps({commit: {"model": 7}})):
        memo.write_text(junk)
        assert api.load("model@v0.0.1", root=repo).md5 == first.md5  # DVC answered again
    memo.write_text(json.dumps({commit: {"model": "data/prepared/train.arrow"}}))
    with pytest.raises(BundleError):
        api.load("model@v0.0.1", root=repo)


def test_filesystem_and_dvc_refusals_are_one_line_and_a_bug_exits_70(
    repo: Path, capsys, monkeypatch
):
    """A path the filesystem refuses and a broken dvc.yaml are the user's to fix (workspace,
    7); only what modelops did not foresee is a bug: its traceback, and 70, never 1."""
    (repo / "afile").write_text("not a directory")
    err = cli_error(capsys, ["get", "model@v0.0.1", "-o", str(repo / "afile/x.npz")], code=7)
    assert "afile" in err and not (repo / "afile/x.npz").exists()
    with open(repo / "dvc.yaml", "a") as f:
        f.write("\n  broken: [\n")
    git(repo, "commit", "-q", "-am", "a dvc.yaml DVC cannot parse")
    err = cli_error(capsys, ["register"], code=7)
    assert "dvc.yaml: not valid YAML (did not find expected node content); fix it" in err

    def bug(*args, **kwargs):
        raise RuntimeError("an unforeseen state")

    monkeypatch.setattr(api, "list_versions", bug)
    assert cli.main(["list"]) == 70
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: an unforeseen state" in err
    assert err.strip().endswith(
        "error: modelops list hit a bug (traceback above); please report it"
    )
