"""The options several commands share, declared once: the parent parsers (``--traceback``,
``--json``), how a command names a model or a version, and the check that it named the
version exactly once."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

Handler = Callable[[argparse.Namespace], int]
TRACEBACK_HELP = "show a traceback on errors"


@dataclass(frozen=True)
class Parents:
    """Parent parsers: ``base`` goes to every command, ``json`` to those that print data."""

    base: argparse.ArgumentParser
    json: argparse.ArgumentParser


def parents() -> Parents:
    base = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a subcommand's default would overwrite `modelops --traceback CMD`'s True.
    base.add_argument(
        "--traceback", action="store_true", default=argparse.SUPPRESS, help=TRACEBACK_HELP
    )
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="machine-readable output")
    return Parents(base=base, json=as_json)


def command(
    sub: argparse._SubParsersAction,
    shared: Parents,
    name: str,
    func: Handler | None,
    help_: str,
    *,
    json: bool = False,
) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` and the command list both show ``help_``."""
    extra = [shared.json] if json else []
    sp = sub.add_parser(name, help=help_, description=help_, parents=[shared.base, *extra])
    if func is not None:
        sp.set_defaults(func=func)
    return sp


def name_arg(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "name",
        nargs="?",
        metavar="NAME",
        help="model name (default: the one declared in dvc.yaml's artifacts:); "
        "where --stage/--version apply, NAME@vX.Y.Z names the version too",
    )


def version_ref(sp: argparse.ArgumentParser) -> None:
    """NAME@vX.Y.Z, or NAME with --version (promote, checkout, retire, show)."""
    sp.add_argument("ref", metavar="NAME@vX.Y.Z", help="the version (or NAME with --version)")
    sp.add_argument("--version", help="the version, when REF is only the model name")


def stage_or_version(sp: argparse.ArgumentParser, verb: str) -> None:
    """NAME@vX.Y.Z | --stage S | --version V, exactly one (get, predict, monitor,
    make-batch, serve); ``pick_version`` checks the positional form."""
    lead = f"{verb} " if verb else ""
    sp.set_defaults(name_may_hold_version=True)
    group = sp.add_mutually_exclusive_group()
    group.add_argument("--stage", help=f"{lead}the version holding this stage")
    group.add_argument("--version", help=f"{lead}this version, e.g. v1.2.0")


def pick_version(args: argparse.Namespace) -> None:
    """Commands with --stage|--version also take NAME@vX.Y.Z, as register, promote and show
    do: split it into name and version; exactly one way of naming the version."""
    from modelops.errors import UsageError

    if not getattr(args, "name_may_hold_version", False):
        return
    if args.name and "@" in args.name:
        if args.version or args.stage:
            raise UsageError(
                f"{args.name}: name the version once: NAME@vX.Y.Z, or --stage S, or --version V"
            )
        args.name, args.version = args.name.split("@", 1)
        args.name = args.name or None
    if not args.version and not args.stage and not getattr(args, "version_optional", False):
        raise UsageError("name the version: NAME@vX.Y.Z, --stage S or --version V")
