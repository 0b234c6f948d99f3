"""Shared benchmark helpers: alternate the measured commands, report medians, record results."""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
RESULTS = HERE / "RESULTS.md"


def sh(cwd: Path, *argv: str) -> str:
    """Run a command (no shell) with a benchmark git identity and the venv first on PATH
    (DVC stages run `python`); fail loudly; return stdout."""
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="bench",
        GIT_AUTHOR_EMAIL="bench@example.invalid",
        GIT_COMMITTER_NAME="bench",
        GIT_COMMITTER_EMAIL="bench@example.invalid",
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    return subprocess.run(argv, cwd=cwd, check=True, capture_output=True, text=True, env=env).stdout


def set_params(repo: Path, values: dict[str, object]) -> None:
    """Set params.yaml keys given by dotted name (``{"train.dtype": "float64"}``), keeping its
    comments (ruamel round trip)."""
    from ruamel.yaml import YAML

    rt = YAML()
    path = repo / "params.yaml"
    params = rt.load(path)
    for dotted, value in values.items():
        *parents, key = dotted.split(".")
        section = params
        for name in parents:
            section = section[name]
        section[key] = value
    rt.dump(params, path)


def reproduced_copy(
    dest: Path, synthetic: bool = False, prod: bool = False, params: dict | None = None
) -> Path:
    """This repository cloned into ``dest``, reproduced and committed: where benchmarks start.
    ``synthetic`` switches the data source; ``params`` sets keys first (see set_params);
    ``prod`` registers v0.0.1 and promotes it."""
    subprocess.run(["git", "clone", "-q", str(HERE.parent), str(dest)], check=True)
    if synthetic:
        params_file = dest / "params.yaml"
        text = params_file.read_text()
        params_file.write_text(text.replace("source: breast_cancer", "source: synthetic"))
    if params:
        set_params(dest, params)
    sh(dest, str(BIN / "dvc"), "repro", "-q")
    sh(dest, "git", "commit", "-qam", "reproduce for the benchmark", "--allow-empty")
    if prod:
        sh(dest, str(BIN / "modelops"), "register")
        sh(dest, str(BIN / "modelops"), "promote", "model@v0.0.1", "--stage", "prod")
    return dest


def time_commands(
    commands: dict[str, list[str]], repeats: int, cwd: Path | None = None, warmup: int = 1
) -> dict[str, float]:
    """Median wall time of each command, runs alternating so drift hits all alike."""
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for i in range(warmup + repeats):
        for name, argv in commands.items():
            start = time.perf_counter()
            subprocess.run(
                argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            if i >= warmup:
                samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(v) for name, v in samples.items()}


def cpu() -> str:
    """The CPU's model name (/proc/cpuinfo), or what platform knows."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return name


def machine() -> str:
    return (
        f"{cpu()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"
    )


def verdict(ok: bool) -> str:
    return "✔" if ok else "✘ not met"


ROW = "<!-- readme-row: "


def record(section: str, body: str, rows: list[tuple[str, str, str]] = ()) -> None:
    """Replace (or add) ``## section`` in RESULTS.md. ``rows`` are the section's lines of
    README's performance table, (measure, result, target), kept in the section as comments
    that benchmarks/readme_table.py turns into the table; each names the CPU it ran on."""
    import json

    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    fields = [dict(measure=m, result=r, target=t, cpu=cpu()) for m, r, t in rows]
    marks = "".join(f"{ROW}{json.dumps(f, ensure_ascii=False)} -->\n" for f in fields)
    block = f"## {section}\n\n{body.strip()}\n\n{marks}{chr(10) if marks else ''}"
    pattern = re.compile(rf"^## {re.escape(section)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text + block
    RESULTS.write_text(text)
    print(block)
