"""`make screenshots`: the README's pictures of `modelops ui`, taken from a real run.

Clones this repository into a temporary directory, reproduces it, registers three versions
(the third with a drifted batch its monitor stage checked), promotes two, runs two
experiments, serves the pages and photographs each in Debian's chromium (Playwright through
its executable path, as the tests drive it). Writes .github/screenshots/*.png."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
OUT = ROOT / ".github" / "screenshots"
WIDTH = 1100


IDENTITY = {  # the pictures show who registered and promoted: a made-up person
    "GIT_AUTHOR_NAME": "Ada Example",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada Example",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
}


def run(repo: Path, *argv: str) -> None:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", **IDENTITY)
    subprocess.run(argv, cwd=repo, env=env, check=True, stdout=subprocess.DEVNULL)


def build(repo: Path) -> None:
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    modelops = str(BIN / "modelops")
    run(repo, str(BIN / "dvc"), "repro", "-q")
    run(repo, "git", "commit", "-qam", "reproduce", "--allow-empty")
    run(repo, modelops, "register")
    for l2, message in (("0.1", "more regularisation"), ("0.01", "less regularisation")):
        if l2 == "0.01":
            run(
                repo,
                modelops,
                "make-batch",
                "-o",
                "data/incoming/week1.csv",
                "--shift",
                "scale",
                "--feature",
                "mean area",
                "--version",
                "v0.0.1",
            )
        run(repo, str(BIN / "dvc"), "exp", "run", "-q", "-S", f"train.l2={l2}")
        run(repo, "git", "add", "-A")
        run(repo, "git", "commit", "-qm", message)
        run(repo, modelops, "register")
    run(repo, modelops, "promote", "model@v0.0.1", "--stage", "prod")
    run(
        repo,
        modelops,
        "promote",
        "model@v0.0.2",
        "--stage",
        "prod",
        "--force",
        "--reason",
        "hot-fix for the spring campaign",
    )
    run(repo, modelops, "rollback", "--stage", "prod")
    run(repo, modelops, "promote", "model@v0.0.2", "--stage", "dev")
    for l2 in ("0.05", "0.3"):
        run(repo, str(BIN / "dvc"), "exp", "run", "--temp", "-q", "-S", f"train.l2={l2}")


def main() -> int:
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not chromium:
        print("make screenshots: chromium is not installed; run `make chromium` first")
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "demo"
        build(repo)
        port = 8391
        server = subprocess.Popen(
            [str(BIN / "modelops"), "ui", "--port", str(port)],
            cwd=repo,
            stdout=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    if httpx.get(f"{url}/index.html", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            shots = {
                "board": "/index.html",
                "version": "/versions/model@v0.0.2.html",
                "compare": "/compare/model@v0.0.1...model@v0.0.3.html",
                "experiments": "/experiments.html",
            }
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"]
                )
                page = browser.new_page(viewport={"width": WIDTH, "height": 900})
                for name, path in shots.items():
                    page.goto(url + path)
                    n = page.locator(".vega").count()
                    page.wait_for_function(
                        "n => document.querySelectorAll('.vega svg').length === n", arg=n
                    )
                    page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
                    print(f"wrote {OUT / name}.png")
                browser.close()
        finally:
            server.terminate()
            server.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
