"""The ``modelops`` command: argparse subcommands that parse, call ``api``, print, exit.

Nothing heavy is imported here (the start-up path must not load numpy,
scikit-learn, pandas or dvc); each command imports ``api`` when it runs.
Exit codes: 0 ok, 1 refused or failed, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from modelops import __version__


def _safe(value: Any) -> str:
    """Text a terminal shows as it is: tag authors and messages come from anyone who can
    push a tag, so control characters (escape sequences, newlines, bidi overrides) print
    escaped, as ``\\x1b`` or ``\\u202e``."""
    import unicodedata

    return "".join(
        ch if unicodedata.category(ch)[0] != "C" else ascii(ch)[1:-1] for ch in str(value)
    )


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    cells = [[_safe(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(columns), *(line(r) for r in cells)]).rstrip()


def _pick_version(args: argparse.Namespace) -> None:
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
    if not args.version and not args.stage:
        raise UsageError("name the version: NAME@vX.Y.Z, --stage S or --version V")


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2) if getattr(args, "json", False) else text)


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


def cmd_retire(args: argparse.Namespace) -> int:
    from modelops import api

    tag = api.retire(args.ref, version=args.version, reason=args.reason, force=args.force)
    print(f"retired: {tag}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from modelops import api

    rows = api.list_versions(args.name)
    # Four metrics fit a terminal: the gate's first (it decides promotions), then by name.
    names = sorted({k for r in rows for k in r["metrics"]})
    gate = api.gate_metric(metrics=names)
    keys = ([gate] if gate in names else []) + [k for k in names if k != gate][
        : 4 - (gate in names)
    ]
    table = [
        {
            "name": r["name"],
            "version": r["version"],
            "stages": ",".join(r["stages"]) or "-",
            "retired": "yes" if r["retired"] else "",
            "registered": r["registered_at"],
            **{k: f"{r['metrics'][k]:.4g}" if k in r["metrics"] else "" for k in keys},
        }
        for r in rows
    ]
    cols = ["name", "version", "stages", "retired", "registered", *keys]
    _emit(args, rows, _table(table, cols) if rows else "no versions registered yet")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from modelops import api

    d = api.show(args.ref, version=args.version)
    lin = d["lineage"]
    lines = [
        f"{d['name']}@{d['version']}  commit {d['commit']}",
        f"stages: {', '.join(d['stages']) or '-'}   retired: {'yes' if d['retired'] else 'no'}",
        f"registered {d['registered_at']} by {_safe(d['author'])}",
    ]
    if lin.get("model"):
        m = lin["model"]
        lines.append(f"model: {m['path']} md5 {m['md5']} sha256 {m['sha256']}")
    if d["metrics"]:
        lines.append("metrics: " + ", ".join(f"{k} {v:.4g}" for k, v in d["metrics"].items()))
    # The rest of the lineage --json has: where the data came from, and the params.
    for section in ("data", "params"):
        if lin.get(section):
            lines.append(f"{section}: " + _safe(" ".join(_flat(lin[section]))))
    lines += ["events:"] + [
        f"  {e['time']}  {_safe(e['tag'])}  {_safe(e['summary'])}"
        + (f"  ({_safe(_details(e))})" if _details(e) else "")
        for e in d["events"]
    ]
    _emit(args, d, "\n".join(lines))
    return 0


def _flat(tree: Any, prefix: str = "") -> list[str]:
    """``a.b=value`` for every leaf of nested dicts (lists and scalars as JSON would show)."""
    if not isinstance(tree, dict):
        return [f"{prefix}={tree if isinstance(tree, str) else json.dumps(tree)}"]
    return [f for k, v in tree.items() for f in _flat(v, f"{prefix}.{k}" if prefix else str(k))]


def _details(event: dict[str, Any]) -> str:
    """What --json has beyond the columns: forced, the reason, where a stage came from."""
    parts = ["forced"] if event.get("forced") else []
    parts += [f"{k} {event[k]}" for k in ("from", "previous") if event.get(k)]
    if event.get("reason"):
        parts.append(f"reason: {event['reason']}")
    return "; ".join(parts)


def cmd_history(args: argparse.Namespace) -> int:
    from modelops import api

    rows = api.history(args.name)
    table = [
        {**r, "stage": r["stage"] or "", "version": r["version"] or "", "details": _details(r)}
        for r in rows
    ]
    text = (
        _table(table, ["time", "event", "version", "stage", "author", "tag", "details"])
        if rows
        else ("no registry events yet")
    )
    _emit(args, rows, text)
    return 0


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
    print(_table(rows, ["rank", "experiment", "rev", board.metric, "params"]))
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


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    from modelops import api

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    api.serve(
        args.name,
        stage=args.stage,
        version=args.version,
        host=args.host,
        port=args.port,
        workers=args.workers,
    )
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from modelops import api

    info, result = api.predict(
        args.name,
        input=args.input,
        output=args.output,
        version=args.version,
        stage=args.stage,
        skip_invalid=args.skip_invalid,
    )
    print(
        f"{info.name}@{info.version}: predicted {result.written} of {result.rows} rows "
        f"into {args.output}"
    )
    if result.skipped:
        print(f"skipped {result.skipped} invalid row(s), for example: {result.errors[0]}")
    if result.ignored_columns:
        print(f"ignored columns the model does not use: {', '.join(result.ignored_columns[:10])}")
    return 0


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


def _verify_text(report) -> str:
    ref = f"{report.model}@{report.version} (commit {report.commit[:8]})"
    n = len(report.outputs)
    lines = []
    if report.verdict == "identical":
        lines.append(
            f"identical: {ref} reproduces all {n} outputs of its dvc.lock "
            f"(stages {', '.join(report.stages)}; {len(report.inputs)} inputs checked first)"
        )
    else:
        lines.append(f"differs: {len(report.differing)} of {n} outputs of {ref} differ")
        rows = [
            {
                "output": o.path + (f" ({', '.join(o.files[:3])})" if o.files else ""),
                "stage": o.stage,
                "recorded md5": o.recorded,
                "reproduced md5": o.reproduced or "not produced",
            }
            for o in report.differing
        ]
        lines.append(_table(rows, ["output", "stage", "recorded md5", "reproduced md5"]))
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
            lines += ["", _table(rows, ["metric", "recorded", "reproduced", "delta"])]
        if report.failure:
            lines += ["", "dvc repro failed:", *("  " + x for x in report.failure.splitlines())]
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
    _emit(args, report.to_dict(), _verify_text(report))
    return report.exit_code


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
    from modelops import api

    for r in api.gc(dry_run=args.dry_run, cloud=args.remote, remote=args.remote_name):
        verb = "would remove" if args.dry_run else "removed"
        print(f"{r.where}: {verb} {r.removed} object(s), {r.bytes:,} bytes")
        if args.dry_run:
            for path in r.paths[:50]:
                print(f"  {path}")
            if len(r.paths) > 50:
                print(f"  ... and {len(r.paths) - 50} more")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="modelops",
        description="Register, promote, roll back, check out, fetch and retire the model "
        "versions of this repository (git tags in GTO's grammar).",
    )
    p.add_argument("--version", action="version", version=f"modelops {__version__}")
    p.add_argument("--traceback", action="store_true", help="show a traceback on errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, func, help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        if func is not None:
            sp.set_defaults(func=func)
        return sp

    def version_ref(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("ref", metavar="NAME@vX.Y.Z", help="the version (or NAME with --version)")
        sp.add_argument("--version", help="the version, when REF is only the model name")

    def stage_or_version(sp: argparse.ArgumentParser, verb: str) -> None:
        """NAME@vX.Y.Z | --stage S | --version V, exactly one (get, predict, monitor,
        make-batch, serve); ``_pick_version`` checks the positional form."""
        lead = f"{verb} " if verb else ""
        sp.set_defaults(name_may_hold_version=True)
        group = sp.add_mutually_exclusive_group()
        group.add_argument("--stage", help=f"{lead}the version holding this stage")
        group.add_argument("--version", help=f"{lead}this version, e.g. v1.2.0")

    def name_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "name",
            nargs="?",
            metavar="NAME",
            help="model name (default: the one declared in dvc.yaml's artifacts:); "
            "where --stage/--version apply, NAME@vX.Y.Z names the version too",
        )

    sp = command("register", cmd_register, "Register HEAD as a new version (tag NAME@vX.Y.Z)")
    name_arg(sp)
    sp.add_argument(
        "--bump",
        choices=["major", "minor", "patch"],
        help="which part of the highest version to bump (default: patch)",
    )
    sp.add_argument("--version", help="register exactly this version, e.g. v1.2.0")
    sp.add_argument("-m", "--message", help="a note recorded in the tag")

    sp = command("promote", cmd_promote, "Assign a stage to a version, after the quality gate")
    version_ref(sp)
    sp.add_argument("--stage", required=True, help="stage to assign (registry.stages)")
    sp.add_argument("--force", action="store_true", help="promote even if the gate fails")
    sp.add_argument("--reason", help="why the gate was overridden (required with --force)")

    sp = command("rollback", cmd_rollback, "Give a stage back to its previous holder")
    name_arg(sp)
    sp.add_argument("--stage", required=True, help="stage to roll back, e.g. prod")
    sp.add_argument("--to", metavar="vX.Y.Z", help="an earlier holder to go back to")

    sp = command(
        "checkout",
        cmd_checkout,
        "git checkout <version> && dvc checkout, refusing to lose uncommitted work",
    )
    version_ref(sp)
    sp.add_argument("--force", action="store_true", help="discard uncommitted changes")

    sp = command("get", cmd_get, "Write a version's or stage's model bundle to a file")
    name_arg(sp)
    stage_or_version(sp, "")
    sp.add_argument("-o", "--output", required=True, help="file to write")
    sp.add_argument("--force", action="store_true", help="overwrite the output file")

    sp = command("retire", cmd_retire, "Retire a version (tag NAME@vX.Y.Z!)")
    version_ref(sp)
    sp.add_argument("--reason", help="why, recorded in the tag")
    sp.add_argument(
        "--force",
        action="store_true",
        help="retire even if it holds a protected stage (registry.protected_stages)",
    )

    sp = command("list", cmd_list, "List versions with their stages and key metrics")
    name_arg(sp)
    sp.add_argument("--json", action="store_true", help="machine-readable output")

    sp = command("show", cmd_show, "Show a version's lineage, metrics and events")
    version_ref(sp)
    sp.add_argument("--json", action="store_true", help="machine-readable output")

    sp = command("history", cmd_history, "Show the registry events of a model, oldest first")
    name_arg(sp)
    sp.add_argument("--json", action="store_true", help="machine-readable output")

    exp = command("exp", None, "Work with DVC experiments")
    exp_sub = exp.add_subparsers(
        dest="exp_command", metavar="COMMAND", required=True, help="what to do with experiments"
    )
    sp = exp_sub.add_parser(
        "best",
        help="Rank this commit's experiments; apply or branch the best",
        description="Rank this commit's experiments by a metric (from DVC's "
        "API) and optionally apply the best or make it a branch",
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

    sp = command(
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
        "serve",
        cmd_serve,
        "Serve the version holding a stage over HTTP, following promotions and rollbacks "
        "without a restart; or one version (NAME@vX.Y.Z or --version), pinned",
    )
    name_arg(sp)
    stage_or_version(sp, "serve")
    sp.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    sp.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    sp.add_argument("--workers", type=int, default=1, help="worker processes (default: 1)")

    sp = command(
        "predict",
        cmd_predict,
        "Predict a CSV in chunks with a stage's or version's "
        "model and write the predictions to a CSV",
    )
    name_arg(sp)
    stage_or_version(sp, "use")
    sp.add_argument("--input", required=True, help="CSV with the model's feature columns")
    sp.add_argument("--output", required=True, help="CSV to write (line, prediction, proba_*)")
    sp.add_argument(
        "--skip-invalid",
        action="store_true",
        help="skip invalid rows (reported) instead of failing",
    )

    sp = command(
        "monitor",
        cmd_monitor,
        "Check a batch for data drift, prediction drift and "
        "performance decay; exit 0 ok/warn, 1 alert, 2 bad input",
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

    from modelops.monitoring import SHIFTS

    sp = command(
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

    sp = command(
        "publish",
        cmd_publish,
        "Push a version's DVC data to the remote, verify it "
        "is all there, then push its registry tags",
    )
    sp.add_argument("ref", nargs="?", metavar="NAME@vX.Y.Z", help="the version to publish")
    sp.add_argument("--version", help="the version, when REF is only the model name")
    sp.add_argument("--all", action="store_true", help="every live version and stage holder")
    sp.add_argument("--remote", help="DVC remote (default: the configured default)")
    sp.add_argument("--git-remote", default="origin", help="git remote for tags (default origin)")
    sp.add_argument(
        "--model-only",
        action="store_true",
        help="push only the model bundle, not the data it was trained on",
    )

    sp = command(
        "verify",
        cmd_verify,
        "Re-run a version's pipeline from its commit in a temporary worktree, inputs checked "
        "first, and compare every output with its dvc.lock; exit 0 identical, 1 differs, "
        "2 an input cannot be reached or does not match its record",
    )
    sp.add_argument(
        "ref", nargs="?", metavar="NAME@vX.Y.Z", help="the version (or NAME with --version)"
    )
    group = sp.add_mutually_exclusive_group()
    group.add_argument("--stage", help="verify the version holding this stage, e.g. prod")
    group.add_argument("--version", help="the version, when REF is only the model name")
    sp.add_argument("--json", action="store_true", help="machine-readable report")

    sp = command(
        "gc",
        cmd_gc,
        "Remove cached (and with --remote, remote) objects that no "
        "branch, experiment, live version or stage holder needs",
    )
    sp.add_argument("--dry-run", action="store_true", help="list what would go, remove nothing")
    sp.add_argument("--remote", action="store_true", help="also collect the DVC remote")
    sp.add_argument("--remote-name", help="which DVC remote (default: the configured default)")

    sp = command(
        "merge",
        cmd_merge,
        "Merge a branch, re-running the pipeline for generated files instead of hand-merging them",
    )
    sp.add_argument("branch", help="the branch to merge into the current one")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code from errors.py's table (one per error family)."""
    from modelops.errors import BUG_EXIT, Interrupted, ModelopsError, WorkspaceError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        _pick_version(args)
        return int(args.func(args) or 0)
    except BrokenPipeError:  # `modelops list | head`: the reader left, not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:  # commands that leave something to say raise Interrupted
        if args.traceback:
            raise
        print(f"interrupted: modelops {args.command} stopped", file=sys.stderr)
        return Interrupted.exit_code
    except ModelopsError as exc:
        if args.traceback:
            raise
        label = "interrupted" if isinstance(exc, Interrupted) else "error"
        print(f"{label}: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # the filesystem refused a path the user gave: not a bug
        if args.traceback:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}; check the path", file=sys.stderr)
        return WorkspaceError.exit_code
    except Exception as exc:  # DVC refusing the repository (a broken dvc.yaml) or a bug
        if args.traceback:
            raise
        if type(exc).__module__.split(".")[0] == "dvc":
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            print(f"error: dvc: {first[:500]}; fix the repository's DVC files", file=sys.stderr)
            return WorkspaceError.exit_code
        import traceback

        traceback.print_exc()
        print(
            f"error: modelops {args.command} hit a bug (traceback above); please report it",
            file=sys.stderr,
        )
        return BUG_EXIT


if __name__ == "__main__":
    sys.exit(main())
