"""The ``modelops`` command: the top-level parser, assembled from ``modelops.commands``,
and ``main``, the one place where errors become exit codes.

Nothing heavy is imported here (the start-up path must not load numpy,
scikit-learn, pandas or dvc); each command imports ``api`` when it runs.
Exit codes come from ``modelops.errors``: each error family has its own, 70 is a
bug, 130 Ctrl-C; a command's verdict (``monitor`` alert, ``verify`` differs) is 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from modelops import __version__
from modelops.commands import (
    checkout,
    experiments,
    monitoring,
    options,
    registry,
    remote,
    serving,
    show,
    verify,
)
from modelops.commands.options import pick_version as _pick_version

GROUPS = (registry, checkout, show, experiments, serving, monitoring, verify, remote)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="modelops",
        description="Register, promote, roll back, check out, fetch and retire the model "
        "versions of this repository (git tags in GTO's grammar).",
    )
    p.add_argument("--version", action="version", version=f"modelops {__version__}")
    p.add_argument("--traceback", action="store_true", help=options.TRACEBACK_HELP)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    shared = options.parents()
    for group in GROUPS:
        group.add_parsers(sub, shared)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code (``modelops.errors``' table; 70 a bug, 130 Ctrl-C)."""
    from modelops.errors import BUG_EXIT, Interrupted, ModelopsError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        _pick_version(args)
        return int(args.func(args) or 0)
    except BrokenPipeError:  # `modelops list | head`: the reader left, not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:  # commands that leave something to say raise Interrupted
        if args.traceback:
            raise
        print(f"interrupted: modelops {args.command} stopped", file=sys.stderr)
        return Interrupted.exit_code
    except ModelopsError as exc:
        if args.traceback:
            raise
        label = "interrupted" if isinstance(exc, Interrupted) else "error"
        print(f"{label}: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception:  # not a user's mistake: a bug, shown whole, with a code of its own
        if args.traceback:
            raise
        import traceback

        traceback.print_exc()
        print(
            f"error: modelops {args.command} hit a bug (traceback above); please report it",
            file=sys.stderr,
        )
        return BUG_EXIT


if __name__ == "__main__":
    sys.exit(main())
