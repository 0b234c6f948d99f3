"""What the tests share: git and DVC in temp projects, params edits, a live server, small
fitted bundles on messy CSVs, the S3 remote recipe, and the one-line error check.

Fixtures live in conftest.py; plain functions live here, so a test module imports them
from one place and never from another test module.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command (never through a shell) and capture its output as text."""
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def project_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    return [f for f in out if f and (ROOT / f).is_file()]


def make_project(dest: Path) -> Path:
    """Copy the project's files into ``dest`` and commit them in a fresh git repo."""
    for rel in project_files():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    run(["git", "init", "-q", "-b", "main"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-q", "-m", "project"], dest)
    return dest


def copy_repo(src: Path, dest: Path) -> Path:
    """A private copy of a session repository (git, DVC cache and workspace)."""
    shutil.copytree(src, dest, symlinks=True)
    return dest


def dvc(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run([str(Path(sys.executable).parent / "dvc"), *args], repo, check=check)


def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(["git", *args], repo, check=check)


def tree_state(repo: Path) -> dict[str, bytes]:
    """Every file under ``repo`` except .git and DVC's own bookkeeping, with contents."""
    state = {}
    for path in sorted(repo.rglob("*")):
        rel = path.relative_to(repo).as_posix()
        if path.is_file() and not rel.startswith((".git/", ".dvc/tmp/", ".dvc/cache/")):
            state[rel] = path.read_bytes()
    return state


def set_params(repo: Path, **changes) -> None:
    """Edit params.yaml in place, keeping comments: set_params(repo, **{"train.lr": 0.1})."""
    yaml = YAML()
    path = repo / "params.yaml"
    doc = yaml.load(path.read_text())
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = doc
        for key in parents:
            node = node[key]
        node[last] = value
    with path.open("w") as f:
        yaml.dump(doc, f)


def cli_error(capsys, argv: list[str], code: int) -> str:
    """Run the CLI in process; it must exit ``code`` (errors.py's table) with one `error:`
    line and no traceback."""
    from modelops import cli

    assert cli.main(argv) == code
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


# -- the registry's tags ----------------------------------------------------------------
def tags(repo: Path) -> list[str]:
    return sorted(git(repo, "tag", "-l").stdout.split())


def snapshot(repo: Path):
    return tags(repo), git(repo, "rev-parse", "HEAD").stdout, tree_state(repo)


def message(repo: Path, tag: str) -> dict:
    text = git(repo, "tag", "-l", "--format=%(contents)", tag).stdout
    return json.loads(text.partition("\n\n")[2])


# -- DVC cache objects ------------------------------------------------------------
def tamper(path: Path) -> None:
    """Flip one byte in place, keeping the inode, the size and the mtime: DVC's state
    database (inode, mtime, size) cannot tell."""
    st = path.stat()
    path.chmod(0o644)
    with open(path, "r+b") as f:
        f.seek(st.st_size // 2)
        byte = f.read(1)
        f.seek(st.st_size // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    path.chmod(st.st_mode)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_ino == st.st_ino and path.stat().st_mtime_ns == st.st_mtime_ns


def cache_object(repo: Path, md5: str) -> Path:
    return repo / ".dvc/cache/files/md5" / md5[:2] / md5[2:]


# -- serving --------------------------------------------------------------------------------
PROCS: dict[str, subprocess.Popen] = {}  # url -> server process


def rss(url: str) -> int:
    """Resident memory of the server at ``url``, in bytes (Linux)."""
    status = Path(f"/proc/{PROCS[url].pid}/status").read_text()
    return int(next(ln for ln in status.splitlines() if ln.startswith("VmRSS:")).split()[1]) * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(repo: Path, token: str | None = None, what: tuple[str, ...] = ("--stage", "prod")):
    """``modelops serve`` (of prod, or ``what``) on a free loopback port; yields its URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MODELOPS_TOKEN"}
    if token:
        env["MODELOPS_TOKEN"] = token
    log = open(repo.parent / f"server-{port}.log", "w")  # noqa: SIM115 (outlives this frame)
    proc = PROCS[f"http://127.0.0.1:{port}"] = subprocess.Popen(
        [str(BIN / "modelops"), "serve", *what, "--port", str(port)],
        cwd=repo,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError((repo.parent / f"server-{port}.log").read_text())
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError("server did not start in 60 s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


# -- bundles on messy CSVs ----------------------------------------------------------------------
def kinds() -> list[tuple[str, str, dict]]:
    """(train.model, task, extra train params) for every model kind on every task it supports:
    the numpy models by hand, every allow-listed scikit-learn estimator from the list itself."""
    from modelops.models.sklearn_estimators import ESTIMATORS

    cases = [
        ("logistic_regression", "binary", {}),
        ("logistic_regression", "multiclass", {}),
        ("linear_regression", "regression", {"solver": "closed_form"}),
        ("linear_regression", "regression", {"solver": "gd"}),
    ]
    for name, tasks in ESTIMATORS.items():
        if "classification" in tasks:
            cases += [(name, "binary", {}), (name, "multiclass", {})]
        if "regression" in tasks:
            cases.append((name, "regression", {}))
    return cases


SMALL = {
    "random_forest": {"random_forest": {"n_estimators": 10}},
    "hist_gradient_boosting": {"hist_gradient_boosting": {"max_iter": 20}},
}


def messy_csv(path, task: str, n: int = 240):
    """A small CSV as users have them: an id column, a string feature, missing values, and
    string labels (two or three classes) or a numeric target."""
    import pandas as pd

    rng = np.random.default_rng(7)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    plan = rng.choice(["basic", "plus", "pro"], size=n)
    score = x1 - 0.5 * x2 + (plan == "pro") + 0.3 * rng.normal(size=n)
    if task == "binary":
        target = np.where(score > 0.3, "churned", "stayed")
    elif task == "multiclass":
        target = np.select([score < -0.3, score < 0.9], ["low", "mid"], "high")
    else:
        target = np.round(10 * score + 50, 3)
    frame = pd.DataFrame(
        {"id": [f"R{i:04d}" for i in range(n)], "x1": x1, "x2": x2, "plan": plan, "y": target}
    )
    frame.loc[::11, "x1"] = np.nan
    frame.loc[::13, "plan"] = None
    frame.to_csv(path, index=False)
    return path


def numbers(n: int, seed: int):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = 40 + X @ np.array([3.0, -2.0, 0.5]) + rng.normal(0, 4.0, n)
    return pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": y.round(1)})


def fitted_on(csv, model: str, **train):
    """A bundle of ``model`` fitted on the train split of ``csv``, and the test split."""
    from modelops import bundle, data, models, params
    from modelops.features import Preprocessor
    from modelops.profile import build_profile

    binary = {"positive_class": "churned"} if "churned" in csv.read_text() else {}
    p = params.validate(
        {
            "data": {"source": "csv", "path": str(csv), "target": "y", **binary},
            "train": {"model": model, "epochs": 50, **train, **SMALL.get(model, {})},
        }
    )
    tr, te, schema = data.prepare(p.data, p.split)
    pre = Preprocessor(schema.numeric, schema.categorical).fit(tr)
    X = pre.transform(tr, models.input_dtype(p.train))
    if schema.task == "classification":
        y = schema.encode_labels(tr[schema.target])
    else:
        y = tr[schema.target].to_numpy(dtype=np.float64)
    est = models.build(p.train, schema.task).fit(X, y)
    profile, arrays = build_profile(pre, tr, X, est, schema.task, schema.classes, 0)
    return bundle.Model(schema, pre, est, {"params": {}}, profile, arrays), te


# -- the model matrix's customers ---------------------------------------------------------
TASKS = ("binary", "multiclass", "regression")
LABELS = {"binary": ["churned", "stayed"], "multiclass": ["bronze", "gold", "silver"]}
TARGET = {"binary": "churn", "multiclass": "tier", "regression": "spend"}


def customers(task: str, n: int, seed: int):
    """Rows like a user's export: an id column, integers and floats with every spelling of
    missing, two string columns with gaps, and the target (string labels or a number)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n).astype(float)
    income = rng.normal(50, 15, n).round(2)
    plan = rng.choice(["basic", "plus", "pro"], n)
    region = rng.choice(["north", "south", "east", "west"], n)
    effect = pd.Series(plan).map({"basic": -1.0, "plus": 0.0, "pro": 1.0}).to_numpy()
    score = 0.04 * (age - 50) + 0.06 * (income - 50) + effect + rng.normal(0, 0.4, n)
    if task == "binary":
        target = np.where(score > 0.2, "churned", "stayed")
    elif task == "multiclass":
        target = np.select([score < -0.6, score < 0.7], ["bronze", "silver"], "gold")
    else:
        target = (200 + 30 * score + rng.normal(0, 3, n)).round(2)
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{seed:02d}{i:05d}" for i in range(n)],
            "age": age,
            "income": income,
            "plan": plan,
            "region": region,
            TARGET[task]: target,
        }
    ).astype({"age": object, "income": object, "plan": object})
    frame.loc[3::17, "age"] = "NA"
    frame.loc[5::19, "income"] = "?"
    frame.loc[2::23, "plan"] = None
    return frame


def task_params(task: str, model: str, train: dict) -> dict:
    metric = "r2" if task == "regression" else "f1"
    return {
        "data.path": f"data/raw/{task}.csv",
        "data.target": TARGET[task],
        "data.positive_class": "churned" if task == "binary" else None,
        "train.model": model,
        "train.solver": train.get("solver", "closed_form"),
        "paths.incoming": f"data/incoming/{task}",
        "registry.gate.metric": metric,
        "monitor.metric": metric,
    }


# -- the S3 remote ----------------------------------------------------------------------
def use_remote(repo: Path, s3, bucket: str, commit: bool = True) -> None:
    """The README's recipe: URL and endpoint in .dvc/config, credentials in config.local."""
    env = dict(os.environ, AWS_ACCESS_KEY_ID=s3.access_key, AWS_SECRET_ACCESS_KEY=s3.secret_key)
    proc = subprocess.run(
        [
            "make",
            "-s",
            "-o",
            ".venv/.installed",
            f"BIN={BIN}",
            "remote-s3",
            f"URL=s3://{bucket}/store",
            f"ENDPOINT={s3.endpoint}",
            "REGION=us-east-1",
        ],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert s3.secret_key not in proc.stdout + proc.stderr
    assert s3.secret_key not in (repo / ".dvc/config").read_text()
    assert s3.secret_key in (repo / ".dvc/config.local").read_text()
    if commit:
        git(repo, "commit", "-q", "-am", "use the team's S3 remote")


def bucket_of(repo: Path) -> str:
    """The bucket of the repo's S3 remote (config.local always has it: see `make remote-s3`)."""
    text = (repo / ".dvc/config.local").read_text()
    return next(w.split("s3://")[1].split("/")[0] for w in text.split() if "s3://" in w)
