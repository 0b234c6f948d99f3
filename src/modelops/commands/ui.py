"""ui: the registry as web pages, served on loopback or exported as static files."""

from __future__ import annotations

import argparse

from modelops.commands.options import Parents, command


def cmd_ui(args: argparse.Namespace) -> int:
    from modelops import api

    if args.export:
        pages = [p for p in api.ui_export(args.export) if p.suffix == ".html"]
        print(f"wrote {len(pages)} page(s) under {args.export}; open {args.export}/index.html")
        return 0
    import uvicorn

    app = api.ui_app(host=args.host, port=args.port, allow_actions=args.allow_actions)
    mode = "actions allowed" if args.allow_actions else "read-only"
    print(f"modelops ui: http://{args.host}:{args.port}/ ({mode}; Ctrl-C stops it)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def add_parsers(sub: argparse._SubParsersAction, shared: Parents) -> None:
    sp = command(
        sub,
        shared,
        "ui",
        cmd_ui,
        "Show the registry as web pages: every model's stages and versions, and each "
        "version's lineage, metrics, charts, drift and history, comparisons and the "
        "experiments (read-only unless --allow-actions)",
    )
    sp.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    sp.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    sp.add_argument(
        "--allow-actions",
        action="store_true",
        help="let the pages promote, roll back and retire (POST with a CSRF token; the token "
        "of serving.token_env when set, and required off loopback)",
    )
    sp.add_argument(
        "--export", metavar="DIR", help="write the pages as static HTML under DIR and exit"
    )
