"""Ctrl-C (and SIGTERM) sent to real processes (issue 13, item 11): one ``interrupted:`` line,
exit 130, no traceback, and nothing half-done, for the stages (alone and under ``dvc
repro``), ``checkout``, ``merge`` and ``predict``.

Each process is stopped at a known place with ``MODELOPS_TEST_PAUSE=<point>:<file>``
(``modelops.interrupts.pause_for_test``, a hook for tests only): it creates the file and
waits until the test, having sent the signal, deletes it. Ctrl-C is sent to the whole
process group, as a terminal does; SIGTERM to the process alone, as ``kill`` does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelops import api, cli, interrupts
from modelops.bundle import load
from modelops.files import md5_file
from tests.helpers import copy_repo, dvc, git, set_params, tree_state

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def merging(base: Path, tmp_path_factory) -> Path:
    """The session's registered repo (model@v0.0.1 with l2 0.001, then v0.0.2 with l2 0.1 on
    main), plus branch ``side`` off v0.0.2 with l2 0.02, and main one commit further with
    unscaled features, so that merging ``side`` into main conflicts in dvc.lock and runs train."""
    repo = copy_repo(base, tmp_path_factory.mktemp("interrupts") / "repo")
    git(repo, "checkout", "-q", "-b", "side")
    set_params(repo, **{"train.l2": 0.02})
    dvc(repo, "repro")
    git(repo, "commit", "-q", "-am", "side: l2 0.02")
    git(repo, "checkout", "-q", "main")
    dvc(repo, "checkout")
    set_params(repo, **{"features.scale": False})
    dvc(repo, "repro")
    git(repo, "commit", "-q", "-am", "main: unscaled")
    return repo


@pytest.fixture
def repo(merging: Path, tmp_path: Path) -> Path:
    return copy_repo(merging, tmp_path / "repo")


def start(argv: list[str], cwd: Path, point: str, marker: Path) -> subprocess.Popen:
    """Run ``argv`` in a new process group, to pause at ``point`` (see the module doc)."""
    env = {**os.environ, "MODELOPS_TEST_PAUSE": f"{point}:{marker}"}
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_until(ready, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"never reached the pause point: {proc.communicate()}")
        time.sleep(0.02)


def interrupt(
    proc: subprocess.Popen,
    marker: Path,
    sig: int = signal.SIGINT,
    ready=None,
    release: bool = True,
) -> tuple[int, str, int]:
    """Wait at the pause point (and for ``ready``), signal, and let the paused process go on
    (``release``; else only once ``proc`` has exited); return the exit code, stderr, and
    the pid of the process that paused (``proc`` or one it started)."""
    wait_until(lambda: marker.exists() and marker.read_text(), proc)
    paused = int(marker.read_text())
    if ready is not None:
        wait_until(ready, proc)
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)  # Ctrl-C: the terminal signals the foreground group
    else:
        proc.send_signal(sig)
    if release:
        marker.unlink()
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        marker.unlink(missing_ok=True)
    return proc.returncode, err, paused


def last_line(err: str) -> str:
    assert "Traceback" not in err, err
    return err.strip().splitlines()[-1]


def leftovers(repo: Path) -> list[str]:
    """Temporary files and directories of ours anywhere in the workspace (atomic writes,
    checkout's staged copies, replaced directories)."""
    return sorted(
        p.relative_to(repo).as_posix()
        for p in repo.rglob(".*")
        if p.name.endswith((".tmp", ".old", ".modelops-checkout", ".modelops-old"))
        and not p.relative_to(repo).as_posix().startswith(".git/")
    )


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").stdout.strip()


# -- the hook itself -------------------------------------------------------------------------
def test_deferred_holds_a_signal_until_the_block_ends_even_with_other_threads():
    """Unit check of the mechanism the commands rely on: the signal, sent to the process
    while a helper thread is alive, is neither lost nor raised inside the block."""
    import threading

    stop = threading.Event()
    helper = threading.Thread(target=stop.wait, daemon=True)
    helper.start()
    steps = []
    try:
        with pytest.raises(interrupts.Finished), interrupts.deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # a handler would have run by now
            steps.append("block finished")
        assert steps == ["block finished"]
        # outside the block, Ctrl-C is an ordinary KeyboardInterrupt again
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
    finally:
        stop.set()


def test_any_command_interrupted_prints_one_line(monkeypatch, capsys):
    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "list_versions", stopped)
    assert cli.main(["list"]) == 130
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "interrupted: modelops list stopped\n")


