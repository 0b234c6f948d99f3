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
from tests.helpers import BIN, cli_error, copy_repo, dvc, free_port, git, set_params

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
        self._script = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        if tag == "script":
            a["_text"], self._script = "", True
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
        if tag == "script":
            self._script = False
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
        if self._script:
            self.scripts[-1]["_text"] += data


class Table(HTMLParser):
    """The rows of ``<table class=CLS>``: each row's key (its ``data-*`` attribute), its td
    texts, its metric cells (text and class) and its cells under a ``data-param`` heading."""

    def __init__(self, html: str, cls: str, key: str | None = None) -> None:
        super().__init__()
        self.cls, self.key = cls, key
        self.rows: list[dict] = []
        self.header: list[dict[str, str | None]] = []
        self._in = self._head = False
        self._cell: dict | None = None
        self._row: list[dict] | None = None
        self.feed(html)

    def __iter__(self):
        return iter(self.rows)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._in = (a.get("class") or "") == self.cls
        if not self._in:
            return
        if tag == "thead":
            self._head = True
        elif tag == "tr" and not self._head:
            key = (
                a.get(self.key)
                if self.key
                else next((v for k, v in a.items() if k.startswith("data-")), None)
            )
            self._row, self._rowkey = [], key
        elif tag in ("td", "th"):
            self._cell = {"tag": tag, "attrs": a, "text": ""}

    def handle_endtag(self, tag):
        if not self._in:
            return
        if tag in ("td", "th") and self._cell is not None:
            self._cell["text"] = " ".join(self._cell["text"].split())
            if self._head:
                self.header.append(self._cell["attrs"])
            elif self._row is not None:
                self._row.append(self._cell)
            self._cell = None
        elif tag == "thead":
            self._head = False
        elif tag == "tr" and self._row is not None:
            cells = self._row
            heads = [c["text"] for c in cells if c["tag"] == "th"]
            self.rows.append(
                {
                    "key": self._rowkey or (heads[0] if heads else None),
                    "cells": [c["text"] for c in cells if c["tag"] == "td"],
                    "metric_cells": {
                        c["attrs"]["data-metric"]: {
                            "text": c["text"],
                            "class": c["attrs"].get("class") or "",
                        }
                        for c in cells
                        if c["tag"] == "td" and "data-metric" in c["attrs"]
                    },
                    "params": {
                        self.header[i]["data-param"]: c["text"]
                        for i, c in enumerate(cells)
                        if i < len(self.header) and self.header[i].get("data-param")
                    },
                }
            )
            self._row = None
        elif tag == "table":
            self._in = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data


EXPERIMENT = 'we<b>ird"exp'  # git allows it in a ref name; DVC in an experiment's


@pytest.fixture(scope="module")
def registry(base: Path, tmp_path_factory) -> Path:
    """Three versions: v0.0.1 (l2 0.001), v0.0.2 (l2 0.1, lower F1) and v0.0.3 (l2 0.01, with a
    drifted batch that its monitor stage recorded). prod was held by v0.0.1, forced to v0.0.2
    by a tagger whose name holds quotes with a reason that holds markup, then rolled back to
    v0.0.1; dev is held by v0.0.2. One experiment with markup in its name on v0.0.3's commit."""
    repo = copy_repo(base, tmp_path_factory.mktemp("ui") / "repo")
    api.make_batch(
        output=repo / "data/incoming/week1.csv",
        shift="scale",
        feature="mean area",
        version="v0.0.2",
        root=repo,
    )
    set_params(repo, **{"train.l2": 0.01})
    dvc(repo, "repro")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a drifted batch; less regularisation")
    api.register(root=repo)
    api.promote("model@v0.0.1", stage="prod", root=repo)
    with pytest.MonkeyPatch.context() as mp:  # the tagger: the session sets GIT_COMMITTER_*
        mp.setenv("GIT_COMMITTER_NAME", "Eve & \"Co\" 'x' Ltd")  # git drops < and >
        api.promote("model@v0.0.2", stage="prod", force=True, reason=HOSTILE, root=repo)
    api.rollback("model", stage="prod", root=repo)
    api.promote("model@v0.0.2", stage="dev", root=repo)
    dvc(repo, "exp", "run", "--temp", "-n", EXPERIMENT, "-S", "train.l2=0.05")
    return repo


