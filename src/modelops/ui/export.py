"""``modelops ui --export DIR``: the pages as static files that open without a server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from modelops.ui import pages, render

if TYPE_CHECKING:
    from modelops.workspace import Workspace


def export(ws: Workspace, out: Path) -> list[Path]:
    """Write the board (``index.html``), every version's page and the chart scripts they load
    (``static/``, checked against their recorded hashes) under ``out``; return the files.

    Pages are rendered first and written after, each to a temporary name renamed into place,
    so a failure leaves no half-written site."""
    board = pages.board(ws)
    site: dict[Path, str | bytes] = {
        Path("index.html"): render.page("board.html", base="", **board),
        **{Path("static") / name: data for name, data in render.static_files().items()},
    }
    for model in board["models"]:
        for v in model["active"] + model["retired"]:
            context = pages.version(ws, model["name"], v["version"])
            site[Path(render.version_file(model["name"], v["version"]))] = render.page(
                "version.html", base="../", **context
            )
    written = []
    for rel, content in site.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(content.encode() if isinstance(content, str) else content)
        os.replace(tmp, path)
        written.append(path)
    return written
