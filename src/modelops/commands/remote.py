"""publish and gc: the DVC remote. ``-r/--remote NAME`` names the DVC remote in both, as in
``dvc push`` and ``dvc gc``; ``gc -c/--cloud`` also collects it, as ``dvc gc --cloud``."""

from __future__ import annotations

import argparse

from modelops.commands.options import Parents, command

REMOTE_HELP = "which DVC remote (default: the configured default)"


def cmd_publish(args: argparse.Namespace) -> int:
    from modelops import api

    done = api.publish(
        args.ref,
        version=args.version,
        all_versions=args.all,
        remote=args.remote,
        git_remote=args.git_remote,
        model_only=args.model_only,
    )
    print(
        f"published {', '.join(done.versions)}: {done.objects} object(s) verified on the DVC "
        f"remote, then pushed {len(done.tags)} tag(s) to {args.git_remote}"
    )
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    if args.remote and not args.cloud:  # else the remote a user named would be left as it was
        from modelops.errors import UsageError

        raise UsageError(
            f"gc: -r/--remote {args.remote} names the DVC remote that -c/--cloud collects; "
            "add -c to collect it, or drop -r to collect only the local cache"
        )
    from modelops import api

    for r in api.gc(dry_run=args.dry_run, cloud=args.cloud, remote=args.remote):
        verb = "would remove" if args.dry_run else "removed"
        print(f"{r.where}: {verb} {r.removed} object(s), {r.bytes:,} bytes")
        if args.dry_run:
            for path in r.paths[:50]:
                print(f"  {path}")
            if len(r.paths) > 50:
                print(f"  ... and {len(r.paths) - 50} more")
    return 0


def add_parsers(sub: argparse._SubParsersAction, shared: Parents) -> None:
    sp = command(
        sub,
        shared,
        "publish",
        cmd_publish,
        "Push a version's DVC data to the remote, verify it "
        "is all there, then push its registry tags",
    )
    sp.add_argument("ref", nargs="?", metavar="NAME@vX.Y.Z", help="the version to publish")
    sp.add_argument("--version", help="the version, when REF is only the model name")
    sp.add_argument("--all", action="store_true", help="every live version and stage holder")
    sp.add_argument("-r", "--remote", metavar="NAME", help=REMOTE_HELP)
    sp.add_argument("--git-remote", default="origin", help="git remote for tags (default origin)")
    sp.add_argument(
        "--model-only",
        action="store_true",
        help="push only the model bundle, not the data it was trained on",
    )

    sp = command(
        sub,
        shared,
        "gc",
        cmd_gc,
        "Remove cached (and with --cloud, remote) objects that no "
        "branch, experiment, live version or stage holder needs",
    )
    sp.add_argument("--dry-run", action="store_true", help="list what would go, remove nothing")
    sp.add_argument("-c", "--cloud", action="store_true", help="also collect the DVC remote")
    sp.add_argument("-r", "--remote", metavar="NAME", help=REMOTE_HELP)
