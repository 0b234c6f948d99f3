"""DVC stage entry points: ``python -m modelops.stages.<name>``.

Each stage parses flags (paths come from dvc.yaml, which takes them from
params.yaml), validates the whole params.yaml, calls library functions and
writes its outputs atomically. ``run`` is the single error funnel.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from modelops import numerics


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m modelops.stages.{prog}", description=description)
    p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    p.add_argument("--traceback", action="store_true", help="show a traceback on errors")
    return p


def entry(main: Callable[[], int]) -> None:
    """``python -m modelops.stages.<name>``: run ``main`` in the pinned numerical environment
    (``modelops.numerics``), so the outputs are the same bytes on every machine."""
    numerics.pin_process()
    sys.exit(main())


def run(
    body: Callable[[argparse.Namespace], None],
    p: argparse.ArgumentParser,
    argv: Sequence[str] | None,
) -> int:
    """Parse, run, and turn a ModelopsError into one line on stderr and its exit code."""
    from modelops.errors import ModelopsError

    args = p.parse_args(argv)
    try:
        body(args)
    except ModelopsError as exc:
        if args.traceback:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0
