"""Data larger than a stage may hold (issue 18, target 5): a 10^7 x 20 CSV through prepare,
train and evaluate, each stage's peak anonymous memory under 1.5 GB, and time per row at 10^7
within 1.3x of that at 10^6.

Both CSVs hold the same kind of rows: blocks of 10^6 seeded rows drawn as benchmarks/pipeline.py
draws its data (block i with seed i), so the 10^6-row file is the 10^7-row file's first block.
Each stage's command from dvc.lock runs on its own after a `dvc repro` of the pipeline (which
records those commands); its peak anonymous memory is the largest ``Anonymous:`` of
/proc/PID/smaps_rollup sampled every 10 ms (pages of mapped files, such as the prepared Arrow
splits, are not anonymous and do not count).
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml
from common import BIN, machine, record, sh, verdict
from pipeline import FEATURES, csv_project

BLOCK = 1_000_000
SIZES = (1_000_000, 10_000_000)
STAGES = ("prepare", "train", "evaluate")
LIMIT_MB = 1536
# The CSV (about 4 GB at 10^7 rows), the prepared splits and DVC's cache copy of them.
NEEDED_GB = 12


def write_blocks(path: Path, rows: int) -> None:
    """``rows`` seeded rows, block by block, so the writer never holds more than one block."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pacsv
    from sklearn.datasets import make_classification

    names = [f"x{i:02d}" for i in range(FEATURES)]
    schema = pa.schema([(n, pa.float64()) for n in names] + [("target", pa.int64())])
    with pacsv.CSVWriter(path, schema) as out:
        for block in range(rows // BLOCK):
            X, y = make_classification(
                n_samples=BLOCK,
                n_features=FEATURES,
                n_informative=10,
                n_redundant=0,
                n_classes=2,
                flip_y=0.1,
                random_state=block,
            )
            frame = pd.DataFrame(X, columns=names)
            frame["target"] = y.astype("int64")
            out.write_table(pa.Table.from_pandas(frame, preserve_index=False))


def anonymous_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Anonymous:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def run_stage(repo: Path, cmd: str) -> tuple[float, float]:
    """(seconds, peak anonymous MB) of one stage's command."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    start = time.perf_counter()
    proc = subprocess.Popen(
        shlex.split(cmd), cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    peak = 0

    def sample() -> None:
        nonlocal peak
        while proc.poll() is None:
            peak = max(peak, anonymous_kb(proc.pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    _, err = proc.communicate()
    seconds = time.perf_counter() - start
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"{cmd} exited {proc.returncode}: {err.decode()[-2000:]}")
    return seconds, peak / 1024


def measure(tmp: Path, rows: int) -> dict[str, tuple[float, float]]:
    repo = csv_project(tmp / f"r{rows}", 0, writer=lambda path: write_blocks(path, rows))
    sh(repo, str(BIN / "dvc"), "repro", "-q", "prepare", "train", "evaluate")
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    out = {name: run_stage(repo, lock[name]["cmd"]) for name in STAGES}
    shutil.rmtree(repo)
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        free = shutil.disk_usage(tmp).free / 2**30
        if free < NEEDED_GB:
            sys.exit(f"large_data: {free:.1f} GB free under {tmp}, {NEEDED_GB} GB needed; skipped")
        results = {rows: measure(Path(tmp), rows) for rows in SIZES}
    lines = []
    for rows, stages in results.items():
        cells = " | ".join(f"{s:.2f} s, {mb:.0f} MB" for s, mb in stages.values())
        total = sum(s for s, _ in stages.values())
        lines.append(f"| {rows:,} | {cells} | {total / rows * 1e6:.2f} µs |")
    small, big = SIZES
    per_row = {r: sum(s for s, _ in results[r].values()) / r for r in SIZES}
    ratio = per_row[big] / per_row[small]
    top = max(mb for _, mb in results[big].values())
    header = " | ".join(STAGES)
    body = f"""
Blocks of 10^6 seeded rows ({FEATURES} features, classification, drawn as the pipeline benchmark
draws them), as CSVs of 10^6 and 10^7 rows; `dvc repro` of prepare, train and evaluate as
shipped (logistic regression, full-batch gradient descent), then each stage's command from
dvc.lock on its own: wall time and peak anonymous memory (smaps_rollup, sampled every 10 ms;
mapped file pages do not count); {dt.date.today()}, {machine()}.

| rows | {header} | time per row |
|---|{"---|" * len(STAGES)}---|
{chr(10).join(lines)}

Largest stage peak at {big:,} rows: {top:.0f} MB (target under {LIMIT_MB} MB:
{"met" if top < LIMIT_MB else "NOT met"}). Time per row at {big:,} / at {small:,}: {ratio:.2f}×
(target ≤ 1.3×: {"met" if ratio <= 1.3 else "NOT met"}).
"""
    row = (
        f"10^7 × {FEATURES} CSV through prepare, train, evaluate: each stage's peak anonymous "
        "memory, and time per row against 10^6 rows (`make bench-large`)",
        " / ".join(f"{mb:.0f} MB" for _, mb in results[big].values())
        + f"; time per row {ratio:.2f}× ({per_row[big] * 1e6:.2f} vs "
        f"{per_row[small] * 1e6:.2f} µs)",
        f"< 1.5 GB {verdict(top < LIMIT_MB)}, ≤ 1.3× {verdict(ratio <= 1.3)}",
    )
    record("Data larger than memory: 10^7 rows through the stages", body, [row])


if __name__ == "__main__":
    main()
