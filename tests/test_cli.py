"""The CLI's parsing, without a repository: fast checks of what each command accepts."""

from __future__ import annotations

import pytest

from modelops import cli
from modelops.errors import UsageError

# the required options of each command that names a version (besides the version itself)
REST = {
    "get": ["-o", "out.npz"],
    "predict": ["--input", "in.csv", "--output", "out.csv"],
    "monitor": ["--batch", "in.csv"],
    "make-batch": ["-o", "out.csv"],
    "serve": [],
}


@pytest.mark.parametrize("command", sorted(REST))
def test_name_at_version_is_taken_as_the_other_commands_take_it(command: str):
    """Issue 13, item 23: get, predict, monitor, make-batch and serve took only --version
    (serve only --stage); NAME@vX.Y.Z works as it does for show, promote and checkout."""
    parser = cli.build_parser()
    args = parser.parse_args([command, "model@v1.2.3", *REST[command]])
    cli._pick_version(args)
    assert (args.name, args.version, args.stage) == ("model", "v1.2.3", None)
    args = parser.parse_args([command, "--version", "v1.2.3", *REST[command]])
    cli._pick_version(args)
    assert (args.name, args.version, args.stage) == (None, "v1.2.3", None)
    # exactly one way of naming it
    args = parser.parse_args([command, "model@v1.2.3", "--stage", "prod", *REST[command]])
    with pytest.raises(UsageError, match="name the version once"):
        cli._pick_version(args)
    args = parser.parse_args([command, *REST[command]])
    with pytest.raises(UsageError, match=r"name the version: NAME@vX\.Y\.Z"):
        cli._pick_version(args)


def _commands(parser=None, path=()):
    """Every command and subcommand, from the parser itself: (words, its parser, the help
    the command list shows for it)."""
    import argparse

    parser = parser or cli.build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            listed = {a.dest: a.help for a in action._choices_actions}
            for name, sp in action.choices.items():
                yield (*path, name), sp, listed.get(name)
                yield from _commands(sp, (*path, name))


COMMANDS = list(_commands())


def test_the_walk_finds_every_command():
    """The walk below checks what it finds: make sure it finds them all, nested ones too."""
    words = {" ".join(path) for path, _, _ in COMMANDS}
    assert {
        "register",
        "gc",
        "publish",
        "exp",
        "exp best",
        "make-batch",
        "ui",
        "logs export",
        "tune",
    } <= words
    assert len(words) == 24


@pytest.mark.parametrize("path", [p for p, _, _ in COMMANDS], ids=" ".join)
def test_every_command_has_help_and_its_help_exits_0(path, capsys):
    """GTO's check: each command and subcommand is listed with a help text, has a
    description, every option has a help text, and ``modelops <cmd> --help`` exits 0."""
    sp, listed = next((sp, h) for p, sp, h in COMMANDS if p == path)
    assert listed and sp.description, path
    for action in sp._actions:
        assert action.help, f"{' '.join(path)} {action.option_strings or action.dest}"
    with pytest.raises(SystemExit) as exit_:
        cli.main([*path, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: modelops {' '.join(path)}") and sp.description[:30] in out


def test_gc_and_publish_name_the_remote_alike():
    """Issue 14: ``gc --remote`` was a flag and ``gc --remote-name`` named the remote, while
    ``publish --remote`` named it. Now, as in ``dvc gc``: ``-c/--cloud`` also collects the
    remote, ``-r/--remote NAME`` names it, in both commands."""
    parser = cli.build_parser()
    args = parser.parse_args(["gc", "--cloud", "--remote", "store"])
    assert (args.cloud, args.remote) == (True, "store")
    args = parser.parse_args(["gc", "-c", "-r", "store", "--dry-run"])
    assert (args.cloud, args.remote, args.dry_run) == (True, "store", True)
    args = parser.parse_args(["gc"])
    assert (args.cloud, args.remote) == (False, None)
    for publish in (["publish", "-r", "store"], ["publish", "--remote", "store"]):
        assert parser.parse_args([*publish, "m@v1.0.0"]).remote == "store"


@pytest.mark.parametrize("argv", [["gc", "--remote"], ["gc", "--remote-name", "store"]])
def test_the_old_gc_options_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_:  # the parser only: never run gc here
        cli.build_parser().parse_args(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "argument -r/--remote: expected one argument" in err or (
        "unrecognized arguments: --remote-name store" in err
    )


def test_gc_refuses_a_remote_name_without_cloud(tmp_path, monkeypatch, capsys):
    """``gc -r NAME`` alone would collect only the local cache and leave the remote the user
    named untouched: refused before anything runs (outside a repository, to be sure)."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(["gc", "-r", "storage"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: gc: -r/--remote storage names the DVC remote") and "add -c" in err


def test_traceback_goes_before_or_after_the_command():
    parser = cli.build_parser()
    assert parser.parse_args(["--traceback", "list"]).traceback is True
    assert parser.parse_args(["list", "--traceback"]).traceback is True
    assert parser.parse_args(["list"]).traceback is False


def test_no_function_of_the_cli_is_over_80_lines():
    """Issue 14: build_parser was 256 lines; each command's parser now sits by its handler."""
    import ast
    from pathlib import Path

    src = Path(cli.__file__).parent
    for path in [src / "cli.py", *sorted((src / "commands").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                assert length <= 80, f"{path.name}: {node.name} has {length} lines"
