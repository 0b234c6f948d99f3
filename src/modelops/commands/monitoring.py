"""monitor and make-batch: checking a batch against the training profile, and demo batches."""

from __future__ import annotations

import argparse

from modelops.commands.options import Parents, command, name_arg, stage_or_version


def cmd_monitor(args: argparse.Namespace) -> int:
    from modelops import api, monitoring
    from modelops.files import write_text

    report = api.monitor(args.name, batch=args.batch, version=args.version, stage=args.stage)
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
    sp.add_argument(
        "--batch",
        required=True,
        help="CSV with the model's features (and optionally the target, for performance)",
    )
    sp.add_argument(
        "--format",
        choices=["text", "md", "json"],
        default="text",
        help="report format (default: text)",
    )
    sp.add_argument("--output", help="write the report here instead of stdout")
    _add_make_batch(sub, shared)


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
