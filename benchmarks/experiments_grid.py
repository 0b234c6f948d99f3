"""A 4-experiment grid run by `dvc queue start -j 2` against the same grid with `-j 1`
(one after another), in the same run; plus the per-experiment overhead of `dvc exp run`
over running the three stage commands directly."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from pathlib import Path

from common import BIN, machine, record, reproduced_copy, sh

DVC = str(BIN / "dvc")


def wait_queue(repo: Path) -> None:
    while True:
        status = sh(repo, DVC, "queue", "status")
        if "Queued" not in status and "Running" not in status:
            if "Failed" in status:
                raise SystemExit(f"an experiment failed:\n{status}")
            return
        time.sleep(0.5)


def grid(repo: Path, l2_values: list[str], jobs: int) -> float:
    sh(
        repo,
        DVC,
        "exp",
        "run",
        "--queue",
        "-S",
        f"train.l2={','.join(l2_values[:2])}",
        "-S",
        "train.epochs=200,400",
    )
    start = time.perf_counter()
    sh(repo, DVC, "queue", "start", "-j", str(jobs))
    wait_queue(repo)
    return time.perf_counter() - start


def main() -> None:
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        reproduced_copy(repo)
        # distinct values per batch, so DVC's run-cache cannot skip any stage
        parallel = grid(repo, ["0.0011", "0.0012"], jobs=2)
        serial = grid(repo, ["0.0021", "0.0022"], jobs=1)
        parallel2 = grid(repo, ["0.0031", "0.0032"], jobs=2)
        serial2 = grid(repo, ["0.0041", "0.0042"], jobs=1)
        # one experiment in the workspace vs its three stages run directly
        start = time.perf_counter()
        sh(repo, DVC, "exp", "run", "-S", "train.l2=0.0051")
        one_exp = time.perf_counter() - start
        py = str(BIN / "python")
        start = time.perf_counter()
        sh(repo, py, "-m", "modelops.stages.prepare", "--out", "data/prepared")
        sh(
            repo,
            py,
            "-m",
            "modelops.stages.train",
            "--data",
            "data/prepared",
            "--model",
            "models/model.npz",
            "--loss",
            "metrics/loss.json",
        )
        sh(
            repo,
            py,
            "-m",
            "modelops.stages.evaluate",
            "--data",
            "data/prepared",
            "--model",
            "models/model.npz",
            "--metrics",
            "metrics/metrics.json",
            "--plots",
            "metrics/plots",
            "--card",
            "metrics/card",
            "--lock",
            "/nonexistent",
        )
        stages = time.perf_counter() - start
    p, s = (parallel + parallel2) / 2, (serial + serial2) / 2
    record(
        "Experiments: 4-point grid, -j 2 vs one after another",
        f"""
Bundled breast-cancer data, logistic regression; two batches of each, alternating
(-j 2, -j 1, -j 2, -j 1), each batch with fresh param values; {dt.date.today()}, {machine()}.

| run | wall time (mean of 2) |
|---|---|
| 4 experiments, `dvc queue start -j 2` | {p:.1f} s ({parallel:.1f}, {parallel2:.1f}) |
| 4 experiments, `dvc queue start -j 1` (baseline) | {s:.1f} s ({serial:.1f}, {serial2:.1f}) |

Ratio -j 2 / -j 1: **{p / s:.2f}**.

One `dvc exp run` in the workspace: {one_exp:.1f} s; the same three stages run directly:
{stages:.1f} s; DVC's per-experiment overhead: **{one_exp - stages:.1f} s**.
""",
        rows=[
            (
                "4-experiment grid, `-j 2` vs one after another",
                f"{p / s:.2f}× ({p:.1f} s vs {s:.1f} s); DVC's overhead per experiment "
                f"{one_exp - stages:.1f} s",
                "reported",
            )
        ],
    )


if __name__ == "__main__":
    main()