def experiment_commit(repo: Path) -> str:
    refs = git(repo, "for-each-ref", "--format=%(objectname) %(refname)", "refs/exps").stdout
    return next(line.split()[0] for line in refs.splitlines() if line.endswith(f"/{EXPERIMENT}"))


def committed(repo: Path, commit: str, path: str):
    return json.loads(git(repo, "show", f"{commit}:{path}").stdout)


def test_export_shows_the_registry_as_list_json_has_it_and_markup_as_text(
    registry, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(registry)
    out = tmp_path / "site"
    assert cli.main(["ui", "--export", str(out)]) == 0
    # board, experiments, 3 versions, and each version against each stage holder but itself
    assert "wrote 9 page(s)" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "compare").iterdir()) == [
        "model@v0.0.1...model@v0.0.2.html",
        "model@v0.0.1...model@v0.0.3.html",
        "model@v0.0.2...model@v0.0.1.html",
        "model@v0.0.2...model@v0.0.3.html",
    ]
    board = Page((out / "index.html").read_text())
    listed = {r["version"]: r for r in api.list_versions()}
    assert set(board.rows) == set(listed) == {"v0.0.1", "v0.0.2", "v0.0.3"}
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
    inline = [x for x in parsed.scripts if "src" not in x]
    assert sum(1 for x in inline if set(x) == {"_text"}) == 1  # the loader, our own code
    assert all(x.get("type") == "application/json" for x in inline if set(x) != {"_text"})
    assert "Eve &amp; &#34;Co&#34; &#39;x&#39; Ltd" in page
    assert "forced" in page
    shown = api.show("model@v0.0.2")
    for metric, value in shown["metrics"].items():
        assert f'<tr data-metric="{metric}"><th>{metric}</th><td class="num">{value:.4g}' in page
    assert shown["lineage"]["model"]["sha256"] in page and shown["commit"] in page
    card = committed(registry, shown["commit"], "metrics/card.json")
    facts = {r["key"]: r["cells"][0] for r in Table(page, "card")}
    assert facts["model.sha256"] == card["model"]["sha256"] == shown["lineage"]["model"]["sha256"]
    assert facts["data.classes"] == ", ".join(card["data"]["classes"])
    assert facts["data.rows.train"] == str(card["data"]["rows"]["train"])
    assert facts["training.epochs_run"] == str(card["training"]["epochs_run"])


def test_every_version_shows_the_drift_each_version_recorded(registry, tmp_path, monkeypatch):
    monkeypatch.chdir(registry)
    out = tmp_path / "site"
    api.ui_export(out)
    rows = Table((out / "versions/model@v0.0.1.html").read_text(), "drift")
    assert [r["key"] for r in rows] == ["v0.0.1", "v0.0.2", "v0.0.3"]  # oldest first
    for row in rows:
        drift = committed(registry, api.show(f"model@{row['key']}")["commit"], "metrics/drift.json")
        if not drift["files"]:
            assert row["cells"][:3] == [str(drift["batches"]), "0", "0"]
            continue
        batch = drift["files"]["week1.csv"]
        assert row["cells"][:5] == [
            str(drift["batches"]),
            str(drift["alerts"]),
            str(drift["warnings"]),
            f"{batch['max_psi']:.4g}",
            "week1.csv",
        ]
        assert batch["verdict_code"] == 2  # the scaled feature drifted: an alert


