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
