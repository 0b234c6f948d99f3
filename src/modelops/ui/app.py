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
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from fastapi import Request  # at module level: FastAPI resolves route annotations by name

from modelops.ui import pages, render

log = logging.getLogger("modelops.ui")

if TYPE_CHECKING:
    from modelops.workspace import Workspace

MAX_FORM_BYTES = 64 * 1024
SESSION_SECONDS = 12 * 3600
# The page's policy as headers too: a <meta> policy cannot forbid framing, and a framed page
# with real forms is one click from an action (clickjacking).
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self' 'unsafe-inline'; "
    "style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@dataclass
class Actions:
    """What the action routes need: the registry's stages and the secrets they check.

    Signing in swaps the token for a random session id: the cookie never holds the token
    (browsers send a host's cookies to each of its ports, other local servers included)."""

    stages: list[str]
    # The CLI's own functions (api.promote, api.rollback, api.retire), handed in by the caller:
    # the pages act exactly as the commands do, and this module does not import api.
    ops: dict[str, Callable[..., Any]]
    token: str | None = None  # serving.token_env's value; None: no sign-in
    token_env: str | None = None
    port: int = 8080
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    sessions: dict[str, float] = field(default_factory=dict)  # id -> expiry (monotonic)

    @property
    def cookie(self) -> str:
        return f"modelops_ui_{self.port}"

    def open_session(self) -> str:
        now = time.monotonic()
        for sid in [s for s, end in self.sessions.items() if end < now]:
            del self.sessions[sid]
        sid = secrets.token_urlsafe(32)
        self.sessions[sid] = now + SESSION_SECONDS
        return sid

    def valid(self, sid: str) -> bool:
        return self.sessions.get(sid, 0.0) > time.monotonic()

    def context(self, signed_in: bool) -> dict[str, Any]:
        return {
            "csrf": self.csrf,
            "stages": self.stages,
            "login": bool(self.token) and not signed_in,
            "signed_in": bool(self.token) and signed_in,
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


class Site:
    """What every route shares: the repository, the actions (or None), the checked scripts."""

    def __init__(self, root: Path, actions: Actions | None) -> None:
        self.root = root
        self.actions = actions
        self.static = render.static_files()  # hash-checked once, before the first request
        self._gate: dict[bytes, Any] = {}

    @contextlib.contextmanager
    def workspace(self) -> Iterator[Workspace]:
        from modelops.workspace import Workspace

        ws = Workspace(self.root)
        try:
            yield ws
        finally:
            ws.git.close()  # its cat-file process ends with the request

    def gate_params(self) -> Any:
        """params.yaml's gate as it is on disk now (parsed again only when it changed)."""
        from modelops import params

        text = (self.root / "params.yaml").read_bytes()
        if text not in self._gate:
            self._gate = {text: params.load(self.root / "params.yaml").registry.gate}
        return self._gate[text]

    def signed_in(self, request: Request) -> bool:
        acts = self.actions
        return not acts or not acts.token or acts.valid(request.cookies.get(acts.cookie, ""))

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> Any:
        from fastapi.responses import HTMLResponse

        acts = self.actions.context(self.signed_in(request)) if self.actions else None
        return HTMLResponse(render.page(template, base="/", actions=acts, **context), status)

    def refusal(self, request: Request, message: str, status: int) -> Any:
        return self.page(request, "error.html", status, message=message)


def create_app(root: Path, actions: Actions | None = None, hosts: set[str] | None = None) -> Any:
    """A FastAPI app serving the board at ``/`` and each page at the path its exported file
    has, so links are the same served and exported. A registry error on a page (an unknown
    version) is a 404 page with the one line the CLI would print; on an action, 409 (refused
    by the registry, the gate included) or 400 (a bad field), with nothing changed."""
    from fastapi import FastAPI

    app = FastAPI(title="modelops ui", docs_url=None, redoc_url=None, openapi_url=None)
    site = Site(root, actions)
    _guards(app, site, hosts)
    _read_routes(app, site)
    if actions is not None:
        _session_routes(app, site, actions)
        _action_routes(app, site, actions)
    return app


def _guards(app: Any, site: Site, hosts: set[str] | None) -> None:
    """The Host check and the headers on every response; errors as pages."""
    from fastapi.responses import HTMLResponse, Response

    from modelops.errors import ModelopsError, RegistryError

    @app.middleware("http")
    async def _host(request: Request, call_next):
        if hosts is not None and request.headers.get("host", "") not in hosts:
            # refused before any route: a page reached by another name is not ours to serve
            response = Response("this server answers only to its own address", 400)
        else:
            response = await call_next(request)
        response.headers.update(HEADERS)
        return response

    @app.exception_handler(ModelopsError)
    async def _refused(request: Request, exc: ModelopsError) -> HTMLResponse:
        if request.method == "GET":
            return site.refusal(request, str(exc), 404)
        return site.refusal(request, str(exc), 409 if isinstance(exc, RegistryError) else 400)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> HTMLResponse:
        # a bug, not the reader's mistake: the one line, and the traceback in the server's log
        log.exception("modelops ui: %s %s", request.method, request.url.path)
        message = f"this page hit a bug in modelops ({type(exc).__name__}); the server log has it"
        return HTMLResponse(render.page("error.html", base="/", message=message), 500)


def _read_routes(app: Any, site: Site) -> None:
    """GET: the board, versions, comparisons, the experiments and the chart scripts."""
    from fastapi.responses import HTMLResponse, RedirectResponse, Response

    @app.get("/")
    def _root() -> RedirectResponse:
        return RedirectResponse("/index.html")

    @app.get("/index.html", response_class=HTMLResponse)
    def _board(request: Request) -> HTMLResponse:
        with site.workspace() as ws:
            return site.page(request, "board.html", **pages.board(ws))

    @app.get("/versions/{ref}.html", response_class=HTMLResponse)
    def _version(request: Request, ref: str) -> HTMLResponse:
        name, _, version = render.unslug(ref).partition("@")
        with site.workspace() as ws:
            return site.page(request, "version.html", **pages.version(ws, name, version))

    @app.get("/compare/{pair:path}.html", response_class=HTMLResponse)
    def _compare(request: Request, pair: str) -> HTMLResponse:
        a, sep, b = pair.partition("...")
        if not sep or not a or not b:
            return site.refusal(request, "compare: the page is compare/A...B.html", 404)
        with site.workspace() as ws:
            context = pages.compare(ws, render.unslug(a), render.unslug(b), site.gate_params())
            return site.page(request, "compare.html", **context)

    @app.get("/experiments.html", response_class=HTMLResponse)
    def _experiments(request: Request) -> HTMLResponse:
        with site.workspace() as ws:
            metrics = ws.paths_at("HEAD")["metrics"] if ws.blob("HEAD", "params.yaml") else ""
            context = pages.experiments(ws, metrics or "metrics/metrics.json")
            return site.page(request, "experiments.html", served=True, **context)

    @app.get("/static/{name}")
    def _static(name: str) -> Response:
        if name not in site.static:
            return Response("not found", 404, media_type="text/plain")
        kind = "text/javascript" if name.endswith(".js") else "text/plain"
        return Response(site.static[name], media_type=kind)


async def checked_form(site: Site, request: Request) -> dict[str, str] | Any:
    """A POSTed form's fields, or the refusal to send: Origin, size, shape, CSRF token."""
    from starlette.requests import ClientDisconnect

    assert site.actions is not None
    if request.headers.get("origin") != f"http://{request.headers.get('host', '')}":
        return site.refusal(request, "refused: the request did not come from this page", 403)
    body = b""
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                too_big = f"refused: the form is over {MAX_FORM_BYTES} bytes"
                return site.refusal(request, too_big, 413)
    except ClientDisconnect:  # the client gave up: nobody to answer, nothing done
        return site.refusal(request, "refused: the form did not arrive whole", 400)
    try:
        raw = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=16)
    except (UnicodeDecodeError, ValueError):
        return site.refusal(request, "refused: the form is not URL-encoded UTF-8", 400)
    form = {k: v[-1] for k, v in raw.items()}
    if not hmac.compare_digest(form.get("csrf", "").encode(), site.actions.csrf.encode()):
        stale = "refused: the form's CSRF token is missing or stale; reload the page and try again"
        return site.refusal(request, stale, 403)
    return form


