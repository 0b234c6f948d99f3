"""Workspace reads of a commit's DVC records, on tiny git repositories (no DVC run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelops import api
from modelops.errors import WorkspaceError
from tests.helpers import git

pytestmark = pytest.mark.slow  # runs git

LOCK = """\
schema: '2.0'
stages:
  train:
    cmd: python train.py
    outs:
    - path: models/model.npz
      hash: md5
      md5: 0123456789abcdef0123456789abcdef
      size: 10
"""


def committed(root: Path, files: dict[str, str]) -> Path:
    git(root, "init", "-q", "-b", "main")
    for name, text in {"dvc.yaml": "stages: {}\n", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "records")
    return root


def test_outputs_of_a_commit_come_from_its_lock_and_dvc_files(tmp_path):
    data = "outs:\n- md5: fedcba9876543210fedcba9876543210\n  hash: md5\n  path: raw.csv\n"
    repo = committed(tmp_path, {"dvc.lock": LOCK, "data/raw.csv.dvc": data})
    assert api.workspace(repo).cached_outputs_at("HEAD") == {
        "models/model.npz": "0123456789abcdef0123456789abcdef",
        "data/raw.csv": "fedcba9876543210fedcba9876543210",
    }


@pytest.mark.parametrize(
    ("name", "text", "detail"),
    [
        ("dvc.lock", "- a list\n- not stages\n", "the file is a list, not a mapping"),
        ("dvc.lock", "stages:\n  train:\n    outs:\n    - [a, b]\n", "an entry of outs is a list"),
        ("dvc.lock", "stages: [train]\n", "stages is a list, not a mapping"),
        ("data/raw.csv.dvc", "outs: {path: raw.csv}\n", "outs is a dict, not a list"),
        ("data/raw.csv.dvc", "outs: [\n", "while parsing a flow node"),
    ],
)
def test_a_record_not_in_dvcs_shape_is_one_error_line(tmp_path, name, text, detail):
    """A hand-edited or hostile dvc.lock or .dvc file at a revision used to raise an
    AttributeError (a traceback); now one line names the file, the revision and the fault."""
    repo = committed(tmp_path, {name: text})
    with pytest.raises(WorkspaceError) as caught:
        api.workspace(repo).cached_outputs_at("HEAD")
    message = str(caught.value)
    assert message.startswith(f"{name} at HEAD: not in the shape DVC writes (")
    assert detail in message and "\n" not in message


def test_the_default_model_is_named_by_the_top_level_dvc_yaml(tmp_path):
    """A nested dvc.yaml's artifact is ``sub/dvc.yaml:name`` to DVC and GTO, so it does not
    make the bare name ambiguous; a dvc.yaml that is not YAML is one line."""
    top = "artifacts:\n  churn:\n    path: ${paths.model}\n    type: model\n"
    nested = "artifacts:\n  other: {path: x}\n"
    repo = committed(tmp_path, {"dvc.yaml": top, "sub/dvc.yaml": nested})
    ws = api.workspace(repo)
    assert ws.declared_names() == ["churn"]
    (repo / "dvc.yaml").write_text("artifacts: [\n")
    with pytest.raises(WorkspaceError, match=r"dvc\.yaml: not valid YAML"):
        ws.declared_names()
    (repo / "dvc.yaml").write_text("stages: {}\n")
    assert ws.declared_names() == []


def test_a_yaml_file_is_parsed_once_per_content_across_revisions(tmp_path):
    """A page of the registry reads params.yaml at many versions; the same bytes at two
    revisions are one parse (the result is shared, read-only), and other bytes another."""
    repo = committed(tmp_path, {"params.yaml": "paths:\n  model: models/model.npz\n"})
    (repo / "notes.txt").write_text("a commit that leaves params.yaml as it was\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "notes")
    ws = api.workspace(repo)
    first, again = ws.yaml_at("HEAD~1", "params.yaml"), ws.yaml_at("HEAD", "params.yaml")
    assert first == {"paths": {"model": "models/model.npz"}} and again is first
    (repo / "params.yaml").write_text("paths:\n  model: models/other.npz\n")
    git(repo, "commit", "-qam", "another model path")
    changed = ws.yaml_at("HEAD", "params.yaml")
    assert changed is not first and changed["paths"]["model"] == "models/other.npz"