# -- stages ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("point", "written"),
    [("train-computed", False), ("train-writing", True)],
)
def test_interrupted_stage_writes_all_its_outputs_or_none(
    repo: Path, tmp_path: Path, point: str, written: bool
):
    model, loss = tmp_path / "out/model.npz", tmp_path / "out/loss.json"
    argv = [sys.executable, "-m", "modelops.stages.train", "--data", "data/prepared"]
    argv += ["--model", str(model), "--loss", str(loss)]
    code, err, _ = interrupt(start(argv, repo, point, tmp_path / "paused"), tmp_path / "paused")
    assert code == 130, err
    if written:
        assert last_line(err) == (
            "interrupted: train stopped after writing all its outputs (DVC records them only "
            "for a stage that completes: `dvc repro` runs it again)"
        )
        assert sorted(p.name for p in model.parent.iterdir()) == ["loss.json", "model.npz"]
        assert load(model).schema.task == "classification"  # complete, not half-written
    else:
        assert last_line(err) == "interrupted: train stopped; nothing was written"
        assert not model.parent.exists() or not list(model.parent.iterdir())


def test_ctrl_c_in_a_stage_under_dvc_repro(repo: Path, tmp_path: Path):
    set_params(repo, **{"train.l2": 0.5})  # never run: train must run, not come from a cache
    lock = (repo / "dvc.lock").read_bytes()
    marker = tmp_path / "paused"
    proc = start([str(BIN / "dvc"), "repro"], repo, "train-computed", marker)
    code, err, _ = interrupt(proc, marker)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    # our stage's line, then DVC's own report of the stage's exit
    assert "interrupted: train stopped; nothing was written" in lines, err
    assert lines[-1].startswith("ERROR: failed to reproduce 'train'"), err
    # DVC runs the stage through $SHELL (/bin/sh when unset): bash execs the stage or passes
    # its 130 on; dash (/bin/sh on Debian) got the Ctrl-C too and re-raises it once the stage
    # has exited, so DVC sees -2. Either way the stage itself exited 130 after its line.
    assert lines[-1].endswith(("exited with 130", "exited with -2")), err
    assert code == 255  # DVC's exit code for a failed stage
    assert (repo / "dvc.lock").read_bytes() == lock  # nothing recorded
    # DVC removed train's outputs before running it; our stage wrote none of them
    assert not (repo / "models/model.npz").exists()
    assert not (repo / "metrics/loss.json").exists()
    assert leftovers(repo) == []
    git(repo, "checkout", "--", ".")  # params back, and loss.json (kept in git)
    dvc(repo, "checkout")  # the model from the cache
    assert "up to date" in dvc(repo, "status").stdout


# -- checkout -------------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_checkout_interrupted_before_head_moves_changes_nothing(
    repo: Path, tmp_path: Path, sig: int
):
    before, state = head(repo), tree_state(repo)
    marker = tmp_path / "paused"
    proc = start(
        [str(BIN / "modelops"), "checkout", "model@v0.0.1"], repo, "checkout-staging", marker
    )
    copy = repo / "models/.model.npz.modelops-checkout"
    code, err, _ = interrupt(proc, marker, sig, ready=copy.exists)  # the copy is being made
    assert code == 130, err
    assert last_line(err) == (
        f"interrupted: checkout of model@v0.0.1 stopped before anything changed: HEAD is "
        f"still at {before[:8]}, and the copies it had made were removed"
    )
    assert len(err.strip().splitlines()) == 1
    assert head(repo) == before
    assert tree_state(repo) == state
    assert leftovers(repo) == []


def test_checkout_interrupted_after_head_moved_finishes_with_the_new_model(
    repo: Path, tmp_path: Path
):
    marker = tmp_path / "paused"
    argv = [str(BIN / "modelops"), "checkout", "model@v0.0.1"]
    code, err, _ = interrupt(start(argv, repo, "checkout-head-moved", marker), marker)
    assert code == 130, err
    assert last_line(err) == (
        "interrupted: checkout of model@v0.0.1 had completed when the interrupt came: "
        "HEAD and the outputs are at model@v0.0.1"
    )
    assert head(repo) == git(repo, "rev-parse", "model@v0.0.1^{commit}").stdout.strip()
    # not HEAD moved with the old model in place: the bytes dvc.lock records at v0.0.1
    from modelops.bundle import lock_md5

    expected = lock_md5(git(repo, "show", "HEAD:dvc.lock").stdout, "models/model.npz")
    assert md5_file(repo / "models/model.npz") == expected
    assert "up to date" in dvc(repo, "status").stdout
    assert leftovers(repo) == []


# -- merge ----------------------------------------------------------------------------------
def running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


