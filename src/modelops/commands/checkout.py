"""checkout and get: a version's bytes, verified, into the workspace or into one file."""

from __future__ import annotations

import argparse

from modelops.commands.options import Parents, command, name_arg, stage_or_version, version_ref


def cmd_checkout(args: argparse.Namespace) -> int:
    from modelops import api

    info = api.checkout(args.ref, version=args.version, force=args.force)
    print(
        f"checked out {info.name}@{info.version} ({info.commit[:8]}, detached HEAD); "
        f"`git switch -` returns to your branch (then `dvc checkout`)"
    )
    for name in info.carried_remotes:
        print(
            f"note: .dvc/config at {info.version} predates DVC remote {name!r}; the "
            f"workspace's settings for it were kept in .dvc/config.local"
        )
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    from modelops import api

    info, md5 = api.get(
        args.name, output=args.output, version=args.version, stage=args.stage, force=args.force
    )
    print(f"wrote {args.output}: {info.name}@{info.version}, md5 {md5} (verified)")
    return 0


def add_parsers(sub: argparse._SubParsersAction, shared: Parents) -> None:
    sp = command(
        sub,
        shared,
        "checkout",
        cmd_checkout,
        "git checkout <version> && dvc checkout, refusing to lose uncommitted work",
    )
    version_ref(sp)
    sp.add_argument("--force", action="store_true", help="discard uncommitted changes")

    sp = command(sub, shared, "get", cmd_get, "Write a version's or stage's model bundle to a file")
    name_arg(sp)
    stage_or_version(sp, "")
    sp.add_argument("-o", "--output", required=True, help="file to write")
    sp.add_argument("--force", action="store_true", help="overwrite the output file")