def test_compare_pages_show_the_metrics_files_params_and_the_gates_verdict(
    registry, tmp_path, monkeypatch
):
    from modelops.params import better, higher_is_better

    monkeypatch.chdir(registry)
    out = tmp_path / "site"
    api.ui_export(out)
    for old, new in (("v0.0.1", "v0.0.2"), ("v0.0.2", "v0.0.3")):
        html = (out / f"compare/model@{old}...model@{new}.html").read_text()
        a = committed(registry, api.show(f"model@{old}")["commit"], "metrics/metrics.json")
        b = committed(registry, api.show(f"model@{new}")["commit"], "metrics/metrics.json")
        rows = {r["key"]: r["cells"] for r in Table(html, "metrics")}
        assert set(rows) == set(a) | set(b)
        for key in rows:
            delta = b[key] - a[key]
            assert rows[key] == [f"{a[key]:.4g}", f"{b[key]:.4g}", f"{delta:+.4g}"], key
            improved = "better" if (delta > 0) == higher_is_better(key) else "worse"
            assert (
                delta == 0
                or f'class="num delta {improved}"'
                in html.split(f'data-metric="{key}"')[1].split("</tr>")[0]
            )
        l2 = {"v0.0.1": "0.001", "v0.0.2": "0.1", "v0.0.3": "0.01"}
        params = {r["key"]: r["cells"] for r in Table(html, "params")}
        assert params == {"train.l2": [l2[old], l2[new]]}
        passed = better("f1", b["f1"], a["f1"])  # the gate's metric (auto: f1)
        assert f'data-passed="{"true" if passed else "false"}"' in html
        assert f"f1 {b['f1']:.6g} vs {a['f1']:.6g}" in html
    charts = Page((out / "compare/model@v0.0.2...model@v0.0.3.html").read_text()).scripts
    roc = next(
        json.loads(x["_text"]) for x in charts if x.get("data-chart") and '"tpr"' in x["_text"]
    )
    assert {r["rev"] for r in roc["data"]["values"]} == {"model@v0.0.2", "model@v0.0.3"}


def test_the_experiments_page_is_dvc_exp_show_with_the_best_marked(registry, tmp_path, monkeypatch):
    from modelops.params import higher_is_better

    monkeypatch.chdir(registry)
    out = tmp_path / "site"
    api.ui_export(out)
    html = (out / "experiments.html").read_text()
    shown = json.loads(dvc(registry, "exp", "show", "--json").stdout)
    baseline = next(s for s in shown if s["rev"] != "workspace")
    exp = baseline["experiments"][0]["revs"][0]
    assert exp["name"] == EXPERIMENT
    want = {
        "main": baseline["data"]["metrics"]["metrics/metrics.json"]["data"],
        EXPERIMENT: exp["data"]["metrics"]["metrics/metrics.json"]["data"],
    }
    rows = {r["key"]: r for r in Table(html, "experiments", key="data-exp")}
    assert set(rows) == set(want)  # the name with markup, as text
    assert 'data-exp="we&lt;b&gt;ird&#34;exp"' in html and "<b>" not in html
    for name, metrics in want.items():
        cells = rows[name]["metric_cells"]
        for key, value in metrics.items():
            assert cells[key]["text"] == f"{value:.4g}", (name, key)
            best = (max if higher_is_better(key) else min)(m[key] for m in want.values())
            assert ("best" in cells[key]["class"]) == (value == best), (name, key)
    assert rows[EXPERIMENT]["params"] == {"train.l2": "0.05"}
    assert rows["main"]["params"] == {"train.l2": "0.01"}


