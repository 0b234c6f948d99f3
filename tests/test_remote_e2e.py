"""Remote storage against a real SeaweedFS S3 server: publish, two machines, faults, gc."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from modelops import api, cli
from modelops.files import multipart_etag
from modelops.remote import needed_oids
from tests.helpers import (
    bucket_of,
    cache_object,
    dvc,
    free_port,
    git,
    tamper,
    tree_state,
    use_remote,
)
from tests.seaweedfs import SeaweedFS

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent


@pytest.fixture
def machine_a(base: Path, tmp_path: Path, s3: SeaweedFS, monkeypatch) -> Path:
    """Clone A: a registered project with a bare 'origin' and an S3 bucket of its own."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    repo = tmp_path / "a"
    shutil.copytree(base, repo, symlinks=True)
    git(repo, "remote", "add", "origin", str(origin))
    use_remote(repo, s3, s3.bucket(f"b-{uuid.uuid4().hex[:8]}"))
    git(repo, "push", "-q", "origin", "main")
    monkeypatch.chdir(repo)
    return repo


def remote_tags(repo: Path) -> list[str]:
    out = git(repo, "ls-remote", "--tags", "origin").stdout
    names = (line.split("refs/tags/")[1] for line in out.splitlines())
    return sorted(n for n in names if not n.endswith("^{}"))  # skip peeled duplicates


def lock_md5(repo: Path, rev: str) -> str:
    return api.workspace(repo).lock_outs_at(rev)["models/model.npz"]


def clone_b(a: Path, tmp_path: Path, s3: SeaweedFS) -> Path:
    b = tmp_path / "b"
    subprocess.run(["git", "clone", "-q", str(tmp_path / "origin.git"), str(b)], check=True)
    git(b, "fetch", "-q", "--tags")
    use_remote(b, s3, bucket_of(a), commit=False)  # a teammate's one-time set-up, own credentials
    return b


def test_two_machines(machine_a: Path, tmp_path: Path, s3: SeaweedFS, capsys):
    a = machine_a
    api.promote("model@v0.0.1", stage="prod")
    assert cli.main(["publish", "--all"]) == 0
    assert "then pushed 3 tag(s) to origin" in capsys.readouterr().out
    assert remote_tags(a) == ["model#prod#1", "model@v0.0.1", "model@v0.0.2"]

    b = clone_b(a, tmp_path, s3)
    out = tmp_path / "prod.npz"
    info, md5 = api.get(stage="prod", output=out, root=b)
    assert info.version == "v0.0.1" and md5 == lock_md5(a, "model@v0.0.1")
    assert hashlib.md5(out.read_bytes()).hexdigest() == md5
    api.checkout("model@v0.0.1", root=b)
    assert hashlib.md5((b / "models/model.npz").read_bytes()).hexdigest() == md5

    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "modelops"), "serve", "--stage", "prod", "--port", str(port)],
        cwd=b,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                model = httpx.get(f"http://127.0.0.1:{port}/v1/model", timeout=1).json()
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.3)
        assert model["version"] == "v0.0.1" and model["model_md5"] == md5
    finally:
        proc.terminate()
        proc.wait(10)


def test_an_unpublished_version_names_the_missing_file(
    machine_a: Path, tmp_path: Path, s3: SeaweedFS, capsys
):
    git(machine_a, "push", "-q", "origin", "--tags")  # tags without data: the classic mistake
    b = clone_b(machine_a, tmp_path, s3)
    before = tree_state(b), git(b, "rev-parse", "HEAD").stdout
    os.chdir(b)
    assert cli.main(["checkout", "model@v0.0.1"]) == 5
    err = capsys.readouterr().err
    assert "of model@v0.0.1 is not in the DVC cache nor on the DVC remote" in err
    assert "nothing was changed" in err
    assert (tree_state(b), git(b, "rev-parse", "HEAD").stdout) == before


