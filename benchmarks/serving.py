"""Serving latency and throughput against a minimal FastAPI + scikit-learn baseline
(same machine, same run, alternating), and batch predict at 10^5 and 10^6 rows."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from common import BIN, HERE, machine, record, reproduced_copy

SEQUENTIAL = 400  # requests per latency measurement
CONCURRENT = 800  # requests per throughput measurement
ROUNDS = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(argv: list[str], cwd: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.post(f"http://127.0.0.1:{port}/v1/predict", json=[], timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"server {argv} did not start")


def latencies(url: str, body: bytes, n: int) -> list[float]:
    out = []
    with httpx.Client() as client:
        for _ in range(n):
            t = time.perf_counter()
            r = client.post(url, content=body, headers={"content-type": "application/json"})
            out.append(time.perf_counter() - t)
            assert r.status_code == 200, r.text
    return out


async def _throughput(url: str, body: bytes, n: int, concurrency: int) -> float:
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency)) as client:

        async def one():
            async with sem:
                r = await client.post(
                    url, content=body, headers={"content-type": "application/json"}
                )
                assert r.status_code == 200

        t = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return n / (time.perf_counter() - t)


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) * 1000


def batch(repo: Path, rows: int) -> tuple[float, float]:
    """(rows per second, peak RSS in MB) of `modelops predict` on a generated CSV."""
    test = pd.read_parquet(repo / "data/prepared/test.parquet").drop(columns=["diagnosis"])
    rng = np.random.default_rng(0)
    src = repo / f"batch_{rows}.csv"
    with open(src, "w") as f:
        for start in range(0, rows, 100_000):
            n = min(100_000, rows - start)
            sample = test.iloc[rng.integers(0, len(test), n)].reset_index(drop=True)
            sample = sample * rng.normal(1.0, 0.01, sample.shape)
            sample.to_csv(f, index=False, header=start == 0)
    t = time.perf_counter()
    proc = subprocess.run(
        [
            "/usr/bin/time",
            "-f",
            "%M",
            str(BIN / "modelops"),
            "predict",
            "--stage",
            "prod",
            "--input",
            str(src),
            "--output",
            str(repo / f"pred_{rows}.csv"),
        ],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - t
    peak_kb = int(proc.stderr.strip().splitlines()[-1])  # GNU time: max RSS of that process
    src.unlink()
    return rows / elapsed, peak_kb / 1024


def main() -> None:
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"  # stages run `python`
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        reproduced_copy(repo, prod=True)
        test = pd.read_parquet(repo / "data/prepared/test.parquet").drop(columns=["diagnosis"])
        bodies = {
            1: test.head(1).to_json(orient="records").encode(),
            100: test.head(100).to_json(orient="records").encode(),
        }
        ours_port, base_port = free_port(), free_port()
        ours = start(
            [str(BIN / "modelops"), "serve", "--stage", "prod", "--port", str(ours_port)],
            repo,
            ours_port,
        )
        base = start(
            [
                sys.executable,
                str(HERE / "baseline_server.py"),
                str(repo / "data/prepared/train.parquet"),
                "diagnosis",
                "0.001",
                str(base_port),
            ],
            repo,
            base_port,
        )
        urls = {
            "modelops": f"http://127.0.0.1:{ours_port}/v1/predict",
            "baseline": f"http://127.0.0.1:{base_port}/v1/predict",
        }
        lat = {(s, k): [] for s in urls for k in bodies}
        thr = {(s, c): [] for s in urls for c in (1, 8)}
        try:
            for url in urls.values():  # warm up both
                latencies(url, bodies[100], 50)
            for _ in range(ROUNDS):
                for name, url in urls.items():
                    for k, body in bodies.items():
                        lat[(name, k)] += latencies(url, body, SEQUENTIAL)
                    for c in (1, 8):
                        thr[(name, c)].append(
                            asyncio.run(_throughput(url, bodies[100], CONCURRENT, c))
                        )
        finally:
            ours.terminate()
            base.terminate()
        small = batch(repo, 100_000)
        large = batch(repo, 1_000_000)
    rows = []
    for k in bodies:
        o, b = lat[("modelops", k)], lat[("baseline", k)]
        rows.append(
            f"| {k} record(s) | {pct(o, 50):.2f} / {pct(o, 99):.2f} | "
            f"{pct(b, 50):.2f} / {pct(b, 99):.2f} | "
            f"{statistics.median(o) / statistics.median(b):.2f} |"
        )
    for c in (1, 8):
        o, b = statistics.mean(thr[("modelops", c)]), statistics.mean(thr[("baseline", c)])
        rows.append(
            f"| throughput, 100 records, concurrency {c} (req/s) | {o:.0f} | {b:.0f} | "
            f"{b / o:.2f} |"
        )
    record(
        "Serving: modelops serve vs a minimal FastAPI + scikit-learn endpoint",
        f"""
Both servers on loopback, one uvicorn worker each, the client on the same 2-core machine;
{ROUNDS} alternating rounds of {SEQUENTIAL} sequential requests per size and {CONCURRENT}
requests per throughput point; {dt.date.today()}, {machine()}. Baseline: FastAPI endpoint,
`await request.json()` -> DataFrame -> `Pipeline(StandardScaler, LogisticRegression)`
.predict_proba, no validation.

| measure | modelops (p50 / p99 ms) | baseline (p50 / p99 ms) | ratio ours / baseline (time) |
|---|---|---|---|
{chr(10).join(rows)}

Batch predict (`modelops predict`, 30 numeric columns): 10^5 rows at {small[0]:,.0f} rows/s,
peak RSS {small[1]:.0f} MB; 10^6 rows at {large[0]:,.0f} rows/s, peak RSS {large[1]:.0f} MB.
""",
    )


if __name__ == "__main__":
    main()
