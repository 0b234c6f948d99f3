"""Fixtures: an isolated HOME and git identity, temp copies of the project, and the expensive
repositories (reproduced; reproduced and registered) built once per session and copied by
each test that changes them.

End-to-end tests never touch the developer's checkout or its tags: they copy the project's
tracked files into a temp directory and make it its own git + DVC repository. The helpers
they share are in tests/helpers.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path

# Under xdist (make test: one worker per core) each worker and the processes it starts use
# one BLAS/OpenMP thread, as the stages do, instead of every worker's thread pools competing
# for the same cores. Set before numpy or scikit-learn is imported.
if "PYTEST_XDIST_WORKER" in os.environ:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")

# A shell that starts a job in the background without job control (`make test &` in a
# script) starts it with SIGINT ignored, and every process below inherits that; modelops keeps
# an ignored signal ignored, as nohup asks. The tests that press Ctrl-C on a stage, checkout or
# merge need the terminal's disposition, so the suite restores it for itself and its children.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

import pytest

from tests.helpers import copy_repo, dvc, git, make_project, set_params

# The slowest modules first, as the durations printed at the end of a run rank them. `make
# test` runs `--dist loadfile --no-loadscope-reorder`, which hands whole modules to the workers
# in collection order (xdist would otherwise start with the modules holding the most tests):
# with the long ones started first, the short ones fill the gaps at the end instead of one
# worker finishing a long module alone. A stale order costs balance, never correctness.
SLOWEST_FIRST = (
    "test_lifecycle_matrix_e2e.py",
    "test_remote_e2e.py",
    "test_experiments_e2e.py",
    "test_verify_e2e.py",
    "test_registry_e2e.py",
    "test_determinism.py",
    "test_pipeline_e2e.py",
    "test_serving_e2e.py",
    "test_interrupts_e2e.py",
    "test_stage_deps.py",
    "test_task_defaults_e2e.py",
    "test_ui_e2e.py",
    "test_monitoring_e2e.py",
)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto``: a worker per core, plus one unless only unit tests run (they do not wait).

    The end-to-end tests spend part of their time waiting (for a server or SeaweedFS to start,
    a DVC queue worker, the registry's one-second spacing between stage tags), which left ~30 %
    of a core idle on 2 cores; the extra worker fills it (README, "Development", has the
    measured times). PYTEST_XDIST_AUTO_NUM_WORKERS still decides when set."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist's own hook reads it
    cores = len(os.sched_getaffinity(0))
    unit_tests_only = "not e2e" in (config.getoption("markexpr") or "")  # make test-fast
    return cores if unit_tests_only else cores + 1


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: within a module


@pytest.fixture(scope="session", autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory):
    """HOME, git config and PATH for the whole session."""
    home = tmp_path_factory.mktemp("home")
    saved = dict(os.environ)
    os.environ.update(
        HOME=str(home),
        GIT_CONFIG_GLOBAL=str(home / ".gitconfig"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="Test Author",
        GIT_AUTHOR_EMAIL="author@example.invalid",
        GIT_COMMITTER_NAME="Test Author",
        GIT_COMMITTER_EMAIL="author@example.invalid",
        DVC_NO_ANALYTICS="1",
        # Stages run `python -m modelops.stages.*`: the interpreter running the tests.
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    (home / ".gitconfig").write_text("[init]\n\tdefaultBranch = main\n")
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh git + DVC repository holding a copy of this project (not yet reproduced)."""
    return make_project(tmp_path / "repo")


def built_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """A session repository of this worker's own. Under xdist every worker would build the
    same one: the first builds it in the directory the workers share, behind a file lock,
    and each worker copies that (copying takes a fraction of a second; building, seconds)."""
    own = tmp_path_factory.mktemp(name) / "repo"
    if "PYTEST_XDIST_WORKER" not in os.environ:
        build(own)
        return own
    from filelock import FileLock

    shared_root = tmp_path_factory.getbasetemp().parent
    shared = shared_root / f"shared-{name}"
    with FileLock(str(shared_root / f"shared-{name}.lock")):
        if not (shared / "done").exists():
            shutil.rmtree(shared, ignore_errors=True)
            build(shared / "repo")
            (shared / "done").touch()
    return copy_repo(shared / "repo", own)


@pytest.fixture(scope="session")
def reproduced(tmp_path_factory) -> Path:
    """The project reproduced and committed. Session-wide: copy it before changing it."""

    def build(repo: Path) -> None:
        make_project(repo)
        dvc(repo, "repro")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "--allow-empty", "-m", "reproduce")

    return built_once(tmp_path_factory, "reproduced", build)


@pytest.fixture(scope="session")
def base(reproduced: Path, tmp_path_factory) -> Path:
    """A reproduced project with v0.0.1 (l2 0.001) and v0.0.2 (l2 0.1, lower F1) registered.
    Session-wide: copy it before changing it."""
    from modelops import api

    def build(repo: Path) -> None:
        copy_repo(reproduced, repo)
        api.register(root=repo)
        set_params(repo, **{"train.l2": 0.1})
        dvc(repo, "repro")
        git(repo, "commit", "-q", "-am", "more regularisation")
        api.register(root=repo)

    return built_once(tmp_path_factory, "registry", build)


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    """One real S3 server (SeaweedFS) for the session; each test takes a bucket of its own."""
    from tests.seaweedfs import SeaweedFS

    server = SeaweedFS(tmp_path_factory.mktemp("seaweed")).start()
    yield server
    server.kill()  # nothing in it is kept
