"""The ``modelops`` command: argparse subcommands that parse, call ``api``, print, exit.

Nothing heavy is imported here (the start-up path must not load numpy,
scikit-learn, pandas or dvc); each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from modelops import __version__


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="modelops",
        description="Version, promote, roll back and serve the model of this repository.",
    )
    p.add_argument("--version", action="version", version=f"modelops {__version__}")
    p.add_argument("--traceback", action="store_true", help="show a traceback on errors")
    p.add_subparsers(dest="command", metavar="COMMAND")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code (0 ok, 1 error, 2 usage error)."""
    from modelops.errors import ModelopsError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ModelopsError as exc:
        if args.traceback:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