def _done(to: str) -> Any:
    from fastapi.responses import RedirectResponse

    return RedirectResponse(to, 303)  # see the result with a GET; a reload does not repeat


def _session_routes(app: Any, site: Site, actions: Actions) -> None:
    """The sign-in page and form, and signing out."""
    import asyncio

    from fastapi.responses import HTMLResponse

    @app.get("/login.html", response_class=HTMLResponse)
    def _login_page(request: Request) -> HTMLResponse:
        return site.page(request, "login.html", token_env=actions.token_env or "")

    @app.post("/login")
    async def _login(request: Request):
        form = await checked_form(site, request)
        if not isinstance(form, dict):
            return form
        given = form.get("token", "")
        if not actions.token or not hmac.compare_digest(given.encode(), actions.token.encode()):
            await asyncio.sleep(1)  # a wrong guess costs the guesser a second
            return site.refusal(request, "refused: that is not the token", 401)
        response = _done("/index.html")
        response.set_cookie(
            actions.cookie,
            actions.open_session(),
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            path="/",
        )
        return response

    @app.post("/logout")
    async def _logout(request: Request):
        form = await checked_form(site, request)
        if not isinstance(form, dict):
            return form
        actions.sessions.pop(request.cookies.get(actions.cookie, ""), None)
        response = _done("/index.html")
        response.delete_cookie(actions.cookie, path="/", httponly=True, samesite="strict")
        return response