def test_export_refusals_write_nothing(registry, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(registry)
    taken = tmp_path / "file"
    taken.write_text("mine")
    err = cli_error(capsys, ["ui", "--export", str(taken)], code=2)
    assert err == f"error: --export {taken}: exists and is not a directory; name a directory"
    assert taken.read_text() == "mine"


@contextlib.contextmanager
def ui_server(repo: Path, *args: str, token: str | None = None):
    """``modelops ui ARGS`` on a free loopback port, with MODELOPS_TOKEN set to ``token`` (or
    unset); yields its URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MODELOPS_TOKEN"}
    if token is not None:
        env["MODELOPS_TOKEN"] = token
    log_path = repo.parent / f"ui-{port}.log"
    log = open(log_path, "w")  # noqa: SIM115 (outlives this frame)
    proc = subprocess.Popen(
        [str(BIN / "modelops"), "ui", "--port", str(port), *args],
        cwd=repo,
        env=env,
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log_path.read_text()
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


def test_served_pages_are_the_exported_ones_and_unknown_pages_are_404(
    registry, tmp_path, monkeypatch
):
    monkeypatch.chdir(registry)
    out = tmp_path / "site"
    api.ui_export(out)
    exp_commit = experiment_commit(registry)
    with ui_server(registry) as url:
        assert httpx.get(url).headers["location"] == "/index.html"
        served = httpx.get(f"{url}/index.html")
        assert served.status_code == 200 and served.headers["content-type"].startswith("text/html")
        # the same pages but for where links point: "/" served, relative exported
        assert served.text == (out / "index.html").read_text().replace('href="', 'href="/')
        for response in (served, httpx.get(f"{url}/versions/model@v9.9.9.html")):
            # the policy as headers: a <meta> policy cannot forbid framing (clickjacking)
            assert response.headers["x-frame-options"] == "DENY"
            assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        for rel in ("versions/model@v0.0.2.html", "compare/model@v0.0.1...model@v0.0.3.html"):
            page = httpx.get(f"{url}/{rel}")
            exported = (out / rel).read_text()
            assert page.status_code == 200
            assert page.text == exported.replace('"../', '"/'), rel
        assert HOSTILE in Page(httpx.get(f"{url}/versions/model@v0.0.2.html").text).reasons
        # any two versions or experiments: by name or commit, either way round
        for ref in (EXPERIMENT, exp_commit, exp_commit[:10]):
            page = httpx.get(f"{url}/compare/model@v0.0.3...{ref}.html")
            assert page.status_code == 200, ref
            assert "we&lt;b&gt;ird&#34;exp</span>" in page.text and "<b>" not in page.text
            assert {r["key"]: r["cells"] for r in Table(page.text, "params")} == {
                "train.l2": ["0.01", "0.05"]
            }
        for bad in (
            "versions/model@v9.9.9.html",
            "versions/model.html",
            "versions/no such model@v0.0.1.html",
            "compare/model@v0.0.1...nothing-like-it.html",
            "compare/model@v0.0.1...model@v9.9.9.html",
            "compare/--output=x...model@v0.0.1.html",
            "compare/model@v0.0.1.html",
        ):
            missing = httpx.get(f"{url}/{bad}")
            assert missing.status_code == 404, bad
            assert '<p class="error">' in missing.text, bad
        assert (
            "model@v9.9.9 is not registered" in httpx.get(f"{url}/versions/model@v9.9.9.html").text
        )
        # read-only: no route changes anything, and a page asked for by another name is refused
        assert httpx.post(f"{url}/index.html").status_code == 405
        before = git(registry, "tag").stdout
        form = {"ref": "model@v0.0.3", "stage": "prod"}
        assert httpx.post(f"{url}/actions/promote", data=form).status_code == 404
        assert git(registry, "tag").stdout == before
        rebound = httpx.get(f"{url}/index.html", headers={"Host": "attacker.example:80"})
        assert rebound.status_code == 400


def test_hostile_repository_content_is_a_page_with_a_line_not_a_500(
    registry, tmp_path, monkeypatch, capsys
):
    """A commit whose dvc.yaml names a file on the server as a chart template, a field its data
    lacks and fields of the wrong type, whose params.yaml points outside the repository, and a
    hand-written tag whose lineage has the wrong shapes: every page still answers."""
    from ruamel.yaml import YAML

    repo = copy_repo(registry, tmp_path / "repo")
    branch = git(repo, "rev-parse", "--abbrev-ref", "HEAD").stdout.strip()
    git(repo, "checkout", "-q", "-b", "hostile")
    yaml = YAML()
    doc = yaml.load((repo / "dvc.yaml").read_text())
    roc = "metrics/plots/roc.json"
    doc["plots"] = [
        {"Server file": {"template": "/etc/passwd", "x": "fpr", "y": {roc: "tpr"}}},
        {"Missing field": {"template": "linear", "x": "fpr", "y": {roc: "nope"}}},
        {"Odd types": {"x": {"a": 1}, "y": {roc: ["tpr"]}}},
        ["not", "a", "mapping"],
    ]
    with (repo / "dvc.yaml").open("w") as f:
        yaml.dump(doc, f)
    set_params(repo, **{"paths.metrics": "../../etc/hostname", "paths.card": "/etc/passwd"})
    git(repo, "commit", "-q", "-am", "hostile files")
    lineage = {"metrics": 5, "model": "x", "data": [1], "params": "x"}
    git(repo, "tag", "-a", "model@v9.0.0", "-m", f"Register\n\n{json.dumps(lineage)}")
    git(repo, "checkout", "-q", branch)
    monkeypatch.chdir(repo)
    assert cli.main(["list", "--json"]) == 0
    assert {"v9.0.0", "v0.0.1"} <= {r["version"] for r in json.loads(capsys.readouterr().out)}
    with ui_server(repo) as url:
        assert httpx.get(f"{url}/index.html").status_code == 200
        page = httpx.get(f"{url}/versions/model@v9.0.0.html")
        assert page.status_code == 200
        notes = [" ".join(n.split()) for n in page.text.split('<p class="muted">')[1:]]
        assert any(n.startswith("template &#39;/etc/passwd&#39; is not one of DVC") for n in notes)
        assert any(n.startswith("cannot draw:") for n in notes)
        assert any(n.startswith("x and y must each name one field") for n in notes)
        assert "root:" not in page.text  # nothing of /etc/passwd reached the page
        compare = httpx.get(f"{url}/compare/model@v0.0.1...model@v9.0.0.html")
        assert compare.status_code == 200 and "cannot judge" in compare.text
    out = tmp_path / "site"
    assert cli.main(["ui", "--export", str(out)]) == 0
    assert (out / "versions/model@v9.0.0.html").exists()


# -- actions: only with --allow-actions, by POST, with the CSRF token, this Origin, the token --
def csrf_of(html: str) -> str:
    token = html.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    assert len(token) >= 32
    return token


def test_actions_need_post_the_csrf_token_this_origin_and_the_token(
    registry, tmp_path, monkeypatch
):
    repo = copy_repo(registry, tmp_path / "repo")
    monkeypatch.chdir(repo)
    with ui_server(repo, "--allow-actions", token="s3cret") as url:
        board = httpx.get(f"{url}/index.html").text
        assert 'href="/login.html"' in board and 'data-action="rollback"' in board
        csrf = csrf_of(board)
        origin = {"Origin": url}
        form = {"csrf": csrf, "ref": "model@v0.0.2", "stage": "prod"}
        before = git(repo, "tag").stdout

        def post(path, data, headers=origin, cookies=None):
            with httpx.Client(cookies=cookies) as client:
                return client.post(f"{url}{path}", data=data, headers=headers)

        assert httpx.get(f"{url}/actions/promote").status_code == 405  # never by GET
        assert post("/actions/promote", form).status_code == 401  # not signed in
        assert post("/actions/promote", {**form, "csrf": ""}).status_code == 403
        assert post("/actions/promote", {**form, "csrf": "x" * 43}).status_code == 403
        assert post("/actions/promote", form, headers={}).status_code == 403  # no Origin
        evil = {"Origin": "http://attacker.example"}
        assert post("/actions/promote", form, headers=evil).status_code == 403
        rebound = {"Origin": "http://attacker.example:80", "Host": "attacker.example:80"}
        assert post("/actions/promote", form, headers=rebound).status_code == 400
        wrong = post("/login", {"csrf": csrf, "token": "guess"})
        assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
        assert git(repo, "tag").stdout == before  # nothing refused changed anything

        signed = post("/login", {"csrf": csrf, "token": "s3cret"})
        assert signed.status_code == 303
        cookie = signed.headers["set-cookie"]
        port = url.rsplit(":", 1)[1]
        assert cookie.startswith(f"modelops_ui_{port}=") and "s3cret" not in cookie
        assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
        assert "Max-Age=43200" in cookie  # a session id for 12 hours, never the token itself
        jar = {f"modelops_ui_{port}": signed.cookies[f"modelops_ui_{port}"]}
        assert (
            post("/actions/promote", form, cookies={f"modelops_ui_{port}": "s3cret"}).status_code
            == 401
        )
        # the gate still decides: v0.0.2 has a lower F1 than prod's v0.0.1
        refused = post("/actions/promote", form, cookies=jar)
        assert refused.status_code == 409 and "gate: model@v0.0.2 has f1" in refused.text
        unreasoned = post("/actions/promote", {**form, "force": "1"}, cookies=jar)
        assert unreasoned.status_code == 400 and "--force needs --reason" in unreasoned.text
        assert git(repo, "tag").stdout == before

        forced = {**form, "force": "1", "reason": "hot-fix <b>now</b>"}
        done = post("/actions/promote", forced, cookies=jar)
        assert done.status_code == 303 and done.headers["location"] == "/versions/model@v0.0.2.html"
        lanes = Page(httpx.get(f"{url}/index.html").text).lanes
        assert lanes["prod"].split()[:2] == ["prod", "v0.0.2"]

        def gto_stages() -> dict[str, list[str]]:
            shown = subprocess.run(
                [str(BIN / "gto"), "show", "model", "--json"],
                cwd=repo,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            return {
                v["version"]: sorted(s["stage"] for s in v["stages"]) for v in json.loads(shown)
            }

        assert gto_stages()["v0.0.2"] == ["dev", "prod"]  # GTO reads what the page wrote
        assert (
            "hot-fix <b>now</b>"
            in Page(httpx.get(f"{url}/versions/model@v0.0.2.html").text).reasons
        )

        # a roll back from a page that showed another holder is refused: it would undo more
        rollback = {"csrf": csrf, "name": "model", "stage": "prod", "holder": "v0.0.1"}
        stale = post("/actions/rollback", rollback, cookies=jar)
        assert stale.status_code == 409 and "held by v0.0.2 now, not v0.0.1" in stale.text
        rolled = post("/actions/rollback", {**rollback, "holder": "v0.0.2"}, cookies=jar)
        assert rolled.status_code == 303
        retire = {"csrf": csrf, "ref": "@v0.0.3", "reason": "superseded"}  # the one model
        retired = post("/actions/retire", retire, cookies=jar)
        assert retired.status_code == 303
        assert retired.headers["location"] == "/versions/model@v0.0.3.html"
        board = Page(httpx.get(f"{url}/index.html").text)
        assert board.lanes["prod"].split()[:2] == ["prod", "v0.0.1"]
        assert gto_stages() == {"v0.0.1": ["prod"], "v0.0.2": ["dev"]}  # v0.0.3 retired
        assert {r["version"]: r["retired"] for r in api.list_versions()} == {
            "v0.0.1": False,
            "v0.0.2": False,
            "v0.0.3": True,
        }
        signed_out = post("/logout", {"csrf": csrf}, cookies=jar)
        assert signed_out.status_code == 303 and "Max-Age=0" in signed_out.headers["set-cookie"]
        after = post(
            "/actions/rollback", {**rollback, "stage": "dev", "holder": "v0.0.2"}, cookies=jar
        )
        assert (
            after.status_code == 401
        )  # the session ended on the server, whatever the browser keeps


def test_actions_refuse_to_start_without_a_token_off_loopback_or_with_an_empty_one(
    registry, monkeypatch, capsys
):
    monkeypatch.chdir(registry)
    monkeypatch.delenv("MODELOPS_TOKEN", raising=False)
    err = cli_error(capsys, ["ui", "--allow-actions", "--host", "0.0.0.0"], code=2)
    assert err.startswith("error: --allow-actions on 0.0.0.0 (not loopback) needs a token")
    monkeypatch.setenv("MODELOPS_TOKEN", "  ")
    err = cli_error(capsys, ["ui", "--allow-actions"], code=2)
    assert "MODELOPS_TOKEN (serving.token_env) is set but empty" in err


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


@contextlib.contextmanager
def watched(browser, url: str):
    """A page in a fresh context that records console errors, page errors and dialogs, and
    refuses (and records) every request for anything but ``url``."""
    context = browser.new_context()
    left: list[str] = []
    problems: list[str] = []

    def local_only(route):
        if route.request.url.startswith(f"{url}/"):
            route.continue_()
        else:
            left.append(route.request.url)
            route.abort()

    context.route("**/*", local_only)
    page = context.new_page()
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    try:
        yield page
    finally:
        context.close()
    assert problems == [] and left == []


def drawn(page) -> int:
    """Wait until every chart on the page has drawn its SVG; return how many there are."""
    n = page.locator(".vega").count()
    page.wait_for_function("n => document.querySelectorAll('.vega svg').length === n", arg=n)
    return n


def marks(page, file: str, kind: str) -> int:
    """The data marks Vega drew for the first layer of a kind in the chart of ``file``: its
    paths in every group of that layer (a group per series or facet when sides are compared)."""
    return page.evaluate(
        """([file, kind]) => {
            const svg = document.querySelector(`[data-file="${file}"] svg`);
            const first = svg && svg.querySelector(`g.mark-${kind}.role-mark`);
            if (!first) return 0;
            const layer = first.getAttribute('class');
            return Array.from(svg.querySelectorAll('g'))
                .filter(g => g.getAttribute('class') === layer)
                .reduce((n, g) => n + g.querySelectorAll(':scope > path').length, 0);
        }""",
        [file, kind],
    )


def test_in_a_browser_board_version_compare_and_experiments_draw_offline(
    registry, browser, monkeypatch
):
    monkeypatch.chdir(registry)
    shown = api.show("model@v0.0.2")
    api_charts = pages.charts(api.workspace(), [("v0.0.2", shown["commit"])])
    importance = committed(registry, shown["commit"], "metrics/plots/importance.json")
    with ui_server(registry) as url, watched(browser, url) as page:
        page.goto(f"{url}/")
        assert page.locator('[data-stage="prod"]').text_content().split() == ["prod", "v0.0.1"]
        page.locator('tr[data-version="v0.0.2"] a').click()
        page.wait_for_url(f"{url}/versions/model@v0.0.2.html")
        for metric, value in shown["metrics"].items():
            cell = page.locator(f'table.metrics tr[data-metric="{metric}"] td')
            assert cell.inner_text() == f"{value:.4g}"
        assert HOSTILE in page.locator("td.reason").all_inner_texts()

        # loss, ROC, precision-recall, confusion, importance, and the drift across versions
        assert drawn(page) == 6
        figures = [c.get_attribute("data-file") for c in page.locator("figure.chart").all()]
        assert figures == [c["file"] for c in api_charts] + ["drift"]
        assert marks(page, "metrics/plots/roc.json", "line") == 1  # one version
        assert marks(page, "metrics/loss.json", "line") == 1
        assert marks(page, "metrics/plots/confusion.json", "rect") == 4  # 2 x 2
        assert marks(page, "metrics/plots/importance.json", "rect") == len(importance)
        assert marks(page, "drift", "symbol") == 1  # v0.0.3's one batch
        empty = page.locator('[data-file="metrics/plots/predicted_vs_actual.json"]')
        assert "no data at this version" in empty.inner_text()

        # to the comparison with prod's holder: both curves in one chart
        page.locator('.compare-links a[data-stage="prod"]').click()
        page.wait_for_url(f"{url}/compare/model@v0.0.1...model@v0.0.2.html")
        a = committed(registry, api.show("model@v0.0.1")["commit"], "metrics/metrics.json")
        for metric, value in shown["metrics"].items():
            row = page.locator(f'table.metrics tr[data-metric="{metric}"]')
            assert row.locator("td.old").inner_text() == f"{a[metric]:.4g}"
            assert row.locator("td.new").inner_text() == f"{value:.4g}"
        assert page.locator(".verdict").get_attribute("data-passed") == "false"  # lower F1
        assert drawn(page) == 5
        assert marks(page, "metrics/plots/roc.json", "line") == 2  # one per side
        assert marks(page, "metrics/plots/confusion.json", "rect") == 8  # 2 x (2 x 2)

        # to the experiments: sort by F1, pick the two, compare them
        page.locator("header a", has_text="experiments").click()
        page.wait_for_url(f"{url}/experiments.html")
        names = lambda: page.locator("#experiments tbody tr").evaluate_all(  # noqa: E731
            "rows => rows.map(r => r.dataset.exp)"
        )
        assert sorted(names()) == sorted(["main", EXPERIMENT])
        f1 = page.locator('th[data-metric="f1"]')
        f1.click()
        values = page.locator('#experiments tbody td[data-metric="f1"]').evaluate_all(
            "cells => cells.map(c => Number(c.dataset.value))"
        )
        assert values == sorted(values) and f1.get_attribute("aria-sort") == "ascending"
        f1.click()
        assert page.locator('#experiments tbody td[data-metric="f1"]').evaluate_all(
            "cells => cells.map(c => Number(c.dataset.value))"
        ) == sorted(values, reverse=True)
        button = page.locator("#compare")
        assert button.is_disabled()
        page.locator('tr[data-exp="main"] input.pick').check()
        page.locator("tr.exp input.pick").check()  # the one experiment
        button.click()
        head = git(registry, "rev-parse", "HEAD").stdout.strip()
        page.wait_for_url(f"{url}/compare/{head}...{experiment_commit(registry)}.html")
        assert page.locator('.side[data-side="b"]').inner_text() == EXPERIMENT
        assert drawn(page) == 5
        assert marks(page, "metrics/plots/roc.json", "line") == 2


def test_in_a_browser_a_signed_in_user_promotes_from_the_version_page(
    registry, browser, tmp_path, monkeypatch
):
    repo = copy_repo(registry, tmp_path / "repo")
    monkeypatch.chdir(repo)
    with ui_server(repo, "--allow-actions", token="s3cret") as url, watched(browser, url) as page:
        page.goto(f"{url}/versions/model@v0.0.3.html")
        page.locator("a.signin").click()
        page.locator('input[name="token"]').fill("s3cret")
        page.locator('button[type="submit"]').click()
        page.wait_for_url(f"{url}/index.html")
        assert page.locator("a.signin").count() == 0  # signed in
        assert "s3cret" not in page.evaluate("document.cookie")  # HttpOnly: scripts cannot read it
        page.goto(f"{url}/versions/model@v0.0.3.html")
        promote = page.locator('form[data-action="promote"]')
        promote.locator('select[name="stage"]').select_option("staging")
        promote.locator('button[type="submit"]').click()  # chromium sends its own Origin
        page.wait_for_url(f"{url}/versions/model@v0.0.3.html")
        assert "staging" in page.locator("table.lineage").inner_text()
        page.goto(f"{url}/index.html")
        assert page.locator('[data-stage="staging"]').text_content().split()[:2] == [
            "staging",
            "v0.0.3",
        ]
    assert {r["version"]: r["stages"] for r in api.list_versions()}["v0.0.3"] == ["staging"]


def test_a_feature_named_with_markup_goes_through_the_pipeline_and_shows_as_text(
    reproduced, browser, tmp_path, monkeypatch
):
    """A user's CSV whose column names and a category hold markup: prepare, train, evaluate,
    register, then the version page shows them as text and its charts draw."""
    import pandas as pd

    from tests.helpers import messy_csv

    repo = copy_repo(reproduced, tmp_path / "repo")
    script, img = "<script>alert(1)</script>", '"><img src=x onerror=alert(2)>'
    frame = pd.read_csv(messy_csv(tmp_path / "raw.csv", "binary"))
    frame["plan"] = frame["plan"].replace("pro", "<b>pro</b>")
    frame = frame.rename(columns={"x1": script, "plan": img})
    (repo / "data/raw").mkdir(parents=True, exist_ok=True)
    frame.to_csv(repo / "data/raw/users.csv", index=False)
    set_params(
        repo,
        **{
            "data.source": "csv",
            "data.path": "data/raw/users.csv",
            "data.target": "y",
            "data.positive_class": "churned",
        },
    )
    dvc(repo, "repro")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a CSV with markup in its names")
    monkeypatch.chdir(repo)
    api.register()
    version = api.list_versions()[0]["version"]
    out = tmp_path / "site"
    api.ui_export(out)
    html = (out / f"versions/model@{version}.html").read_text()
    assert "<img" not in html and "<script>alert" not in html
    with ui_server(repo) as url, watched(browser, url) as page:
        page.goto(f"{url}/versions/model@{version}.html")
        features = page.locator("table.features").inner_text()
        assert script in features and img in features and "<b>pro</b>" in features
        shown = set(page.locator("table.importance th").all_inner_texts())
        assert script in shown and f"{img}=<b>pro</b>" in shown  # a one-hot column's name
        drawn(page)
        labels = page.locator('[data-file="metrics/plots/importance.json"] svg text')
        assert script in labels.all_text_contents()  # an axis label, drawn as SVG text
        assert page.locator("img").count() == 0
