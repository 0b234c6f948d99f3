"""What the pinned numerics cost (issue 12): the train stage on 10^6 x 20 as DVC runs it
(`python -m modelops.stages.train`, which re-executes itself pinned: numpy's baseline loops,
OpenBLAS's Nehalem kernel on one thread, libm's SSE2 paths) against the same stage run with the
machine's own numerics (called in-process, so nothing is pinned). Alternating runs, medians."""

from __future__ import annotations

import datetime as dt
import hashlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from common import HERE, machine, record, verdict

ROWS, ROUNDS, TARGET = 1_000_000, 3, 1.05
AMBIENT = (
    "import sys; from modelops.stages import train; "
    "sys.exit(train.main(['--data', 'prep', '--model', 'model.npz', '--loss', 'loss.json']))"
)
STAGE = ["--data", "prep", "--model", "model.npz", "--loss", "loss.json"]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        params = yaml.safe_load((HERE.parent / "params.yaml").read_text())
        params["data"]["source"] = "synthetic"
        params["data"]["synthetic"]["n_rows"] = ROWS
        (work / "params.yaml").write_text(yaml.safe_dump(params))
        subprocess.run(
            [sys.executable, "-m", "modelops.stages.prepare", "--out", "prep"],
            cwd=work,
            check=True,
            capture_output=True,
        )
        runs = {
            "pinned": [sys.executable, "-m", "modelops.stages.train", *STAGE],
            "ambient": [sys.executable, "-c", AMBIENT],
        }
        times: dict[str, list[float]] = {k: [] for k in runs}
        digests: dict[str, set[str]] = {k: set() for k in runs}
        for _ in range(ROUNDS):
            for name, argv in runs.items():
                start = time.perf_counter()
                subprocess.run(argv, cwd=work, check=True, capture_output=True)
                times[name].append(time.perf_counter() - start)
                digests[name].add(hashlib.md5((work / "model.npz").read_bytes()).hexdigest())
    pinned, ambient = (statistics.median(times[k]) for k in ("pinned", "ambient"))
    ratio = pinned / ambient
    met = "met" if ratio <= TARGET else "NOT met"
    each = {k: ", ".join(f"{t:.2f}" for t in v) for k, v in times.items()}
    record(
        "Determinism: the cost of pinned numerics in the train stage",
        f"""
Synthetic classification data, {ROWS:,} x 20 (8·10^5 training rows), the default
`logistic_regression` (float32 gradient descent); medians of {ROUNDS} alternating runs of the
whole stage process; {dt.date.today()}, {machine()}.

| run | median wall time | runs |
|---|---|---|
| train stage, pinned (as `dvc repro` runs it) | {pinned:.2f} s | {each["pinned"]} |
| train stage, this machine's own numerics (baseline) | {ambient:.2f} s | {each["ambient"]} |

Ratio pinned / own: **{ratio:.3f}** (target ≤ {TARGET}: {met}). Distinct bundles over the
{ROUNDS} runs: pinned {len(digests["pinned"])}, own {len(digests["ambient"])}; the two differ
from each other: {"yes" if digests["pinned"] != digests["ambient"] else "no"}.
""",
        rows=[
            (
                "pinned numerics in the train stage vs the machine's own",
                f"{ratio:.2f}× ({pinned:.2f} vs {ambient:.2f} s)",
                f"≤ {TARGET} {verdict(ratio <= TARGET)}",
            )
        ],
    )


if __name__ == "__main__":
    main()
