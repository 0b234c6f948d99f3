"""Push and pull of a 200 MB model file through DVC to SeaweedFS (what `modelops publish`
and `modelops get` use) against the `aws s3 cp` equivalent, boto3 upload_file /
download_file in a process of its own (s3_copy.py), alternating in the same run (target
ratio <= 1.5). Also timed: the same boto3 calls inside this process (the transfer alone) and
the import of the S3 stack DVC loads (s3fs, aiobotocore), which bounds what DVC can reach."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import BIN, HERE, machine, record, sh, verdict

sys.path.insert(0, str(HERE.parent))
from tests.seaweedfs import SeaweedFS

SIZE = 200 * 2**20
ROUNDS = 3


def timed_run(argv: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(argv, check=True)
    return time.perf_counter() - t


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
            os.environ["AWS_ENDPOINT_URL"] = s3.endpoint
            copy = [str(BIN / "python"), str(HERE / "s3_copy.py")]
            keys = ("dvc push", "s3_copy.py up", "boto3 upload (in-process)")
            keys += ("dvc pull", "s3_copy.py down", "boto3 download (in-process)")
            times: dict[str, list[float]] = {k: [] for k in keys}

            def clock(name: str, fn, *args) -> None:
                t = time.perf_counter()
                fn(*args)
                times[name].append(time.perf_counter() - t)

            for i in range(ROUNDS):
                url = f"s3://bench/dvc{i}"
                sh(repo, str(BIN / "dvc"), "remote", "add", "-f", "-d", "s", url)
                sh(repo, str(BIN / "dvc"), "remote", "modify", "s", "endpointurl", s3.endpoint)
                model, raw = str(repo / "model.bin"), str(tmp / "raw.bin")
                clock("dvc push", sh, repo, str(BIN / "dvc"), "push", "-q")
                clock("s3_copy.py up", sh, tmp, *copy, "up", model, "bench", f"p{i}/m")
                clock("boto3 upload (in-process)", client.upload_file, model, "bench", f"r{i}/m")
                shutil.rmtree(repo / ".dvc/cache")
                (repo / "model.bin").unlink()
                clock("dvc pull", sh, repo, str(BIN / "dvc"), "pull", "-q")
                clock("s3_copy.py down", sh, tmp, *copy, "down", raw, "bench", f"p{i}/m")
                os.unlink(raw)
                clock("boto3 download (in-process)", client.download_file, "bench", f"r{i}/m", raw)
                os.unlink(raw)
            s3_import = statistics.median(
                timed_run([str(BIN / "python"), "-c", "import s3fs, aiobotocore.session"])
                for _ in range(3)
            )
        finally:
            s3.stop()
    med = {k: statistics.median(v) for k, v in times.items()}
    push = med["dvc push"] / med["s3_copy.py up"]
    pull = med["dvc pull"] / med["s3_copy.py down"]
    push_ip = med["dvc push"] / med["boto3 upload (in-process)"]
    pull_ip = med["dvc pull"] / med["boto3 download (in-process)"]
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

Ratios against the `aws s3 cp` equivalent (a process each): push **{push:.2f}**, pull
**{pull:.2f}** (target ≤ 1.5: {"met" if max(push, pull) <= 1.5 else "NOT met"}). Against the
transfer alone (boto3 inside the benchmark's process): push {push_ip:.2f}, pull {pull_ip:.2f}.
Importing the S3 stack DVC uses (`import s3fs, aiobotocore.session`) takes {s3_import:.2f} s
on its own; the transfer is a fraction of a second on loopback, so start-up weighs heavily.
""",
        rows=[
            (
                f"DVC push / pull of {SIZE / 2**20:.0f} MB to SeaweedFS vs boto3 in a process "
                "(`aws s3 cp` equivalent)",
                f"{push:.2f}× / {pull:.2f}×",
                f"≤ 1.5 {verdict(max(push, pull) <= 1.5)}",
            )
        ],
    )


if __name__ == "__main__":
    main()
