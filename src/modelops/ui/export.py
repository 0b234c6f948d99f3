"""``modelops ui --export DIR``: the pages as static files that open without a server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from modelops.ui import pages, render

if TYPE_CHECKING:
    from modelops.params import Params
    from modelops.workspace import Workspace


def export(ws: Workspace, params: Params, out: Path) -> list[Path]:
    """Write the board (``index.html``), every version's page, the experiments page, a compare
    page of each version against each current stage holder, and the chart scripts they load
    (``static/``, checked against their recorded hashes) under ``out``; return the files.

    Pages are rendered first and written after, each to a temporary name renamed into place,
    so a failure leaves no half-written site."""
    board = pages.board(ws)
    site: dict[str, str | bytes] = {
        "index.html": render.page("board.html", base="", **board),
        "experiments.html": render.page(
            "experiments.html",
            base="",
            served=False,
            **pages.experiments(ws, params.paths.get("metrics", "metrics/metrics.json")),
        ),
        **{f"static/{name}": data for name, data in render.static_files().items()},
    }
    for model in board["models"]:
        name = model["name"]
        holders = {s["holder"] for s in model["stages"] if s["holder"]}
        for v in model["active"] + model["retired"]:
            context = pages.version(ws, name, v["version"])
            site[render.version_file(name, v["version"])] = render.page(
                "version.html", base="../", **context
            )
            for holder in sorted(holders - {v["version"]}):
                a, b = f"{name}@{holder}", f"{name}@{v['version']}"
                site[render.compare_file(a, b)] = render.page(
                    "compare.html", base="../", **pages.compare(ws, a, b, params.registry.gate)
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
