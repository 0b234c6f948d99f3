"""The pages served: GET only, read-only, on loopback by default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelops.ui import pages, render


def create_app(root: Path) -> Any:
    """A FastAPI app serving the board at ``/`` and each version at the path its exported page
    has, so links are the same served and exported. Registry errors (an unknown version) are a
    404 page with the one line the CLI would print."""
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse, RedirectResponse, Response

    from modelops.errors import ModelopsError
    from modelops.workspace import Workspace

    app = FastAPI(title="modelops ui", docs_url=None, redoc_url=None, openapi_url=None)
    static = render.static_files()  # hash-checked once, before the first request

    @app.exception_handler(ModelopsError)
    async def _refused(request, exc: ModelopsError) -> HTMLResponse:
        return HTMLResponse(render.page("error.html", base="/", message=str(exc)), 404)

    @app.get("/")
    def _root() -> RedirectResponse:
        return RedirectResponse("/index.html")

    @app.get("/index.html", response_class=HTMLResponse)
    def _board() -> str:
        return render.page("board.html", base="/", **pages.board(Workspace(root)))

    @app.get("/versions/{ref}.html", response_class=HTMLResponse)
    def _version(ref: str) -> str:
        name, _, version = ref.partition("@")
        context = pages.version(Workspace(root), name, version)
        return render.page("version.html", base="/", **context)

    @app.get("/static/{name}")
    def _static(name: str) -> Response:
        if name not in static:
            return Response("not found", 404, media_type="text/plain")
        kind = "text/javascript" if name.endswith(".js") else "text/plain"
        return Response(static[name], media_type=kind)

    return app
