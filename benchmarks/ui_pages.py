"""`modelops ui`: each page's server time on a registry with 1,000 tags (400 versions, 600
stage assignments), against one `git for-each-ref` over the same tags (the read every page
makes once) measured in the same run, alternating. Target: every page at most 5x.

Each of the 400 version commits holds the project's own params.yaml, dvc.yaml, plot files and
model card, and metrics and drift files of its own, so a page reads what it would read in a
real repository: the version page reads every version's drift file."""

from __future__ import annotations

import datetime as dt
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import registry_list
from common import BIN, HERE, machine, record, sh, verdict

VERSIONS = registry_list.VERSIONS
ASSIGNMENTS = registry_list.ASSIGNMENTS
REPEATS = 15
TARGET = 5.0
SHARED = [  # the project's committed files, the same at every version
    "params.yaml",
    "dvc.yaml",
    "metrics/loss.json",
    "metrics/card.json",
    "metrics/plots/roc.json",
    "metrics/plots/precision_recall.json",
    "metrics/plots/confusion.json",
    "metrics/plots/importance.json",
    "metrics/plots/predicted_vs_actual.json",
]


def build(repo: Path) -> None:
    """400 commits through `git fast-import` (each with its own metrics and drift), a tag per
    version and 600 stage assignments, then `dvc init` for the experiments page."""
    sh(repo, "git", "init", "-q", "-b", "main")
    files = {p: (HERE.parent / p).read_bytes() for p in SHARED if (HERE.parent / p).exists()}
    stream = []
    for i in range(VERSIONS):
        metrics = {"accuracy": 0.9 + i / 1e4, "f1": 0.8 + i / 1e4, "roc_auc": 0.95}
        drift = {
            "batches": 1,
            "alerts": i % 3 == 0,
            "warnings": 0,
            "files": {"week.csv": {"max_psi": (i % 17) / 40, "verdict_code": 0}},
        }
        own = {
            "metrics/metrics.json": json.dumps(metrics).encode(),
            "metrics/drift.json": json.dumps(drift).encode(),
        }
        stream.append(f"commit refs/heads/main\nmark :{i + 1}\n".encode())
        stream.append(f"committer bench <b@example.invalid> {1_700_000_000 + i} +0000\n".encode())
        stream.append(b"data 2\nc\n")
        if i:
            stream.append(f"from :{i}\n".encode())
        for path, data in {**(files if i == 0 else {}), **own}.items():
            stream.append(f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=b"".join(stream), check=True)
    sh(repo, "git", "checkout", "-q", "main")
    commits = sh(repo, "git", "rev-list", "--reverse", "main").split()
    registry_list.tag(repo, commits, lambda cwd, *args: sh(cwd, "git", *args))
    sh(repo, str(BIN / "dvc"), "init", "-q")
    sh(repo, "git", "commit", "-qm", "dvc init")


def main() -> None:
    from dvc.repo import Repo
    from fastapi.testclient import TestClient

    from modelops.registry.state import FOR_EACH_REF_FORMAT
    from modelops.ui.app import create_app

    # the very call every page makes: names, objects, taggers, times and messages
    for_each_ref = ["git", "for-each-ref", "refs/tags", FOR_EACH_REF_FORMAT]

    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        build(repo)
        n_tags = len(sh(repo, "git", "tag").split())
        client = TestClient(create_app(repo), base_url="http://127.0.0.1:8080")
        newest, other = "v0.3.99", "v0.3.98"
        pages = {
            "board": "/index.html",
            "version page": f"/versions/model@{newest}.html",
            "compare page": f"/compare/model@{other}...model@{newest}.html",
            "experiments page": "/experiments.html",
        }
        samples: dict[str, list[float]] = {
            "git for-each-ref": [],
            "dvc exp show": [],
            **{k: [] for k in pages},
        }
        for i in range(REPEATS + 1):  # the first round warms up
            start = time.perf_counter()
            subprocess.run(for_each_ref, cwd=repo, check=True, stdout=subprocess.DEVNULL)
            base = time.perf_counter() - start
            start = time.perf_counter()
            with Repo(str(repo)) as dvc_repo:  # what the experiments page asks DVC for
                dvc_repo.experiments.show()
            dvc_alone = time.perf_counter() - start
            if i:
                samples["git for-each-ref"].append(base)
                samples["dvc exp show"].append(dvc_alone)
            for name, url in pages.items():
                start = time.perf_counter()
                answer = client.get(url)
                took = time.perf_counter() - start
                assert answer.status_code == 200, (url, answer.text[:500])
                assert 'data-exp="main"' in answer.text or name != "experiments page"
                if i:
                    samples[name].append(took)
    t = {name: statistics.median(v) for name, v in samples.items()}
    base = t["git for-each-ref"]
    rows = "\n".join(
        f"| {name} | {v * 1000:.1f} ms | {v / base:.2f} | "
        f"{'met' if v / base <= TARGET else '**not met**'} |"
        for name, v in t.items()
        if name in pages
    )
    exp_page, exp_dvc = t["experiments page"], t["dvc exp show"]
    page_ok = all(v / base <= TARGET for name, v in t.items() if name in pages)
    record(
        "Web pages: server time with 1,000 tags",
        f"""
{n_tags} annotated registry tags ({VERSIONS} versions, each commit with its own metrics and
drift files; {ASSIGNMENTS} stage assignments). Server time: a request through the app
in-process (FastAPI's TestClient: routing, reading, rendering). Baseline: one
`git for-each-ref refs/tags` over the same tags with the format the registry reads
(names, objects, taggers, times, messages), as a process. Median of {REPEATS} alternating
rounds, {dt.date.today()}, {machine()}.

`git for-each-ref` (baseline): {base * 1000:.1f} ms; DVC's default `Repo.experiments.show()`
(what `dvc exp show` runs) on the same repository, in-process: {exp_dvc * 1000:.1f} ms. The
repository has no experiments: the experiments page lists its baseline commit.

| page | server time | ratio to baseline | target ≤ {TARGET:g}× |
|---|---|---|---|
{rows}

The experiments page asks DVC for `sha_only` (`dvc exp show --sha`) and names the baseline
by the current branch itself: DVC's default (what `dvc exp show` runs) names it by reading
every tag (`dvc.repo.experiments.utils.describe`, one object read per tag through dulwich),
{exp_dvc / exp_page:.1f}× the page's whole time here.
""",
        rows=[
            (
                f"`modelops ui` server time per page with {n_tags:,} tags vs one "
                f"`git for-each-ref` over them ({base * 1000:.1f} ms)",
                ", ".join(
                    f"{name.removesuffix(' page')} {v / base:.2f}×"
                    for name, v in t.items()
                    if name in pages
                ),
                f"≤ {TARGET:g}× {verdict(page_ok)}",
            )
        ],
    )


if __name__ == "__main__":
    main()
