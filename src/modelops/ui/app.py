"""The pages served on loopback by default: read-only unless started with ``--allow-actions``.

Actions (promote, roll back, retire) call the same library functions as the CLI, by POST only,
and each must pass, in order: the Host check (every request: a page reached through another
host name is a DNS-rebinding attempt), an Origin equal to the page's own, the CSRF token the
server put in its forms, and, when ``serving.token_env`` names a set variable, the token in an
HttpOnly, SameSite=Strict cookie that the sign-in form sets."""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from fastapi import Request  # at module level: FastAPI resolves route annotations by name

from modelops.ui import pages, render

if TYPE_CHECKING:
    from modelops.workspace import Workspace

COOKIE = "modelops_ui_token"
MAX_FORM_BYTES = 64 * 1024


@dataclass
class Actions:
    """What the action routes need: the registry's stages and the secrets they check."""

    stages: list[str]
    token: str | None = None  # serving.token_env's value; None: no sign-in
    token_env: str | None = None
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def context(self, signed_in: bool) -> dict[str, Any]:
        return {
            "csrf": self.csrf,
            "stages": self.stages,
            "login": bool(self.token) and not signed_in,
        }


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str, port: int) -> set[str] | None:
    """The Host headers a page may be asked for by; None when bound to every interface (the
    host names are then the machine's, unknown here: a token guards the actions instead)."""
    if host in ("0.0.0.0", "::", ""):
        return None
    names = {host, f"[{host}]" if ":" in host else host}
    if is_loopback(host):
        names |= {"127.0.0.1", "localhost", "[::1]"}
    return {f"{n}:{port}" for n in names} | ({*names} if port == 80 else set())


def create_app(root: Path, actions: Actions | None = None, hosts: set[str] | None = None) -> Any:
    """A FastAPI app serving the board at ``/`` and each page at the path its exported file
    has, so links are the same served and exported. A registry error on a page (an unknown
    version) is a 404 page with the one line the CLI would print; on an action, 409 (refused
    by the registry, the gate included) or 400 (a bad field), with nothing changed."""
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse, RedirectResponse, Response

    from modelops import params as params_mod
    from modelops.errors import ModelopsError, RegistryError
    from modelops.workspace import Workspace

    app = FastAPI(title="modelops ui", docs_url=None, redoc_url=None, openapi_url=None)
    static = render.static_files()  # hash-checked once, before the first request
    known: dict[bytes, Any] = {}

    @contextlib.contextmanager
    def workspace() -> Iterator[Workspace]:
        ws = Workspace(root)
        try:
            yield ws
        finally:
            ws.git.close()  # its cat-file process ends with the request

    def gate_params() -> Any:
        """params.yaml's gate as it is on disk now (parsed again only when it changed)."""
        text = (root / "params.yaml").read_bytes()
        if text not in known:
            known.clear()
            known[text] = params_mod.load(root / "params.yaml").registry.gate
        return known[text]

    def signed_in(request: Request) -> bool:
        if not actions or not actions.token:
            return True
        cookie = request.cookies.get(COOKIE, "")
        return hmac.compare_digest(cookie.encode(), actions.token.encode())

    def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        acts = actions.context(signed_in(request)) if actions else None
        return HTMLResponse(render.page(template, base="/", actions=acts, **context), status)

    def refusal(request: Request, message: str, status: int) -> HTMLResponse:
        return page(request, "error.html", status, message=message)

    @app.middleware("http")
    async def _host(request: Request, call_next):
        if hosts is not None and request.headers.get("host", "") not in hosts:
            # refused before any route: a page reached by another name is not ours to serve
            return Response("this server answers only to its own address", 400)
        return await call_next(request)

    @app.exception_handler(ModelopsError)
    async def _refused(request: Request, exc: ModelopsError) -> HTMLResponse:
        if request.method == "GET":
            return refusal(request, str(exc), 404)
        return refusal(request, str(exc), 409 if isinstance(exc, RegistryError) else 400)

    @app.get("/")
    def _root() -> RedirectResponse:
        return RedirectResponse("/index.html")

    @app.get("/index.html", response_class=HTMLResponse)
    def _board(request: Request) -> HTMLResponse:
        with workspace() as ws:
            return page(request, "board.html", **pages.board(ws))

    @app.get("/versions/{ref}.html", response_class=HTMLResponse)
    def _version(request: Request, ref: str) -> HTMLResponse:
        name, _, version = render.unslug(ref).partition("@")
        with workspace() as ws:
            return page(request, "version.html", **pages.version(ws, name, version))

    @app.get("/compare/{pair:path}.html", response_class=HTMLResponse)
    def _compare(request: Request, pair: str) -> HTMLResponse:
        a, sep, b = pair.partition("...")
        if not sep or not a or not b:
            return refusal(request, "compare: the page is compare/A...B.html", 404)
        with workspace() as ws:
            context = pages.compare(ws, render.unslug(a), render.unslug(b), gate_params())
            return page(request, "compare.html", **context)

    @app.get("/experiments.html", response_class=HTMLResponse)
    def _experiments(request: Request) -> HTMLResponse:
        with workspace() as ws:
            metrics = ws.paths_at("HEAD")["metrics"] if ws.blob("HEAD", "params.yaml") else ""
            context = pages.experiments(ws, metrics or "metrics/metrics.json")
            return page(request, "experiments.html", served=True, **context)

    @app.get("/static/{name}")
    def _static(name: str) -> Response:
        if name not in static:
            return Response("not found", 404, media_type="text/plain")
        kind = "text/javascript" if name.endswith(".js") else "text/plain"
        return Response(static[name], media_type=kind)

    if actions is not None:
        _action_routes(app, root, actions, page, refusal, signed_in)
    return app


