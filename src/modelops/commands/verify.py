"""verify: re-run a version's pipeline and compare its outputs with its dvc.lock."""

from __future__ import annotations

import argparse
import json

from modelops.commands.options import Parents, command
from modelops.commands.output import emit, table


def cmd_verify(args: argparse.Namespace) -> int:
    from modelops import api, verify
    from modelops.errors import InputError, Interrupted

    try:
        report = api.verify(args.ref, version=args.version, stage=args.stage)
    except InputError as exc:
        if args.json:
            print(json.dumps(verify.unverifiable(exc), indent=2))
        raise
    except KeyboardInterrupt:
        raise Interrupted("verify stopped; the temporary worktree was removed") from None
    emit(args, report.to_dict(), _verify_text(report))
    return report.exit_code


def _verify_text(report) -> str:
    ref = f"{report.model}@{report.version} (commit {report.commit[:8]})"
    n = len(report.outputs)
    if report.verdict == "identical":
        lines = [
            f"identical: {ref} reproduces all {n} outputs of its dvc.lock "
            f"(stages {', '.join(report.stages)}; {len(report.inputs)} inputs checked first)"
        ]
    else:
        lines = [f"differs: {len(report.differing)} of {n} outputs of {ref} differ"]
        lines += _differences(report)
    changes = report.library_changes
    if changes:
        moved = ", ".join(f"{k} {a} -> {b}" for k, a, b in ((k, *v) for k, v in changes.items()))
        lines.append(
            f"note: ran in today's environment, whose library versions differ from the ones "
            f"in the version's model card (the likely cause of a difference): {moved}"
        )
    elif report.versions_recorded:
        lines.append("note: ran in today's environment, with the library versions the card records")
    lines += [f"note: {x}" for x in report.notes]
    return "\n".join(lines)


def _differences(report) -> list[str]:
    """The outputs that differ, the metrics beside their records, and why repro failed."""
    rows = [
        {
            "output": o.path + (f" ({', '.join(o.files[:3])})" if o.files else ""),
            "stage": o.stage,
            "recorded md5": o.recorded,
            "reproduced md5": o.reproduced or "not produced",
        }
        for o in report.differing
    ]
    lines = [table(rows, ["output", "stage", "recorded md5", "reproduced md5"])]
    if report.metrics:
        rows = [
            {
                "metric": f"{m.file}: {m.key}",
                "recorded": "-" if m.recorded is None else repr(m.recorded),
                "reproduced": "-" if m.reproduced is None else repr(m.reproduced),
                "delta": "" if m.delta is None else f"{m.delta:+.6g}",
            }
            for m in report.metrics
        ]
        lines += ["", table(rows, ["metric", "recorded", "reproduced", "delta"])]
    if report.failure:
        lines += ["", "dvc repro failed:", *("  " + x for x in report.failure.splitlines())]
    return lines


def add_parsers(sub: argparse._SubParsersAction, shared: Parents) -> None:
    sp = command(
        sub,
        shared,
        "verify",
        cmd_verify,
        "Re-run a version's pipeline from its commit in a temporary worktree, inputs checked "
        "first, and compare every output with its dvc.lock; exit 0 identical, 1 differs, "
        "5 an input cannot be reached or does not match its record",
        json=True,
    )
    sp.add_argument(
        "ref", nargs="?", metavar="NAME@vX.Y.Z", help="the version (or NAME with --version)"
    )
    group = sp.add_mutually_exclusive_group()
    group.add_argument("--stage", help="verify the version holding this stage, e.g. prod")
    group.add_argument("--version", help="the version, when REF is only the model name")