def test_wrong_credentials_fail_clearly_without_the_secret(machine_a: Path, capsys):
    wrong = "wrong-" + uuid.uuid4().hex
    dvc(machine_a, "remote", "modify", "--local", "storage", "secret_access_key", wrong)
    assert cli.main(["publish", "model@v0.0.1"]) == 8
    err = capsys.readouterr().err
    assert "publish: pushing data to DVC remote 'storage' failed" in err
    assert "no tag was pushed" in err and wrong not in err
    assert remote_tags(machine_a) == []


def test_server_down_then_killed_mid_push_then_completes(
    base: Path,
    tmp_path: Path,
    monkeypatch,
    capsys,
):
    own = SeaweedFS(tmp_path / "weed").start()  # this test stops and kills its own server
    try:
        origin = tmp_path / "origin.git"
        git(tmp_path, "init", "-q", "--bare", str(origin))
        repo = tmp_path / "a"
        shutil.copytree(base, repo, symlinks=True)
        git(repo, "remote", "add", "origin", str(origin))
        use_remote(repo, own, own.bucket("team"))
        # a big file so that the push takes long enough to be interrupted
        (repo / "data/raw/big.bin").write_bytes(os.urandom(64 * 2**20))
        dvc(repo, "add", "data/raw/big.bin")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "big raw file")
        dvc(repo, "repro")
        git(repo, "commit", "-q", "-am", "repro", "--allow-empty")
        api.register(root=repo)
        monkeypatch.chdir(repo)
        # fewer botocore retries against a dead server: the outcome is the same, only sooner
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")

        own.kill()  # 1. the server is down (a graceful stop takes SeaweedFS ~15 s)
        assert cli.main(["publish", "model@v0.0.3"]) == 8
        assert "no tag was pushed" in capsys.readouterr().err
        assert remote_tags(repo) == []

        own.start()  # 2. killed in the middle of a push
        own.wait_writable("team")
        proc = subprocess.Popen(
            [str(BIN / "modelops"), "publish", "model@v0.0.3"],
            cwd=repo,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        client = own.client()
        deadline = time.monotonic() + 120
        while not client.list_objects_v2(Bucket="team").get("KeyCount"):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.01)
        own.kill()  # the first objects have landed; the big one is on its way
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 8 and "no tag was pushed" in err
        assert remote_tags(repo) == []

        own.start()  # 3. re-running completes, and every object has the right hash
        own.wait_writable("team")
        assert cli.main(["publish", "model@v0.0.3"]) == 0
        assert "model@v0.0.3" in remote_tags(repo)
        client = own.client()
        head = git(repo, "rev-parse", "HEAD").stdout.strip()
        needed = needed_oids(api.workspace(repo), [head], None)
        for oid in needed:
            key = f"store/files/md5/{oid[:2]}/{oid[2:]}"
            body = client.get_object(Bucket="team", Key=key)["Body"].read()
            if not oid.endswith(".dir"):
                assert hashlib.md5(body).hexdigest() == oid
        big = hashlib.md5((repo / "data/raw/big.bin").read_bytes()).hexdigest()
        assert big in needed
    finally:
        own.kill()  # nothing in it is kept


def test_publish_refuses_a_corrupt_cache_object_before_pushing(
    machine_a: Path, s3: SeaweedFS, capsys
):
    md5 = lock_md5(machine_a, "model@v0.0.1")
    tamper(cache_object(machine_a, md5))  # same size, inode and mtime: DVC cannot tell
    assert cli.main(["publish", "model@v0.0.1"]) == 5
    err = capsys.readouterr().err
    assert f"publish: models/model.npz (object {md5}) is corrupt in the DVC cache" in err
    assert "nothing was pushed" in err
    assert s3.client().list_objects_v2(Bucket=bucket_of(machine_a)).get("KeyCount") == 0
    assert remote_tags(machine_a) == []


