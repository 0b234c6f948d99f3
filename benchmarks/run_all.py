"""`make bench`: every benchmark script in turn, then the time each took (issue 8 asks for
the whole run to stay under 15 minutes on 2 cores)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time

from common import HERE, machine, record

SCRIPTS = (
    "startup.py",
    "registry_list.py",
    "ui_pages.py",
    "training.py",
    "determinism.py",
    "noop.py",
    "pipeline.py",
    "rollback.py",
    "monitoring.py",
    "remote.py",
    "serving.py",
    "prediction_log.py",
    "experiments_grid.py",
    "tuning.py",
)
BUDGET = 15 * 60


def main() -> int:
    spent = {}
    for script in SCRIPTS:
        start = time.perf_counter()
        if subprocess.run([sys.executable, str(HERE / script)], cwd=HERE).returncode:
            print(f"make bench: {script} failed", file=sys.stderr)
            return 1
        spent[script] = time.perf_counter() - start
    total = sum(spent.values())
    rows = "\n".join(f"| {name} | {s:.0f} s |" for name, s in spent.items())
    verdict = "met" if total <= BUDGET else "NOT met"
    record(
        "make bench: time per script",
        f"""
{dt.date.today()}, {machine()}.

| script | wall time |
|---|---|
{rows}
| **total** | **{total / 60:.1f} min** (target < 15 min: {verdict}) |
""",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