@pytest.mark.parametrize(
    ("point", "sig"),
    [
        ("merge-started", signal.SIGINT),  # in modelops, between `git merge` and `dvc repro`
        ("train-computed", signal.SIGINT),  # in the train stage the merge's `dvc repro` runs
        # `kill` reaches modelops alone: the stage it started must not write after the undo
        ("train-computed", signal.SIGTERM),
    ],
)
def test_interrupted_merge_is_undone(repo: Path, tmp_path: Path, point: str, sig: int):
    before, state = head(repo), tree_state(repo)
    marker = tmp_path / "paused"
    proc = start([str(BIN / "modelops"), "merge", "side"], repo, point, marker)
    # Released only when modelops has exited: a stage still paused then would be an orphan
    # that goes on to write its outputs after the undo.
    code, err, paused = interrupt(proc, marker, sig, release=False)
    assert code == 130, err
    assert last_line(err) == (
        f"interrupted: merge of side stopped and undone: HEAD ({before[:8]}), dvc.lock and "
        f"the outputs are as before it"
    )
    assert not running(paused)  # the paused process: modelops, or the stage it started
    assert head(repo) == before
    assert not (repo / ".git/MERGE_HEAD").exists()
    assert git(repo, "status", "--porcelain").stdout == ""
    assert tree_state(repo) == state  # dvc.lock, params, metrics and the model bundle
    assert "up to date" in dvc(repo, "status").stdout
    assert leftovers(repo) == []


def test_merge_whose_repro_fails_is_undone(repo: Path):
    """`git merge --abort`, which merge used to advise here, fails once `dvc repro` has
    rewritten dvc.lock ("Entry 'dvc.lock' not uptodate"), and never restored the model."""
    before, state = head(repo), tree_state(repo)
    git(repo, "checkout", "-q", "-b", "broken", "main~1")
    # The stages run the installed package, not the repo's copy: break evaluate's command.
    dvc_yaml = repo / "dvc.yaml"
    text = dvc_yaml.read_text()
    assert "stages.evaluate --data" in text
    dvc_yaml.write_text(text.replace("stages.evaluate --data", "stages.nope --data"))
    # train runs first (and dvc.lock changes), then evaluate fails
    set_params(repo, **{"train.l2": 0.03})
    git(repo, "commit", "-q", "-am", "broken evaluate")
    git(repo, "checkout", "-q", "main")
    proc = subprocess.run(
        [str(BIN / "modelops"), "merge", "broken"], cwd=repo, capture_output=True, text=True
    )
    assert proc.returncode == 7, proc.stderr
    assert last_line(proc.stderr) == (
        "error: dvc repro failed on the merged tree (failed to reproduce 'evaluate'); the "
        f"merge was undone: HEAD ({before[:8]}), dvc.lock and the outputs are as before it"
    )
    assert head(repo) == before
    assert not (repo / ".git/MERGE_HEAD").exists()
    assert git(repo, "status", "--porcelain").stdout == ""
    assert tree_state(repo) == state
    assert "up to date" in dvc(repo, "status").stdout


# -- predict --------------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_predict_leaves_no_temp_file(repo: Path, tmp_path: Path, sig: int):
    batch, out = tmp_path / "batch.csv", tmp_path / "pred.csv"
    api.make_batch(version="v0.0.2", output=batch, rows=300, root=repo)
    out.write_text("earlier predictions\n")
    marker = tmp_path / "paused"
    argv = [str(BIN / "modelops"), "predict", "model@v0.0.2", "--input", str(batch)]
    argv += ["--output", str(out), "--force"]

    def temp_file_written() -> bool:
        return any(p.stat().st_size for p in tmp_path.glob(".pred.csv.*.tmp"))

    code, err, _ = interrupt(
        start(argv, repo, "predict-writing", marker), marker, sig, temp_file_written
    )
    assert code == 130, err
    assert last_line(err) == f"interrupted: predict stopped; {out} was left as it was"
    assert out.read_text() == "earlier predictions\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.csv", "pred.csv", "repo"]


# -- register -------------------------------------------------------------------------------
def test_ctrl_c_during_dvc_status_waits_for_it_and_registers_nothing(repo: Path, tmp_path: Path):
    """DVC writes its stage lock (.dvc/tmp/rwlock) during ``dvc status``: a Ctrl-C in that
    write left the file empty and every later DVC command refused the repository. The
    interrupt is held until the status is done; then the register stops with exit 130."""
    import json

    marker = tmp_path / "paused"
    before = git(repo, "tag").stdout
    code, err, _ = interrupt(
        start([str(BIN / "modelops"), "register"], repo, "dvc-status", marker), marker
    )
    assert code == 130, err
    assert last_line(err).startswith("interrupted")
    assert git(repo, "tag").stdout == before
    rwlock = repo / ".dvc/tmp/rwlock"
    if rwlock.exists():  # whole (it parses), and nothing still holds it
        assert not any(json.loads(rwlock.read_text()).values())
    assert "up to date" in dvc(repo, "status").stdout
    again = subprocess.run([str(BIN / "modelops"), "register"], cwd=repo, capture_output=True)
    assert again.returncode == 0, again.stderr
