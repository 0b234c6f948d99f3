"""verify's pure parts: DVC's directory hash, metric deltas, library versions."""

from __future__ import annotations

import hashlib

from modelops.errors import InputError
from modelops.files import manifest_md5
from modelops.verify import MetricRow, Report, compare_metrics, unverifiable


def test_manifest_md5_is_dvcs_directory_hash():
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_data.hashfile.meta import Meta
    from dvc_data.hashfile.tree import Tree

    files = {"b/x.csv": b"1,2\n", "a.txt": b"hello", "b/a.parquet": b"\x00\x01"}
    entries = [{"relpath": k, "md5": hashlib.md5(v).hexdigest()} for k, v in files.items()]
    tree = Tree()
    for e in entries:
        tree.add(tuple(e["relpath"].split("/")), Meta(size=1), HashInfo("md5", e["md5"]))
    tree.digest()
    assert manifest_md5(entries) == tree.hash_info.value
    assert manifest_md5(entries[::-1]) == manifest_md5(entries)  # order-free
    entries[0]["md5"] = hashlib.md5(b"other").hexdigest()
    assert manifest_md5(entries) != tree.hash_info.value


def test_metric_rows_cover_changed_added_and_removed_keys():
    rows = compare_metrics(
        "m.json", {"f1": 0.5, "acc": 0.9, "n": {"x": 1}}, {"f1": 0.25, "acc": 0.9, "new": 2}
    )
    assert [(r.key, r.recorded, r.reproduced) for r in rows] == [
        ("f1", 0.5, 0.25),
        ("n.x", 1, None),
        ("new", None, 2),
    ]
    assert rows[0].delta == -0.25 and rows[1].delta is None
    assert MetricRow("m", "flag", True, False).delta is None


def test_library_changes_and_verdicts():
    report = Report(
        model="m",
        version="v1.0.0",
        commit="c" * 40,
        stages=["train"],
        inputs=[],
        outputs=[],
        metrics=[],
        versions_recorded={"python": "3.11.7", "numpy": "2.4.6", "modelops": "0.1.0"},
        versions_today={"python": "3.11.7", "numpy": "2.5.0"},
    )
    assert report.library_changes == {"numpy": ("2.4.6", "2.5.0")}
    assert (report.verdict, report.exit_code) == ("identical", 0)
    report.failure = "stage train failed"
    assert (report.verdict, report.exit_code) == ("differs", 1)
    exc = InputError("data/raw/x.csv", "data/raw/x.csv: gone")
    assert unverifiable(exc)["verdict"] == "unverifiable" and exc.exit_code == 5
