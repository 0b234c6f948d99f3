"""modelops ui: the registry's pages, exported and served, on a registered repository with a
forced promotion whose reason and author hold markup (shown as text, never as elements)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from modelops import api, cli
from modelops.ui import pages
from tests.helpers import BIN, cli_error, copy_repo, free_port

pytestmark = pytest.mark.e2e

HOSTILE = '<script>alert(1)</script> "><img src=x onerror=alert(2)>'


class Page(HTMLParser):
    """The elements a page has, the text of its reason cells and its board rows."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.scripts: list[dict[str, str | None]] = []
        self.reasons: list[str] = []
        self.rows: dict[str, dict[str, str]] = {}  # version -> {"metric:f1": "0.95", ...}
        self.lanes: dict[str, str] = {}
        self._cell: str | None = None
        self._row: str | None = None
        self._lane: str | None = None
        self._text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if tag == "script":
            self.scripts.append(a)
        if tag == "tr" and "data-version" in a:
            self._row = a["data-version"]
            self.rows[self._row] = {}
        if tag == "div" and "data-stage" in a:
            self._lane, self._text = a["data-stage"], []
        if tag == "td":
            if "data-metric" in a:
                self._cell, self._text = f"metric:{a['data-metric']}", []
            elif a.get("class") == "reason":
                self._cell, self._text = "reason", []
            elif self._row:
                self._cell, self._text = f"col{len(self.rows[self._row])}", []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell:
            text = "".join(self._text).strip()
            if self._cell == "reason":
                self.reasons.append(text)
            elif self._row:
                self.rows[self._row][self._cell] = text
            self._cell = None
        if tag == "div" and self._lane:
            self.lanes[self._lane] = " ".join("".join(self._text).split())
            self._lane = None
        if tag == "tr":
            self._row = None

    def handle_data(self, data):
        self._text.append(data)


@pytest.fixture(scope="module")
def registry(base: Path, tmp_path_factory) -> Path:
    """Two versions; prod held by v0.0.1, then forced to v0.0.2 (lower F1) by a tagger whose
    name holds quotes and with a reason that holds markup, then rolled back to v0.0.1; dev
    held by v0.0.2."""
    repo = copy_repo(base, tmp_path_factory.mktemp("ui") / "repo")
    api.promote("model@v0.0.1", stage="prod", root=repo)
    with pytest.MonkeyPatch.context() as mp:  # the tagger: the session sets GIT_COMMITTER_*
        mp.setenv("GIT_COMMITTER_NAME", "Eve & \"Co\" 'x' Ltd")  # git drops < and >
        api.promote("model@v0.0.2", stage="prod", force=True, reason=HOSTILE, root=repo)
    api.rollback("model", stage="prod", root=repo)
    api.promote("model@v0.0.2", stage="dev", root=repo)
    return repo


