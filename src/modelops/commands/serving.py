"""serve and predict: a stage's or version's model answering HTTP requests or a CSV."""

from __future__ import annotations

import argparse

from modelops.commands.options import Parents, command, name_arg, stage_or_version


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
        force=args.force,
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


def add_parsers(sub: argparse._SubParsersAction, shared: Parents) -> None:
    sp = command(
        sub,
        shared,
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
        sub,
        shared,
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
    sp.add_argument("--force", action="store_true", help="overwrite the output file")
