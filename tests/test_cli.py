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
