"""README's performance table, regenerated from benchmarks/RESULTS.md.

Each benchmark writes its section of RESULTS.md with ``common.record``, and with it the
section's rows of the table as ``<!-- readme-row: {...} -->`` comments (measure, result,
target, and the CPU it ran on). This script puts those rows, sections in ``ORDER``, between
README's two markers. `make bench` and `make bench-large` run it last; ``--check`` exits 1
when README's table is not what RESULTS.md gives (tests/test_project.py checks the same).
"""

from __future__ import annotations

import json
import re
import sys

from common import HERE, RESULTS, ROW

README = HERE.parent / "README.md"
BEGIN = (
    "<!-- performance table: generated from benchmarks/RESULTS.md by benchmarks/readme_table.py -->"
)
END = "<!-- end of the performance table -->"

# Sections in the table's order; a section not named here follows, in RESULTS.md's order.
ORDER = (
    "Start-up: modelops --version vs dvc --version",
    "Registry: modelops list with 1,000 tags",
    "Web pages: server time with 1,000 tags",
    "Training: the train stage vs a scikit-learn script on 10^6 x 20",
    "Determinism: the cost of pinned numerics in the train stage",
    "Pipeline: cold dvc repro on a 10^6-row CSV vs one script",
    "Scaling: 10^4, 10^5, 10^6 rows",
    "Data larger than memory: 10^7 rows through the stages",
    "No-op dvc repro: this pipeline vs a trivial 3-stage pipeline",
    "Rollback: modelops checkout vs git checkout + dvc checkout, 200 MB bundle",
    "Experiments: 4-point grid, -j 2 vs one after another",
    "Serving: modelops serve vs FastAPI + scikit-learn, MLflow and the raw ASGI floor",
    "Prediction log: its cost to serving, and monitoring from it",
    "Tuning: TPE against a 64-point grid",
    "Monitoring: a 10^6 x 20 batch vs only reading it",
    "Remote: 200 MB push/pull through DVC vs boto3 to SeaweedFS",
    "Remote: modelops publish / get of a 200 MB and a 640 MB bundle vs boto3",
    "make bench: time per script",
)


def rows(results: str) -> list[dict[str, str]]:
    """The table's rows recorded in RESULTS.md's text, sections in ``ORDER``."""
    by_section: dict[str, list[dict[str, str]]] = {}
    for section in re.split(r"(?m)^## ", results)[1:]:
        title, _, body = section.partition("\n")
        marks = [line for line in body.splitlines() if line.startswith(ROW)]
        by_section[title.strip()] = [json.loads(m[len(ROW) : m.rindex(" -->")]) for m in marks]
    titles = [t for t in ORDER if t in by_section] + [t for t in by_section if t not in ORDER]
    return [row for t in titles for row in by_section[t]]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(results: str) -> str:
    lines = ["| measure | result | target |", "|---|---|---|"]
    for r in rows(results):
        lines.append(
            f"| {_cell(r['measure'])}; {_cell(r['cpu'])} | {_cell(r['result'])} "
            f"| {_cell(r['target'])} |"
        )
    return "\n".join(lines) + "\n"


def updated(readme: str, results: str) -> str:
    """``readme`` with the table between its markers made from ``results``."""
    start = readme.index(BEGIN) + len(BEGIN) + 1
    return readme[:start] + table(results) + readme[readme.index(END, start) :]


def main() -> int:
    readme, results = README.read_text(), RESULTS.read_text()
    new = updated(readme, results)
    if "--check" in sys.argv[1:]:
        if new != readme:
            print(
                "README.md's performance table is not what RESULTS.md gives: run "
                "`cd benchmarks && python readme_table.py`",
                file=sys.stderr,
            )
            return 1
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