def _action_routes(app, root: Path, actions: Actions, page, refusal, signed_in) -> None:
    """POST /actions/{promote,rollback,retire}, and the sign-in page when a token is set."""
    from fastapi.responses import HTMLResponse, RedirectResponse

    from modelops import api
    from modelops.errors import UsageError

    async def checked_form(request: Request) -> dict[str, str] | HTMLResponse:
        """The form's fields, or the refusal: Origin, size, shape, CSRF token."""
        if request.headers.get("origin") != f"http://{request.headers.get('host', '')}":
            return refusal(request, "refused: the request did not come from this page", 403)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                return refusal(request, f"refused: the form is over {MAX_FORM_BYTES} bytes", 413)
        try:
            raw = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=16)
        except (UnicodeDecodeError, ValueError):
            return refusal(request, "refused: the form is not URL-encoded UTF-8", 400)
        form = {k: v[-1] for k, v in raw.items()}
        if not hmac.compare_digest(form.get("csrf", "").encode(), actions.csrf.encode()):
            return refusal(
                request,
                "refused: the form's CSRF token is missing or stale; reload the page and try again",
                403,
            )
        return form

    def need(form: dict[str, str], key: str) -> str:
        value = form.get(key, "").strip()
        if not value:
            raise UsageError(f"the form's field {key!r} is empty; fill it in")
        return value

    def done(to: str) -> RedirectResponse:
        return RedirectResponse(to, 303)  # see the result with a GET; a reload does not repeat

    @app.get("/login.html", response_class=HTMLResponse)
    def _login_page(request: Request) -> HTMLResponse:
        return page(request, "login.html", token_env=actions.token_env or "")

    @app.post("/login")
    async def _login(request: Request):
        form = await checked_form(request)
        if isinstance(form, HTMLResponse):
            return form
        given = form.get("token", "")
        if not actions.token or not hmac.compare_digest(given.encode(), actions.token.encode()):
            return refusal(request, "refused: that is not the token", 401)
        response = done("/index.html")
        response.set_cookie(COOKIE, given, httponly=True, samesite="strict", path="/")
        return response

    @app.post("/actions/{verb}")
    async def _act(request: Request, verb: str):
        if verb not in ("promote", "rollback", "retire"):
            return refusal(request, f"no action {verb!r}", 404)
        form = await checked_form(request)
        if isinstance(form, HTMLResponse):
            return form
        if not signed_in(request):
            return refusal(request, "refused: sign in first (the link at the top)", 401)
        force = form.get("force") == "1"
        reason = form.get("reason", "").strip() or None
        if verb == "promote":
            ref = need(form, "ref")
            await _in_thread(
                api.promote, ref, stage=need(form, "stage"), force=force, reason=reason, root=root
            )
            return done("/" + render.version_file(*ref.split("@", 1)))
        if verb == "rollback":
            await _in_thread(api.rollback, need(form, "name"), stage=need(form, "stage"), root=root)
            return done("/index.html")
        ref = need(form, "ref")
        await _in_thread(api.retire, ref, reason=reason, force=force, root=root)
        return done("/" + render.version_file(*ref.split("@", 1)))


async def _in_thread(fn, *args, **kwargs):
    """Registry writes take the repository's lock and may wait out GTO's one-second spacing:
    off the event loop, so pages keep loading meanwhile."""
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args, **kwargs)
