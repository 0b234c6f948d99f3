"""`modelops list` on a repository with 1,000 registry tags (target < 1 s);
`gto show` on the same tags is the baseline measured in the same run."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import tempfile
from pathlib import Path

from common import BIN, machine, record, time_commands, verdict

VERSIONS = 400  # 400 registrations
ASSIGNMENTS = 600  # + 600 stage assignments = 1,000 tags
REPEATS = 5


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, stdout=subprocess.DEVNULL)


def build(repo: Path) -> None:
    env_free = {
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.invalid",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    }
    os.environ.update(env_free)
    git(repo, "init", "-q", "-b", "main")
    (repo / "dvc.yaml").write_text(
        "artifacts:\n  model:\n    path: models/model.npz\n    type: model\n"
    )
    (repo / "params.yaml").write_text("{}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "init")
    commits = []
    for i in range(VERSIONS):
        git(repo, "commit", "-q", "--allow-empty", "-m", f"c{i}")
        commits.append(
            subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True
            ).stdout.strip()
        )
    tag(repo, commits, git)


def tag(repo: Path, commits: list[str], run) -> None:
    """A version tag per commit (with its lineage) and ASSIGNMENTS stage tags spread over
    them: the registry both the list and the web-page benchmarks read."""
    for i, commit in enumerate(commits):
        version = f"v0.{i // 100}.{i % 100}"
        lineage = {
            "action": "register",
            "version": version,
            "metrics": {"accuracy": 0.9 + i / 1e4, "f1": 0.8 + i / 1e4},
        }
        message = f"Register\n\n{json.dumps(lineage)}"
        run(repo, "tag", "-a", f"model@{version}", commit, "-m", message)
    stages = ["dev", "staging", "prod"]
    for n in range(ASSIGNMENTS):
        stage = stages[n % 3]
        run(
            repo,
            "tag",
            "-a",
            f"model#{stage}#{n + 1}",
            commits[(n * 7) % len(commits)],
            "-m",
            "Promote",
        )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        build(repo)
        n_tags = len(
            subprocess.run(
                ["git", "tag"], cwd=repo, capture_output=True, text=True, check=True
            ).stdout.split()
        )
        t = time_commands(
            {
                "modelops list": [str(BIN / "modelops"), "list"],
                "modelops list --json": [str(BIN / "modelops"), "list", "--json"],
                "gto show": [str(BIN / "gto"), "show", "model"],
            },
            REPEATS,
            cwd=repo,
        )
    rows = "\n".join(f"| `{k}` | {v:.3f} s |" for k, v in t.items())
    ratio = t["modelops list"] / t["gto show"]
    record(
        "Registry: modelops list with 1,000 tags",
        f"""
{n_tags} annotated registry tags ({VERSIONS} versions, {ASSIGNMENTS} stage assignments);
median of {REPEATS} alternating runs, {dt.date.today()}, {machine()}.

| command | median wall time |
|---|---|
{rows}

`modelops list` {"meets" if t["modelops list"] < 1.0 else "does NOT meet"} the < 1 s target;
ratio to `gto show` (baseline, same tags): **{ratio:.2f}**.
""",
        rows=[
            (
                f"`modelops list` with {n_tags:,} registry tags",
                f"{t['modelops list']:.2f} s (`gto show`: {t['gto show']:.2f} s)",
                f"< 1 s {verdict(t['modelops list'] < 1.0)}",
            )
        ],
    )


if __name__ == "__main__":
    main()
