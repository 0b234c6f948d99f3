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
    print(f"modelops ui: http://{args.host}:{args.port}/ (Ctrl-C stops it)", flush=True)
    api.ui(host=args.host, port=args.port)
    return 0


def add_parsers(sub: argparse._SubParsersAction, shared: Parents) -> None:
    sp = command(
        sub,
        shared,
        "ui",
        cmd_ui,
        "Show the registry as web pages: every model's stages and versions, and each "
        "version's lineage, metrics, params and history (read-only)",
    )
    sp.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    sp.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    sp.add_argument(
        "--export", metavar="DIR", help="write the pages as static HTML under DIR and exit"
    )
