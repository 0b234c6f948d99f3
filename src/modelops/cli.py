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
    tuning,
    ui,
    verify,
)
from modelops.commands.options import pick_version as _pick_version

GROUPS = (registry, checkout, show, experiments, tuning, serving, monitoring, verify, remote, ui)


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
    """Run the CLI; return the exit code from errors.py's table (one per error family)."""
    from modelops.errors import BUG_EXIT, Interrupted, ModelopsError, WorkspaceError

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
    except OSError as exc:  # the filesystem refused a path the user gave: not a bug
        if args.traceback:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}; check the path", file=sys.stderr)
        return WorkspaceError.exit_code
    except Exception as exc:  # DVC refusing the repository (a broken dvc.yaml) or a bug
        if args.traceback:
            raise
        if type(exc).__module__.split(".")[0] == "dvc":
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            print(f"error: dvc: {first[:500]}; fix the repository's DVC files", file=sys.stderr)
            return WorkspaceError.exit_code
        import traceback

        traceback.print_exc()
        print(
            f"error: modelops {args.command} hit a bug (traceback above); please report it",
            file=sys.stderr,
        )
        return BUG_EXIT


if __name__ == "__main__":
    sys.exit(main())
