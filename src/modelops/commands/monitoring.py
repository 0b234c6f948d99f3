"""monitor, make-batch and logs export: checking a batch (or the prediction log) against the
training profile, demo batches, and the log as the next batch."""

from __future__ import annotations

import argparse

from modelops.commands.options import Parents, command, name_arg, stage_or_version


def cmd_monitor(args: argparse.Namespace) -> int:
    from modelops import api, monitoring
    from modelops.files import write_text

    report = api.monitor(
        args.name,
        batch=args.batch,
        from_logs=args.from_logs,
        since=args.since,
        version=args.version,
        stage=args.stage,
    )
    text = monitoring.render(report, args.format)
    if args.output:
        write_text(args.output, text)
        print(f"{report['verdict']}: {report['recommendation']} (report: {args.output})")
    else:
        print(text, end="")
    return 1 if report["verdict"] == "alert" else 0


def cmd_make_batch(args: argparse.Namespace) -> int:
    from modelops import api

    path = api.make_batch(
        args.name,
        output=args.output,
        shift=args.shift,
        feature=args.feature,
        strength=args.strength,
        rows=args.rows,
        seed=args.seed,
        with_target=args.with_target,
        version=args.version,
        stage=args.stage,
        force=args.force,
    )
    print(f"wrote {args.rows} rows ({args.shift} shift) to {path}")
    return 0


def add_parsers(sub: argparse._SubParsersAction, shared: Parents) -> None:
    sp = command(
        sub,
        shared,
        "monitor",
        cmd_monitor,
        "Check a batch for data drift, prediction drift and "
        "performance decay; exit 0 ok/warn, 1 alert, 4 a batch it cannot read",
    )
    name_arg(sp)
    stage_or_version(sp, "compare with")
    source = sp.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--batch",
        help="CSV with the model's features (and optionally the target, for performance)",
    )
    source.add_argument(
        "--from-logs",
        action="store_true",
        help="check what the server logged for the version (serving.log.dir), with the "
        "feedback labels for performance",
    )
    _since(sp)
    sp.add_argument(
        "--format",
        choices=["text", "md", "json"],
        default="text",
        help="report format (default: text)",
    )
    sp.add_argument("--output", help="write the report here instead of stdout")
    _add_make_batch(sub, shared)
    _add_logs(sub, shared)


def _since(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "--since",
        metavar="DURATION",
        help="only records logged in the last DURATION (30m, 24h, 7d)",
    )


def cmd_logs_export(args: argparse.Namespace) -> int:
    from modelops import api

    path, rows, labelled = api.logs_export(
        args.name,
        output=args.output,
        since=args.since,
        labelled_only=args.labelled_only,
        version=args.version,
        stage=args.stage,
        force=args.force,
    )
    print(f"wrote {rows} logged record(s), {labelled} with feedback labels, to {path}")
    return 0


def _add_logs(sub: argparse._SubParsersAction, shared: Parents) -> None:
    logs = command(sub, shared, "logs", None, "Work with the prediction log of modelops serve")
    logs_sub = logs.add_subparsers(
        dest="logs_command", metavar="COMMAND", required=True, help="what to do with the log"
    )
    sp = logs_sub.add_parser(
        "export",
        help="Write a version's logged inputs, with feedback labels, as a CSV batch",
        description="Write a version's logged inputs (default: the version that answered "
        "last), with their feedback labels in the target column, as a CSV batch for the "
        "monitor stage or the next training data",
        parents=[shared.base],
    )
    sp.set_defaults(func=cmd_logs_export, version_optional=True)
    name_arg(sp)
    stage_or_version(sp, "export the records of")
    _since(sp)
    sp.add_argument(
        "--labelled-only", action="store_true", help="only the records that have feedback"
    )
    sp.add_argument("-o", "--output", required=True, help="the CSV to write")
    sp.add_argument("--force", action="store_true", help="overwrite the output file")


def _add_make_batch(sub: argparse._SubParsersAction, shared: Parents) -> None:
    from modelops.monitoring import SHIFTS

    sp = command(
        sub,
        shared,
        "make-batch",
        cmd_make_batch,
        "Write a seeded batch from the prepared data with "
        "one kind of drift, for trying out `modelops monitor`",
    )
    name_arg(sp)
    stage_or_version(sp, "use")
    sp.add_argument("--shift", choices=SHIFTS, default="none", help="kind of drift (default none)")
    sp.add_argument("--feature", help="feature to shift (default: the first of its kind)")
    sp.add_argument(
        "--strength",
        type=float,
        help="mean: shift in standard deviations (1); "
        "scale: extra spread (1 = twice as wide); category: share moved to the rarest "
        "category (0.5); label: positive share (0.9)",
    )
    sp.add_argument("--rows", type=int, default=1000, help="rows to write (default 1000)")
    sp.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sp.add_argument("--with-target", action="store_true", help="include the target column")
    sp.add_argument("-o", "--output", required=True, help="CSV to write")
    sp.add_argument("--force", action="store_true", help="overwrite the output file")
