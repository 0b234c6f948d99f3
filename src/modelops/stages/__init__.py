"""DVC stage entry points: ``python -m modelops.stages.<name>``.

Each stage parses flags (paths come from dvc.yaml, which takes them from
params.yaml), validates the whole params.yaml, calls library functions and
writes its outputs atomically, all together inside ``writing()``. ``run`` is the single
error funnel. Ctrl-C (or SIGTERM) stops a stage with one ``interrupted: ...`` line and exit
130: before ``writing()`` nothing was written; during it, the writes finish first.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import sys
from collections.abc import Callable, Iterator, Sequence

from modelops import interrupts, numerics
from modelops.errors import Interrupted


def parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"python -m modelops.stages.{prog}", description=description)
    p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    p.add_argument("--traceback", action="store_true", help="show a traceback on errors")
    return p


def entry(main: Callable[[], int]) -> None:
    """``python -m modelops.stages.<name>``: run ``main`` in the pinned numerical environment
    (``modelops.numerics``), so the outputs are the same bytes on every machine."""
    # Under ``python -m`` the module is ``__main__``; its spec keeps the real name.
    spec = getattr(sys.modules.get(main.__module__), "__spec__", None)
    name = (spec.name if spec else main.__module__).rpartition(".")[2]
    try:
        numerics.pin_process()
        with interrupts.as_interrupt():
            code = main()
    except KeyboardInterrupt:  # before ``run`` took over (it reports its own)
        print(_stopped(name, written=False), file=sys.stderr)
        code = Interrupted.exit_code
    sys.exit(code)


def _stopped(name: str, written: bool) -> str:
    if written:
        return (
            f"interrupted: {name} stopped after writing all its outputs (DVC records them "
            f"only for a stage that completes: `dvc repro` runs it again)"
        )
    return f"interrupted: {name} stopped; nothing was written"


@contextlib.contextmanager
def writing(name: str) -> Iterator[None]:
    """Write the stage's outputs inside this block: an interrupt waits until all of them are
    written (each one is atomic already), so a stage leaves all its new outputs or none."""
    interrupts.pause_for_test(f"{name}-computed")
    with interrupts.deferred():
        interrupts.pause_for_test(f"{name}-writing")
        yield


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
    except KeyboardInterrupt as exc:
        if args.traceback:
            raise
        name = p.prog.rpartition(".")[2]
        print(_stopped(name, written=isinstance(exc, interrupts.Finished)), file=sys.stderr)
        return Interrupted.exit_code
    except ModelopsError as exc:
        if args.traceback:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # a bug: shown whole, with the table's code (never 1, a verdict)
        refused = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
        if isinstance(exc, OSError) and exc.errno in refused and not args.traceback:
            # A full disk, a quota or a file-size limit is the machine's state, not a bug; what
            # was being written is gone (each output is written to a temp file first).
            from modelops.errors import WorkspaceError

            where = f" writing {exc.filename}" if exc.filename else ""
            if exc.errno == errno.ENOSPC:
                what, fix = "no space left on the device", "free space"
            else:
                what, fix = f"the system refused a write ({exc.strerror})", "lift that limit"
            print(f"error: disk: {what}{where}; {fix} and run the stage again", file=sys.stderr)
            return WorkspaceError.exit_code
        import traceback

        from modelops.errors import BUG_EXIT

        traceback.print_exc()
        return BUG_EXIT
    return 0