def test_publish_checks_what_the_remote_already_holds(machine_a: Path, s3: SeaweedFS, capsys):
    a = machine_a
    dvc(a, "push", "-q", "--all-tags")  # the data went up earlier, by hand
    md5 = lock_md5(a, "model@v0.0.1")
    key = f"store/files/md5/{md5[:2]}/{md5[2:]}"
    client = s3.client()
    good = client.get_object(Bucket=bucket_of(a), Key=key)["Body"].read()
    bad = bytes([good[0] ^ 0xFF]) + good[1:]  # the same size
    client.put_object(Bucket=bucket_of(a), Key=key, Body=bad)
    assert cli.main(["publish", "model@v0.0.1"]) == 5
    err = capsys.readouterr().err
    assert f"models/model.npz (object {md5}) is corrupt on DVC remote 'storage'" in err
    assert hashlib.md5(bad).hexdigest() in err and "no tag was pushed" in err
    assert remote_tags(a) == []
    client.put_object(Bucket=bucket_of(a), Key=key, Body=good)  # repaired: publish goes through
    assert cli.main(["publish", "model@v0.0.1"]) == 0
    assert remote_tags(a) == ["model@v0.0.1"]


def test_multipart_etags_are_reproduced_from_the_local_bytes(s3: SeaweedFS, tmp_path: Path):
    """The S3 server's own ETag for an object uploaded in parts is the reference."""
    from boto3.s3.transfer import TransferConfig

    from modelops.remote import _parts_match

    path = tmp_path / "object"
    path.write_bytes(os.urandom(11 * 2**20))
    bucket = s3.bucket(f"b-{uuid.uuid4().hex[:8]}")
    client = s3.client()
    parts = TransferConfig(multipart_threshold=5 * 2**20, multipart_chunksize=5 * 2**20)
    client.upload_file(str(path), bucket, "k", Config=parts)
    etag = client.head_object(Bucket=bucket, Key="k")["ETag"].strip('"')
    assert etag.endswith("-3") and multipart_etag(path, 5 * 2**20) == etag
    assert _parts_match(path, etag)
    data = path.read_bytes()  # the same size, other bytes (a fixed b"x" was the last byte
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # of os.urandom 1 run in 256)
    assert not _parts_match(path, etag)


