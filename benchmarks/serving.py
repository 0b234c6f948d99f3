"""Serving latency and throughput, in one run with the servers taking turns: `modelops serve`,
a minimal FastAPI + scikit-learn endpoint without validation, `mlflow models serve`
(mlflow-skinny, the same scikit-learn pipeline saved with `mlflow.sklearn` in skops format,
in a virtual environment this script builds) and the floor (a raw ASGI app on the same
uvicorn that reads the body and returns a fixed JSON). Then batch predict at 10^5 and 10^6
rows."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
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
from common import BIN, HERE, machine, record, reproduced_copy, verdict

SEQUENTIAL = 400  # requests per latency measurement
CONCURRENT = 800  # requests per throughput measurement
ROUNDS = 2
MLFLOW = "mlflow-skinny==3.17.2"
MLFLOW_VENV = HERE / ".venv-mlflow"  # git-ignored; removing it rebuilds it
CONSTRAINTS = HERE.parent / ".ci" / "constraints.txt"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(argv: list[str], cwd: Path, port: int, path: str = "/v1/predict") -> subprocess.Popen:
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            httpx.post(f"http://127.0.0.1:{port}{path}", json=[], timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server {argv} did not start")


def mlflow_env() -> Path:
    """A virtual environment with mlflow-skinny, and scikit-learn, skops, pandas and pyarrow
    at the versions .ci/constraints.txt pins for modelops; built once, kept in MLFLOW_VENV."""
    stamp = MLFLOW_VENV / ".built"
    want = f"{MLFLOW}\n{CONSTRAINTS.read_text()}"
    if stamp.exists() and stamp.read_text() == want:
        return MLFLOW_VENV / "bin"
    shutil.rmtree(MLFLOW_VENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
    pip = [str(MLFLOW_VENV / "bin/python"), "-m", "pip", "install", "-q"]
    packages = [MLFLOW, "scikit-learn", "skops", "pandas", "pyarrow"]
    subprocess.run(
        [*pip, "--disable-pip-version-check", "-c", str(CONSTRAINTS), *packages], check=True
    )
    stamp.write_text(want)
    return MLFLOW_VENV / "bin"


def mlflow_server(repo: Path, port: int) -> tuple[subprocess.Popen, str]:
    """`mlflow models serve` (one uvicorn worker, this environment) on the baseline's pipeline."""
    bin_ = mlflow_env()
    model = repo.parent / "mlflow-model"
    subprocess.run(
        [
            str(bin_ / "python"),
            str(HERE / "mlflow_model.py"),
            str(repo / "data/prepared/train.arrow"),
            "diagnosis",
            "0.001",
            str(model),
        ],
        cwd=HERE,
        check=True,
        capture_output=True,
    )
    argv = [str(bin_ / "mlflow"), "models", "serve", "-m", str(model), "--env-manager", "local"]
    argv += ["-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    env_path = f"{bin_}{os.pathsep}{os.environ['PATH']}"  # its uvicorn, not ours
    proc = subprocess.Popen(
        argv,
        cwd=repo.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PATH": env_path},
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                return proc, f"http://127.0.0.1:{port}/invocations"
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("mlflow models serve did not start")


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
    test = pd.read_feather(repo / "data/prepared/test.arrow").drop(columns=["diagnosis"])
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


SERVERS = ("modelops", "baseline", "mlflow", "floor")


def main() -> None:
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"  # stages run `python`
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        reproduced_copy(repo, prod=True)
        test = pd.read_feather(repo / "data/prepared/test.arrow").drop(columns=["diagnosis"])
        records = {k: test.head(k).to_json(orient="records") for k in (1, 100)}
        bodies = {
            name: {
                k: (f'{{"dataframe_records": {r}}}' if name == "mlflow" else r).encode()
                for k, r in records.items()
            }
            for name in SERVERS
        }
        ports = {name: free_port() for name in SERVERS}
        procs = {}
        try:
            ours = ["serve", "--stage", "prod", "--port", str(ports["modelops"])]
            procs["modelops"] = start(
                [str(BIN / "modelops"), *ours],
                repo,
                ports["modelops"],
            )
            procs["baseline"] = start(
                [
                    sys.executable,
                    str(HERE / "baseline_server.py"),
                    str(repo / "data/prepared/train.arrow"),
                    "diagnosis",
                    "0.001",
                    str(ports["baseline"]),
                ],
                repo,
                ports["baseline"],
            )
            procs["floor"] = start(
                [sys.executable, str(HERE / "floor_server.py"), str(ports["floor"])],
                repo,
                ports["floor"],
            )
            procs["mlflow"], mlflow_url = mlflow_server(repo, ports["mlflow"])
            urls = {n: f"http://127.0.0.1:{ports[n]}/v1/predict" for n in SERVERS}
            urls["mlflow"] = mlflow_url
            lat = {(s, k): [] for s in SERVERS for k in (1, 100)}
            thr = {(s, c): [] for s in SERVERS for c in (1, 8)}
            for name, url in urls.items():  # warm up every server
                latencies(url, bodies[name][100], 50)
            for _ in range(ROUNDS):
                for name, url in urls.items():
                    for k, body in bodies[name].items():
                        lat[(name, k)] += latencies(url, body, SEQUENTIAL)
                    for c in (1, 8):
                        thr[(name, c)].append(
                            asyncio.run(_throughput(url, bodies[name][100], CONCURRENT, c))
                        )
        finally:
            for proc in procs.values():
                proc.terminate()
            for proc in procs.values():
                proc.wait(30)
        small = batch(repo, 100_000)
        large = batch(repo, 1_000_000)
    p50 = {key: pct(v, 50) for key, v in lat.items()}
    rows = []
    for k in (1, 100):
        cells = " | ".join(f"{p50[(n, k)]:.2f} / {pct(lat[(n, k)], 99):.2f}" for n in SERVERS)
        rows.append(
            f"| {k} record(s), p50 / p99 ms | {cells} | "
            f"{p50[('modelops', k)] / p50[('floor', k)]:.2f} |"
        )
    for c in (1, 8):
        cells = " | ".join(f"{statistics.mean(thr[(n, c)]):.0f}" for n in SERVERS)
        rows.append(f"| throughput, 100 records, concurrency {c} (req/s) | {cells} | |")
    ratios = {
        name: {k: p50[(name, k)] / p50[("modelops", k)] for k in (1, 100)}
        for name in ("baseline", "mlflow")
    }
    tput = {key: statistics.mean(v) for key, v in thr.items()}
    floor_1 = p50[("modelops", 1)] / p50[("floor", 1)]
    floor_100 = p50[("modelops", 100)] / p50[("floor", 100)]
    record(
        "Serving: modelops serve vs FastAPI + scikit-learn, MLflow and the raw ASGI floor",
        f"""
Four servers on loopback, one uvicorn worker each, the client on the same 2-core machine,
taking turns: {ROUNDS} rounds of {SEQUENTIAL} sequential requests per size and {CONCURRENT}
requests per throughput point; {dt.date.today()}, {machine()}.

- **baseline**: a FastAPI endpoint, `await request.json()` -> DataFrame ->
  `Pipeline(StandardScaler, LogisticRegression)`.predict_proba, no validation.
- **mlflow**: `mlflow models serve` ({MLFLOW}, `--env-manager local`, one worker) on the
  same pipeline saved by `mlflow.sklearn.save_model` in skops format; the body is
  `{{"dataframe_records": [...]}}`.
- **floor**: a raw ASGI app on the same uvicorn, run with the arguments `modelops serve` uses,
  that reads the body and returns a fixed JSON (no framework, no model).

| measure | modelops | baseline | mlflow | floor | modelops / floor (p50) |
|---|---|---|---|---|---|
{chr(10).join(rows)}

p50 against modelops, at 1 / 100 records: the baseline takes
{ratios["baseline"][1]:.1f}× / {ratios["baseline"][100]:.1f}× as long, MLflow
{ratios["mlflow"][1]:.1f}× / {ratios["mlflow"][100]:.1f}×.
modelops against the floor: **{floor_1:.2f}×** at one record (target ≤ 1.5:
{"met" if floor_1 <= 1.5 else "NOT met"}), **{floor_100:.2f}×** at 100 (target ≤ 3:
{"met" if floor_100 <= 3 else "NOT met"}).

Batch predict (`modelops predict`, 30 numeric columns): 10^5 rows at {small[0]:,.0f} rows/s,
peak RSS {small[1]:.0f} MB; 10^6 rows at {large[0]:,.0f} rows/s, peak RSS {large[1]:.0f} MB.
""",
        rows=[
            (
                "serving latency p50, 1 / 100 records, vs FastAPI + scikit-learn without "
                "validation",
                f"{1 / ratios['baseline'][1]:.2f}× / {1 / ratios['baseline'][100]:.2f}× "
                f"({p50[('modelops', 1)]:.2f} / {p50[('modelops', 100)]:.2f} ms vs "
                f"{p50[('baseline', 1)]:.2f} / {p50[('baseline', 100)]:.2f} ms)",
                f"≤ 1.0 {verdict(max(1 / r for r in ratios['baseline'].values()) <= 1)}",
            ),
            (
                f"the same vs `mlflow models serve` ({MLFLOW}, the same pipeline saved by "
                "`mlflow.sklearn` in skops format)",
                f"{1 / ratios['mlflow'][1]:.2f}× / {1 / ratios['mlflow'][100]:.2f}× (MLflow: "
                f"{p50[('mlflow', 1)]:.2f} / {p50[('mlflow', 100)]:.2f} ms)",
                "reported",
            ),
            (
                "the same vs the floor (a raw ASGI app on the same uvicorn reading the body and "
                "returning a fixed JSON)",
                f"{floor_1:.2f}× / {floor_100:.2f}× (floor: {p50[('floor', 1)]:.2f} / "
                f"{p50[('floor', 100)]:.2f} ms)",
                f"≤ 1.5 {verdict(floor_1 <= 1.5)} / ≤ 3 {verdict(floor_100 <= 3)}",
            ),
            (
                "serving throughput, 100 records, concurrency 1 / 8, vs FastAPI + scikit-learn "
                "(time ratio)",
                " / ".join(f"{tput['baseline', c] / tput['modelops', c]:.2f}×" for c in (1, 8))
                + f" ({tput['modelops', 1]:.0f} / {tput['modelops', 8]:.0f} req/s vs "
                f"{tput['baseline', 1]:.0f} / {tput['baseline', 8]:.0f})",
                f"≤ 1.0 {verdict(all(tput['baseline', c] <= tput['modelops', c] for c in (1, 8)))}",
            ),
            (
                "`modelops predict` peak memory, 10^5 / 10^6 rows",
                f"{small[1]:.0f} / {large[1]:.0f} MB ({large[0]:,.0f} rows/s at 10^6)",
                f"flat (after start-up) {verdict(large[1] <= 1.5 * small[1])}",
            ),
        ],
    )


if __name__ == "__main__":
    main()
