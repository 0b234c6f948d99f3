"""register, promote, rollback, retire: the commands that write registry tags."""

from __future__ import annotations

import argparse

from modelops.commands.options import Parents, command, name_arg, version_ref


def cmd_register(args: argparse.Namespace) -> int:
    from modelops import api

    info = api.register(args.name, bump=args.bump, version=args.version, message=args.message)
    lin = info.lineage
    print(
        f"registered {info.name}@{info.version} at {info.commit[:8]} "
        f"(model md5 {lin['model']['md5']})"
    )
    # Not `git push origin TAG`: that shares the tag without the bytes it names.
    print(f"share it with: modelops publish {info.name}@{info.version}")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from modelops import api

    tag, gate = api.promote(
        args.ref, stage=args.stage, version=args.version, force=args.force, reason=args.reason
    )
    verdict = "passed" if gate.passed else "FAILED (forced)"
    print(f"promoted: {tag}\ngate {verdict}: {gate.note}")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from modelops import api

    tag, old, new = api.rollback(args.name, stage=args.stage, to=args.to)
    print(f"rolled back {args.stage} from {old} to {new}: {tag}")
    return 0


def cmd_retire(args: argparse.Namespace) -> int:
    from modelops import api

    tag = api.retire(args.ref, version=args.version, reason=args.reason, force=args.force)
    print(f"retired: {tag}")
    return 0


def add_parsers(sub: argparse._SubParsersAction, shared: Parents) -> None:
    sp = command(
        sub, shared, "register", cmd_register, "Register HEAD as a new version (tag NAME@vX.Y.Z)"
    )
    name_arg(sp)
    sp.add_argument(
        "--bump",
        choices=["major", "minor", "patch"],
        help="which part of the highest version to bump (default: patch)",
    )
    sp.add_argument("--version", help="register exactly this version, e.g. v1.2.0")
    sp.add_argument("-m", "--message", help="a note recorded in the tag")

    sp = command(
        sub, shared, "promote", cmd_promote, "Assign a stage to a version, after the quality gate"
    )
    version_ref(sp)
    sp.add_argument("--stage", required=True, help="stage to assign (registry.stages)")
    sp.add_argument("--force", action="store_true", help="promote even if the gate fails")
    sp.add_argument("--reason", help="why the gate was overridden (required with --force)")

    sp = command(sub, shared, "rollback", cmd_rollback, "Give a stage back to its previous holder")
    name_arg(sp)
    sp.add_argument("--stage", required=True, help="stage to roll back, e.g. prod")
    sp.add_argument("--to", metavar="vX.Y.Z", help="an earlier holder to go back to")

    sp = command(sub, shared, "retire", cmd_retire, "Retire a version (tag NAME@vX.Y.Z!)")
    version_ref(sp)
    sp.add_argument("--reason", help="why, recorded in the tag")
    sp.add_argument(
        "--force",
        action="store_true",
        help="retire even if it holds a protected stage (registry.protected_stages)",
    )
