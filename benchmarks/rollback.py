"""Rolling back between two registered versions whose bundles are ~200 MB: `modelops checkout`
against `git checkout <tag> && dvc checkout`, alternating, medians (issue 8: ratio <= 1.2).

The bundle gets its size the way wide data gives it: 2,500 numeric features, so the drift
reference sample the bundle carries (up to 10,000 values per feature) is ~200 MB."""

from __future__ import annotations

import datetime as dt
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import BIN, HERE, machine, record, sh, verdict
from pipeline import set_data
from ruamel.yaml import YAML

ROUNDS = 3
SYNTHETIC = {"n_rows": 12_500, "n_features": 2_500, "n_informative": 10}


def set_train(repo: Path, **values) -> None:
    rt = YAML()
    params = rt.load(repo / "params.yaml")
    params["train"].update(values)
    rt.dump(params, repo / "params.yaml")


def main() -> None:
    dvc, modelops = str(BIN / "dvc"), str(BIN / "modelops")
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        subprocess.run(["git", "clone", "-q", str(HERE.parent), str(repo)], check=True)
        set_data(repo, {"source": "synthetic", "synthetic": SYNTHETIC})
        for l2 in (0.001, 0.01):
            set_train(repo, l2=l2)
            sh(repo, dvc, "repro", "-q")
            sh(repo, "git", "commit", "-qam", f"wide data, l2 {l2}")
            sh(repo, modelops, "register")
        size = (repo / "models/model.npz").stat().st_size
        times: dict[str, list[float]] = {"modelops checkout": [], "git + dvc checkout": []}

        def clock(name: str, *commands: list[str]) -> None:
            t = time.perf_counter()
            for argv in commands:
                sh(repo, *argv)
            times[name].append(time.perf_counter() - t)

        for _ in range(ROUNDS):
            for tag in ("model@v0.0.1", "model@v0.0.2"):
                clock("modelops checkout", [modelops, "checkout", tag])
            for tag in ("model@v0.0.1", "model@v0.0.2"):
                clock("git + dvc checkout", ["git", "checkout", "-q", tag], [dvc, "checkout", "-q"])
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["modelops checkout"] / med["git + dvc checkout"]
    rows = "\n".join(f"| {k} | {v:.2f} s |" for k, v in med.items())
    record(
        "Rollback: modelops checkout vs git checkout + dvc checkout, 200 MB bundle",
        f"""
Two registered versions (`train.l2` 0.001 and 0.01) of a model trained on
{SYNTHETIC["n_rows"]:,} rows x {SYNTHETIC["n_features"]:,} features; the bundle is
{size / 2**20:.0f} MB. Each run switches the workspace to the other version; medians of
{2 * ROUNDS} switches each, alternating; {dt.date.today()}, {machine()}. `modelops checkout`
also checks the workspace for unsaved work and the DVC cache for every output first.

| command | median per switch |
|---|---|
{rows}

Ratio: **{ratio:.2f}** (target ≤ 1.2: {"met" if ratio <= 1.2 else "NOT met"}).
""",
        rows=[
            (
                f"`modelops checkout` vs `git checkout && dvc checkout`, {size / 2**20:.0f} MB "
                "bundle",
                f"{ratio:.2f}× ({med['modelops checkout']:.2f} s vs "
                f"{med['git + dvc checkout']:.2f} s)",
                f"≤ 1.2 {verdict(ratio <= 1.2)}",
            )
        ],
    )


if __name__ == "__main__":
    main()
