"""The web pages' shipped parts, without a server: the vendored chart scripts are the bytes
VENDOR.json records, and a changed byte stops the pages before anything is served."""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import shutil

import pytest

from modelops.errors import BundleError
from modelops.ui import render

STATIC = importlib.resources.files("modelops.ui") / "static"


def test_the_vendored_scripts_are_the_recorded_bytes():
    record = json.loads((STATIC / "VENDOR.json").read_text())
    assert {n: r["version"] for n, r in record.items()} == {
        "vega": "5.33.1",
        "vega-lite": "5.23.0",  # the major version of DVC's templates' $schema
        "vega-embed": "6.29.0",
    }
    served = render.static_files()
    for package in record.values():
        for name, sha256 in package["files"].items():
            assert hashlib.sha256(served[name]).hexdigest() == sha256


def test_a_changed_byte_in_a_vendored_script_is_refused(tmp_path, monkeypatch):
    copy = tmp_path / "modelops_ui"
    shutil.copytree(STATIC, copy / "static")
    path = copy / "static" / "vega.min.js"
    data = bytearray(path.read_bytes())
    data[1000] ^= 1
    path.write_bytes(bytes(data))
    monkeypatch.setattr(importlib.resources, "files", lambda package: copy)
    render.static_files.cache_clear()
    try:
        with pytest.raises(BundleError, match=r"static/vega\.min\.js: its sha256 is not the one"):
            render.static_files()
    finally:
        render.static_files.cache_clear()


# -- the server's address rules (no server needed) -------------------------------------------
def test_loopback_addresses_and_the_host_names_a_page_answers_to():
    from modelops.ui.app import allowed_hosts, is_loopback

    assert all(map(is_loopback, ["127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "10.0.0.2", "example.com", "localhost.evil"]))
    assert allowed_hosts("127.0.0.1", 8080) == {
        "127.0.0.1:8080",
        "localhost:8080",
        "[::1]:8080",
    }
    assert allowed_hosts("10.0.0.2", 9000) == {"10.0.0.2:9000"}
    assert allowed_hosts("::1", 81) == {"::1:81", "[::1]:81", "127.0.0.1:81", "localhost:81"}
    assert allowed_hosts("0.0.0.0", 8080) is None  # every interface: the token guards actions


def test_page_files_hold_any_model_name_in_one_folder():
    assert render.version_file("model", "v1.0.0") == "versions/model@v1.0.0.html"
    assert render.version_file("dir/sub:model", "v1.0.0") == "versions/dir~sub:model@v1.0.0.html"
    assert render.unslug("dir~sub:model@v1.0.0") == "dir/sub:model@v1.0.0"
    assert render.compare_file("a/m@v1.0.0", "0123abc") == "compare/a~m@v1.0.0...0123abc.html"


def test_many_files_at_revisions_read_in_one_batch(tmp_path):
    """Workspace.blobs: the bytes of each file at each revision, None where there is none (a
    missing file, a directory, an unknown revision), in the order asked."""
    import subprocess

    from modelops.errors import WorkspaceError
    from modelops.workspace import Workspace

    def git(*args):
        return subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "d").mkdir()
    (tmp_path / "d/bin").write_bytes(b"\x00\n\xff" * 1000)  # newlines and NULs in the bytes
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    (tmp_path / "dvc.yaml").write_text("stages: {a: 1}\n")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-am", "two")
    ws = Workspace(tmp_path)
    got = ws.blobs(
        [
            ("HEAD~1", "dvc.yaml"),
            ("HEAD", "d/bin"),
            ("HEAD", "nothing"),
            ("HEAD", "d"),
            ("no-such-rev", "dvc.yaml"),
            ("HEAD", "dvc.yaml"),
        ]
    )
    assert got == [b"stages: {}\n", b"\x00\n\xff" * 1000, None, None, None, b"stages: {a: 1}\n"]
    assert ws.blobs([]) == []
    assert ws.show("HEAD", "dvc.yaml") == "stages: {a: 1}\n" and ws.show("HEAD", "d") is None
    assert ws.yaml_at("HEAD~1", "dvc.yaml") == {"stages": {}}
    with pytest.raises(WorkspaceError, match="line break"):
        ws.blobs([("HEAD", "a\nb")])
