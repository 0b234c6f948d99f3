"""Writing registry tags in a tiny git repository (no DVC, no pipeline): the typed
``TagExists``, the retry with a fresh name, and the lock taken by the operations."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from modelops.errors import RegistryError, TagExists, WorkspaceError
from modelops.registry import ops, tags
from modelops.workspace import Workspace
from tests.helpers import git

pytestmark = pytest.mark.slow  # starts git processes


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "dvc.yaml").write_text("stages: {}\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "one")
    return Workspace(root)


def test_an_existing_name_is_a_typed_tag_exists(ws: Workspace, monkeypatch):
    """Checked on the ref, not in git's wording: a translated git says the same thing."""
    tags.create_once(ws, "model@v0.0.1", "first\n", "HEAD")
    monkeypatch.setenv("LANGUAGE", "de")  # git's messages in another language, if installed
    with pytest.raises(TagExists) as info:
        tags.create_once(ws, "model@v0.0.1", "second\n", "HEAD")
    assert info.value.tag == "model@v0.0.1"
    assert str(info.value) == "tag model@v0.0.1 already exists"
    assert isinstance(info.value, RegistryError)  # exit code and message as before
    assert git(ws.root, "tag", "-l", "--format=%(contents)", "model@v0.0.1").stdout == "first\n\n"


def test_other_git_failures_are_not_taken_for_a_taken_name(ws: Workspace):
    with pytest.raises(WorkspaceError, match="git tag") as info:
        tags.create_once(ws, "model@v0.0.1", "x\n", "no-such-revision")
    assert not isinstance(info.value, TagExists)
    assert not tags.exists(ws, "model@v0.0.1")


def test_create_retries_with_a_fresh_name_then_gives_up_on_the_same_one(ws: Workspace):
    tags.create_once(ws, "model@v0.0.1", "taken by a racing writer\n", "HEAD")
    offers = iter(["model@v0.0.1", "model@v0.0.2"])
    assert tags.create(ws, lambda: (next(offers), "mine\n"), "HEAD") == "model@v0.0.2"
    with pytest.raises(TagExists, match=r"tag model@v0\.0\.2 already exists"):
        tags.create(ws, lambda: ("model@v0.0.2", "again\n"), "HEAD")


def test_tag_messages_keep_a_summary_line_and_json():
    text = tags.message("Promote model v0.0.1 to prod", {"b": 1, "a": [2]})
    assert text.partition("\n\n")[0] == "Promote model v0.0.1 to prod"
    assert text.endswith("}\n") and '"a"' in text.split('"b"')[0]  # keys sorted


def test_the_operations_take_the_registry_lock(ws: Workspace):
    """The lock sits on the write path (``tags.locked``), so no caller can forget it: a
    registry write waits while another process or thread holds it."""
    assert all(getattr(op, "__wrapped__", None) for op in (ops.register, ops.promote, ops.rollback))
    started, finished = threading.Event(), threading.Event()
    errors: list[Exception] = []

    def retire_unknown() -> None:
        started.set()
        try:
            ops.retire(ws, None, "model", "v0.0.1", None, False)  # type: ignore[arg-type]
        except RegistryError as exc:  # reached only once the lock is free
            errors.append(exc)
        finished.set()

    with ws.lock():
        thread = threading.Thread(target=retire_unknown)
        thread.start()
        assert started.wait(5)
        assert not finished.wait(0.5), "retire ran while the registry lock was held"
    thread.join(10)
    assert finished.is_set()
    assert "model@v0.0.1 is not registered" in str(errors[0])
