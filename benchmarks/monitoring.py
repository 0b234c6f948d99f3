"""`modelops monitor` (``api.monitor``) on a 10^6 x 20 batch against only reading that batch
with pandas' chunked C reader, the reader monitor uses (target <= 1.5x), and peak memory at
10^5 vs 10^6 rows (target: flat)."""

from __future__ import annotations

import datetime as dt
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import BIN, machine, record, reproduced_copy, sh, verdict

ROUNDS = 5  # issue 18: the median of at least five alternating runs


def peak_mb(repo: Path, batch: Path) -> float:
    proc = subprocess.run(
        [
            "/usr/bin/time",
            "-f",
            "%M",
            str(BIN / "modelops"),
            "monitor",
            "--stage",
            "prod",
            "--batch",
            str(batch),
            "--format",
            "json",
        ],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    return int(proc.stderr.strip().splitlines()[-1]) / 1024


def main() -> None:
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        reproduced_copy(repo, synthetic=True, prod=True)
        batches = {}
        for rows in (100_000, 1_000_000):
            batches[rows] = Path(tmp) / f"batch_{rows}.csv"
            sh(
                repo,
                str(BIN / "modelops"),
                "make-batch",
                "--stage",
                "prod",
                "--rows",
                str(rows),
                "-o",
                str(batches[rows]),
            )

        import pandas as pd
        import yaml

        from modelops import api

        chunk_rows = yaml.safe_load((repo / "params.yaml").read_text())["serving"]["chunk_rows"]
        model = api.load("model@v0.0.1", root=repo).model
        features = {name: "float64" for name in model.preprocessor.numeric}
        big = batches[1_000_000]
        read_t, mon_t = [], []
        for _ in range(ROUNDS):
            t = time.perf_counter()
            # the baseline: pandas' C reader over the features, in the chunks monitor takes
            for _frame in pd.read_csv(
                big, usecols=list(features), dtype=features, chunksize=chunk_rows
            ):
                pass
            read_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            report = api.monitor(batch=big, stage="prod", root=repo)
            mon_t.append(time.perf_counter() - t)
        assert report["rows"] == 1_000_000
        peaks = {rows: peak_mb(repo, path) for rows, path in batches.items()}
    r, m = statistics.median(read_t), statistics.median(mon_t)
    record(
        "Monitoring: a 10^6 x 20 batch vs only reading it",
        f"""
Synthetic classification data (20 numeric features), logistic regression; the batch is
10^6 rows drawn from the prepared data; medians of {ROUNDS} alternating runs in one process;
{dt.date.today()}, {machine()}.

| run | median wall time |
|---|---|
| read the batch's features with pandas' chunked C reader (baseline) | {r:.2f} s |
| `api.monitor` of prod: PSI, exact KS, missing rates, predictions, their PSI | {m:.2f} s |

Ratio monitor / read: **{m / r:.2f}** (target ≤ 1.5: {"met" if m / r <= 1.5 else "NOT met"}).

Peak RSS of `modelops monitor` (whole process, from GNU time): 10^5 rows {peaks[100_000]:.0f} MB,
10^6 rows {peaks[1_000_000]:.0f} MB.
""",
        rows=[
            (
                f"`monitor` of 10^6 × 20 vs only reading it, median of {ROUNDS} alternating runs",
                f"{m / r:.2f}× ({m:.2f} s vs {r:.2f} s)",
                f"≤ 1.5 {verdict(m / r <= 1.5)}",
            )
        ],
    )


if __name__ == "__main__":
    main()