def test_gc_keeps_stage_holders_and_drops_retired_versions(machine_a: Path, s3: SeaweedFS, capsys):
    a = machine_a
    api.promote("model@v0.0.1", stage="prod")
    git(a, "commit", "-q", "--allow-empty", "-m", "later")
    assert cli.main(["publish", "--all"]) == 0
    v2_md5 = lock_md5(a, "model@v0.0.2")
    v1_md5 = lock_md5(a, "model@v0.0.1")
    # move the branch past v0.0.2's model so that only the registry keeps it alive
    git(a, "checkout", "-q", "model@v0.0.1")
    dvc(a, "checkout")
    git(a, "checkout", "-q", "-B", "main")
    git(a, "commit", "-q", "--allow-empty", "-m", "back to v0.0.1's model")
    cache = a / ".dvc/cache/files/md5"
    assert cli.main(["gc", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert v2_md5[2:] not in out and v1_md5[2:] not in out  # both registered and live
    api.retire("model@v0.0.2", reason="superseded")
    api.retire("model@v0.0.1", reason="old", force=True)  # retired, but still holds prod
    assert cli.main(["gc", "--dry-run", "--cloud"]) == 0
    out = capsys.readouterr().out
    assert v2_md5[2:] in out and v1_md5[2:] not in out
    assert (cache / v2_md5[:2] / v2_md5[2:]).exists()  # a dry run removes nothing
    assert cli.main(["gc", "-c", "-r", "storage"]) == 0
    assert not (cache / v2_md5[:2] / v2_md5[2:]).exists()
    assert (cache / v1_md5[:2] / v1_md5[2:]).exists()
    keys = {o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket_of(a))["Contents"]}
    assert f"store/files/md5/{v1_md5[:2]}/{v1_md5[2:]}" in keys
    assert f"store/files/md5/{v2_md5[:2]}/{v2_md5[2:]}" not in keys
    assert api.get(version="v0.0.1", output=a / "prod.npz")[1] == v1_md5  # bytes survived


def test_make_remote_targets(project: Path, tmp_path: Path):
    store = tmp_path / "store"
    make = ["make", "-s", "-o", ".venv/.installed", f"BIN={BIN}"]
    subprocess.run(
        [*make, "remote-local", f"DIR={store}"], cwd=project, check=True, capture_output=True
    )
    assert str(store) in (project / ".dvc/config.local").read_text()
    assert git(project, "status", "--porcelain").stdout == ""  # nothing to commit, nothing leaked
    dvc(project, "repro")
    dvc(project, "push")
    assert any(store.rglob("*"))
    usage = subprocess.run([*make, "remote-s3"], cwd=project, capture_output=True, text=True)
    assert usage.returncode != 0 and "usage: make remote-s3 URL=s3://" in usage.stdout


def test_a_remote_added_after_the_versions_serves_them(
    base: Path,
    tmp_path: Path,
    monkeypatch,
    capsys,
):
    """Issue 13, item 19: DVC's documented set-up (``dvc remote add -d`` committed, a
    ``--local`` setting beside it) made after v0.0.1 and v0.0.2 were registered. Their
    commits' .dvc/config has no such remote, and DVC lays config.local over it: publish,
    get and checkout of them use the workspace's remote instead of failing."""
    repo = tmp_path / "repo"
    shutil.copytree(base, repo, symlinks=True)
    git(tmp_path, "init", "-q", "--bare", str(tmp_path / "origin.git"))
    git(repo, "remote", "add", "origin", str(tmp_path / "origin.git"))
    store = tmp_path / "store"
    dvc(repo, "remote", "add", "-d", "store", str(store))
    git(repo, "commit", "-q", "-am", "the team's remote")
    dvc(repo, "remote", "modify", "--local", "store", "jobs", "2")  # what DVC allows locally
    monkeypatch.chdir(repo)
    v1, v2 = lock_md5(repo, "model@v0.0.1"), lock_md5(repo, "model@v0.0.2")

    assert cli.main(["publish", "--all"]) == 0
    assert "then pushed 2 tag(s) to origin" in capsys.readouterr().out
    assert (store / "files/md5" / v1[:2] / v1[2:]).is_file()  # the old version's bytes too
    # gc skipped the revisions DVC could not read, and so offered live versions' bytes
    assert cli.main(["gc", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert v1[2:] not in out and v2[2:] not in out
    shutil.rmtree(repo / ".dvc/cache")  # from here on, only the remote has them

    info, md5 = api.get(version="v0.0.1", output=tmp_path / "v1.npz")
    assert info.version == "v0.0.1"
    assert md5 == v1 == hashlib.md5((tmp_path / "v1.npz").read_bytes()).hexdigest()

    assert cli.main(["checkout", "model@v0.0.1"]) == 0
    out = capsys.readouterr().out
    assert "predates DVC remote 'store'" in out and "kept in .dvc/config.local" in out
    assert hashlib.md5((repo / "models/model.npz").read_bytes()).hexdigest() == v1
    local = repo / ".dvc/config.local"
    assert local.stat().st_mode & 0o777 == 0o600 and str(store) in local.read_text()
    assert git(repo, "status", "--porcelain").stdout == ""  # nothing committed changed
    assert "configuration error" not in dvc(repo, "status").stderr  # DVC works here too
    # ... and modelops, from the old commit, reaches the newer version on the remote
    assert api.get(version="v0.0.2", output=tmp_path / "v2.npz")[1] == v2
    assert cli.main(["checkout", "model@v0.0.2"]) == 0
    assert "predates" not in capsys.readouterr().out  # config.local holds it already
    assert hashlib.md5((repo / "models/model.npz").read_bytes()).hexdigest() == v2