def _action_routes(app: Any, site: Site, actions: Actions) -> None:
    """POST /actions/{promote,rollback,retire}: the checks, then the CLI's own function."""

    @app.post("/actions/{verb}")
    async def _act(request: Request, verb: str):
        if verb not in ("promote", "rollback", "retire"):
            return site.refusal(request, f"no action {verb!r}", 404)
        form = await checked_form(site, request)
        if not isinstance(form, dict):
            return form
        if not site.signed_in(request):
            return site.refusal(request, "refused: sign in first (the link at the top)", 401)
        if verb == "rollback":
            return await _rollback(site, actions, form)
        name, version = _resolved(site, _need(form, "ref"))
        force, reason = form.get("force") == "1", form.get("reason", "").strip() or None
        ref = f"{name}@{version}"
        if verb == "promote":
            stage = _need(form, "stage")
            await _in_thread(actions.ops["promote"], ref, stage=stage, force=force, reason=reason)
        else:
            await _in_thread(actions.ops["retire"], ref, reason=reason, force=force)
        return _done("/" + render.version_file(name, version))


async def _rollback(site: Site, actions: Actions, form: dict[str, str]) -> Any:
    """Roll back, unless the stage moved since the page showed its holder: a stale page must
    not undo a newer promotion it never showed."""
    from modelops import registry as reg
    from modelops.errors import RegistryError

    name, stage, shown = _need(form, "name"), _need(form, "stage"), form.get("holder", "")
    with site.workspace() as ws:
        holder = reg.state(ws).holder(reg.check_name(name), stage)
    if shown and holder != shown:
        raise RegistryError(
            f"{name} {stage!r} is held by {holder or 'no version'} now, not {shown}; "
            f"reload the page and decide again"
        )
    await _in_thread(actions.ops["rollback"], name, stage=stage)
    return _done("/index.html")


def _need(form: dict[str, str], key: str) -> str:
    from modelops.errors import UsageError

    value = form.get(key, "").strip()
    if not value:
        raise UsageError(f"the form's field {key!r} is empty; fill it in")
    return value


def _resolved(site: Site, ref: str) -> tuple[str, str]:
    """NAME@vX.Y.Z, or @vX.Y.Z for the one model dvc.yaml declares."""
    from modelops import registry as reg

    name, _, version = ref.partition("@")
    with site.workspace() as ws:
        return reg.default_name(ws, name or None), reg.check_version(version)


async def _in_thread(fn, *args, **kwargs):
    """Registry writes take the repository's lock and may wait out GTO's one-second spacing:
    off the event loop, so pages keep loading meanwhile."""
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(fn, *args, **kwargs)
