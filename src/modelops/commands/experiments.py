"""exp best, report, merge: choosing between experiments and branches."""

from __future__ import annotations

import argparse
import json

from modelops.commands.options import Parents, command
from modelops.commands.output import table


def cmd_exp_best(args: argparse.Namespace) -> int:
    from modelops import api

    higher = True if args.max else False if args.min else None
    board = api.exp_best(args.metric, higher=higher, apply=args.apply, branch=args.branch)
    # Only the params that differ between experiments say anything about the ranking.
    keys = sorted(
        {k for r in board.ranked for k in r.params}
        if len(board.ranked) < 2
        else {
            k
            for r in board.ranked
            for k in r.params
            if len({repr(x.params.get(k)) for x in board.ranked}) > 1
        }
    )
    rows = [
        {
            "rank": i + 1,
            "experiment": r.name,
            "rev": r.rev[:7],
            board.metric: "—" if r.value is None else f"{r.value:.6g}",
            "params": " ".join(f"{k}={r.params.get(k)}" for k in keys),
        }
        for i, r in enumerate(board.ranked)
    ]
    direction = "higher" if board.higher_is_better else "lower"
    print(f"experiments by {board.metric} ({direction} is better):")
    print(table(rows, ["rank", "experiment", "rev", board.metric, "params"]))
    for note in board.notes:
        print(f"note: {note}")
    if args.apply:
        print(f"applied {board.best.name} to the workspace")
    elif args.branch:
        print(f"created branch {args.branch} from {board.best.name}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from modelops import api, reports

    data = api.report(against=args.against, plots_dir=None if args.no_plots else args.plots_dir)
    print(json.dumps(data, indent=2) if args.format == "json" else reports.markdown(data), end="")
    if args.format == "json":
        print()
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from modelops import api

    result = api.merge(args.branch)
    if result.commit is None:
        print(f"already up to date with {args.branch}")
        return 0
    if result.regenerated:
        print(f"regenerated (were in conflict): {', '.join(result.regenerated)}")
    done = ", ".join(result.reran) or "nothing (outputs were current)"
    print(f"reproduced (run, or restored from DVC's run cache): {done}")
    print(f"merged {args.branch}: {result.commit[:8]}")
    return 0


def add_parsers(sub: argparse._SubParsersAction, shared: Parents) -> None:
    exp = command(sub, shared, "exp", None, "Work with DVC experiments")
    exp_sub = exp.add_subparsers(
        dest="exp_command", metavar="COMMAND", required=True, help="what to do with experiments"
    )
    _add_exp_best(exp_sub, shared)

    sp = command(
        sub,
        shared,
        "report",
        cmd_report,
        "Compare the workspace's params and metrics with a revision or a stage",
    )
    sp.add_argument(
        "--against",
        default="HEAD",
        metavar="REV|NAME#STAGE",
        help="what to compare with (default: HEAD)",
    )
    sp.add_argument("--format", choices=["md", "json"], default="md", help="output format")
    sp.add_argument(
        "--plots-dir",
        default="dvc_plots",
        help="where `dvc plots diff` writes the plots (default: dvc_plots)",
    )
    sp.add_argument("--no-plots", action="store_true", help="skip rendering the plots")

    sp = command(
        sub,
        shared,
        "merge",
        cmd_merge,
        "Merge a branch, re-running the pipeline for generated files instead of hand-merging them",
    )
    sp.add_argument("branch", help="the branch to merge into the current one")


def _add_exp_best(exp_sub: argparse._SubParsersAction, shared: Parents) -> None:
    sp = exp_sub.add_parser(
        "best",
        help="Rank this commit's experiments; apply or branch the best",
        description="Rank this commit's experiments by a metric (from DVC's "
        "API) and optionally apply the best or make it a branch",
        parents=[shared.base],
    )
    sp.set_defaults(func=cmd_exp_best)
    sp.add_argument("--metric", required=True, help="metric to rank by, e.g. f1 or rmse")
    direction = sp.add_mutually_exclusive_group()
    direction.add_argument("--max", action="store_true", help="higher is better")
    direction.add_argument(
        "--min", action="store_true", help="lower is better (default for rmse, mae, log_loss)"
    )
    action = sp.add_mutually_exclusive_group()
    action.add_argument("--apply", action="store_true", help="dvc exp apply the best")
    action.add_argument("--branch", metavar="NAME", help="dvc exp branch the best into NAME")
