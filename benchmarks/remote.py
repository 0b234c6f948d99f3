"""Push and pull of a 200 MB model file through DVC to SeaweedFS (what `modelops publish`
and `modelops get` use) against boto3 upload_file / download_file of the same bytes,
alternating in the same run (target ratio <= 1.5)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import BIN, HERE, machine, record, sh

sys.path.insert(0, str(HERE.parent))
from tests.seaweedfs import SeaweedFS

SIZE = 200 * 2**20
ROUNDS = 3


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        s3 = SeaweedFS(tmp / "weed").start()
        try:
            repo = tmp / "repo"
            repo.mkdir()
            sh(repo, "git", "init", "-q")
            sh(repo, str(BIN / "dvc"), "init", "-q")
            (repo / "model.bin").write_bytes(os.urandom(SIZE))
            sh(repo, str(BIN / "dvc"), "add", "-q", "model.bin")
            client = s3.client()
            client.create_bucket(Bucket="bench")
            env_creds = {"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key}
            os.environ.update(env_creds)
            times: dict[str, list[float]] = {
                k: [] for k in ("dvc push", "boto3 upload", "dvc pull", "boto3 download")
            }
            for i in range(ROUNDS):
                url = f"s3://bench/dvc{i}"
                sh(repo, str(BIN / "dvc"), "remote", "add", "-f", "-d", "s", url)
                sh(repo, str(BIN / "dvc"), "remote", "modify", "s", "endpointurl", s3.endpoint)
                t = time.perf_counter()
                sh(repo, str(BIN / "dvc"), "push", "-q")
                times["dvc push"].append(time.perf_counter() - t)
                t = time.perf_counter()
                client.upload_file(str(repo / "model.bin"), "bench", f"raw{i}/model.bin")
                times["boto3 upload"].append(time.perf_counter() - t)
                shutil.rmtree(repo / ".dvc/cache")
                (repo / "model.bin").unlink()
                t = time.perf_counter()
                sh(repo, str(BIN / "dvc"), "pull", "-q")
                times["dvc pull"].append(time.perf_counter() - t)
                t = time.perf_counter()
                client.download_file("bench", f"raw{i}/model.bin", str(tmp / "raw.bin"))
                times["boto3 download"].append(time.perf_counter() - t)
                (tmp / "raw.bin").unlink()
        finally:
            s3.stop()
    med = {k: statistics.median(v) for k, v in times.items()}
    push, pull = med["dvc push"] / med["boto3 upload"], med["dvc pull"] / med["boto3 download"]
    rows = "\n".join(f"| {k} | {v:.2f} s | {SIZE / 2**20 / v:.0f} MB/s |" for k, v in med.items())
    record(
        "Remote: 200 MB push/pull through DVC vs boto3 to SeaweedFS",
        f"""
A 200 MB file on one local SeaweedFS server (`weed server -s3`, loopback); medians of {ROUNDS}
alternating rounds, each to a fresh prefix; `dvc pull` starts from an empty cache.
{dt.date.today()}, {machine()}.

| transfer | median | throughput |
|---|---|---|
{rows}

Ratios: push / upload **{push:.2f}**, pull / download **{pull:.2f}**
(target ≤ 1.5: {"met" if max(push, pull) <= 1.5 else "NOT met"}).
""",
    )


if __name__ == "__main__":
    main()