def test_export_shows_the_registry_as_list_json_has_it_and_markup_as_text(
    registry, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(registry)
    out = tmp_path / "site"
    assert cli.main(["ui", "--export", str(out)]) == 0
    assert "wrote 3 page(s)" in capsys.readouterr().out
    board = Page((out / "index.html").read_text())
    listed = {r["version"]: r for r in api.list_versions()}
    assert set(board.rows) == set(listed) == {"v0.0.1", "v0.0.2"}
    for version, row in board.rows.items():
        want = listed[version]
        assert row["col1"] == ", ".join(want["stages"])
        assert row["col2"] == want["registered_at"]
        for metric, value in want["metrics"].items():
            assert row[f"metric:{metric}"] == f"{value:.4g}", (version, metric)
    assert board.lanes == {"prod": "prod v0.0.1", "dev": "dev v0.0.2"}

    page = (out / "versions/model@v0.0.2.html").read_text()
    parsed = Page(page)
    assert HOSTILE in parsed.reasons  # the reason as the user typed it, as text
    # the only elements are the page's own: the chart scripts, the charts' data, one loader
    assert "img" not in parsed.tags
    assert sorted(x["src"] for x in parsed.scripts if "src" in x) == [
        "../static/vega-embed.min.js",
        "../static/vega-lite.min.js",
        "../static/vega.min.js",
    ]
    assert sum(1 for x in parsed.scripts if not x) == 1
    assert all(x.get("type") == "application/json" for x in parsed.scripts if x and "src" not in x)
    assert "Eve &amp; &#34;Co&#34; &#39;x&#39; Ltd" in page
    assert "forced" in page
    shown = api.show("model@v0.0.2")
    for metric, value in shown["metrics"].items():
        assert f'<tr data-metric="{metric}"><th>{metric}</th><td class="num">{value:.4g}' in page
    assert shown["lineage"]["model"]["sha256"] in page and shown["commit"] in page


def test_export_refusals_write_nothing(registry, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(registry)
    taken = tmp_path / "file"
    taken.write_text("mine")
    err = cli_error(capsys, ["ui", "--export", str(taken)], code=2)
    assert err == f"error: --export {taken}: exists and is not a directory; name a directory"
    assert taken.read_text() == "mine"


@contextlib.contextmanager
def ui_server(repo: Path):
    port = free_port()
    log = open(repo.parent / f"ui-{port}.log", "w")  # noqa: SIM115 (outlives this frame)
    proc = subprocess.Popen(
        [str(BIN / "modelops"), "ui", "--port", str(port)], cwd=repo, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (repo.parent / f"ui-{port}.log").read_text()
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/index.html", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "modelops ui did not start in 60 s"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def test_served_pages_are_the_exported_ones_and_unknown_versions_are_404(
    registry, tmp_path, monkeypatch
):
    monkeypatch.chdir(registry)
    out = tmp_path / "site"
    api.ui_export(out)
    with ui_server(registry) as url:
        assert httpx.get(url).headers["location"] == "/index.html"
        served = httpx.get(f"{url}/index.html")
        assert served.status_code == 200 and served.headers["content-type"].startswith("text/html")
        exported = (out / "index.html").read_text()
        # the same page but for where links point: "/" served, relative exported
        assert served.text == exported.replace('href="', 'href="/')
        page = httpx.get(f"{url}/versions/model@v0.0.2.html")
        assert page.status_code == 200 and HOSTILE in Page(page.text).reasons
        for ref in ("model@v9.9.9", "model", "no such model@v0.0.1"):
            missing = httpx.get(f"{url}/versions/{ref}.html")
            assert missing.status_code == 404, ref
            assert '<p class="error">' in missing.text
        assert (
            "model@v9.9.9 is not registered" in httpx.get(f"{url}/versions/model@v9.9.9.html").text
        )
        assert httpx.post(f"{url}/index.html").status_code == 405  # read-only


# -- in a real browser: Debian's chromium driven by Playwright -------------------------------
# Debian's chromium; GitHub's Ubuntu runners ship Google Chrome instead (Ubuntu's chromium is a
# snap). CHROMIUM names another build.
CHROMIUM = os.environ.get("CHROMIUM") or next(
    filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None
)
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    # Chromium's own traffic (updates, sync, safe browsing) would leave the machine
    "--disable-background-networking",
    "--disable-component-update",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


@pytest.fixture(scope="module")
def browser():
    """Headless Debian chromium (`make test` installs it); missing is a failure, not a skip,
    so a run without it cannot pass by leaving these tests out."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "chromium is not installed: run `make chromium` (as root) first"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


def test_in_a_browser_the_board_leads_to_a_version_whose_charts_draw_offline(
    registry, browser, monkeypatch
):
    monkeypatch.chdir(registry)
    shown = api.show("model@v0.0.2")
    api_charts = pages.charts(api.workspace(), shown["commit"])
    importance = json.loads((registry / "metrics/plots/importance.json").read_text())
    with ui_server(registry) as url:
        context = browser.new_context()
        left: list[str] = []  # every request for anything but the local server, refused

        def local_only(route):
            if route.request.url.startswith(f"{url}/"):
                route.continue_()
            else:
                left.append(route.request.url)
                route.abort()

        context.route("**/*", local_only)
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda m: m.type == "error" and problems.append(m.text))
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))

        page.goto(f"{url}/")
        assert page.locator('[data-stage="prod"]').text_content().split() == ["prod", "v0.0.1"]
        page.locator('tr[data-version="v0.0.2"] a').click()
        page.wait_for_url(f"{url}/versions/model@v0.0.2.html")
        for metric, value in shown["metrics"].items():
            cell = page.locator(f'table.metrics tr[data-metric="{metric}"] td')
            assert cell.inner_text() == f"{value:.4g}"
        assert HOSTILE in page.locator("td.reason").all_inner_texts()

        charts = page.locator(".vega")
        page.wait_for_function(
            "n => document.querySelectorAll('.vega svg').length === n", arg=charts.count()
        )
        assert charts.count() == 5  # loss, ROC, precision-recall, confusion, importance
        assert [c.get_attribute("data-file") for c in page.locator("figure.chart").all()] == [
            c["file"] for c in api_charts
        ]

        def marks(file: str, kind: str):  # the data marks of a chart's first layer of a kind
            return page.locator(f'[data-file="{file}"] svg g.mark-{kind}').first.locator("path")

        assert marks("metrics/plots/roc.json", "line").count() == 1  # one curve, one version
        assert marks("metrics/loss.json", "line").count() == 1
        assert marks("metrics/plots/confusion.json", "rect").count() == 4  # 2 x 2 classes
        assert marks("metrics/plots/importance.json", "rect").count() == len(importance)
        empty = page.locator('[data-file="metrics/plots/predicted_vs_actual.json"]')
        assert "no data at this version" in empty.inner_text()
        context.close()
    assert problems == [] and left == []
