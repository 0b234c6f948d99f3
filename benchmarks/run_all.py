"""`make bench`: the benchmark scripts in turn, then the time each took (the run stays under 15
minutes on 2 cores). `make bench-large` (``--large``) runs the long ones: the pipeline's
scaling series, the experiment grid, the web pages, the prediction log, tuning, publish /
get of a 640 MB bundle, and 10^7 rows through the stages."""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import time

import readme_table
from common import HERE, machine, record, verdict

SCRIPTS = (
    "startup.py",
    "registry_list.py",
    "training.py",
    "determinism.py",
    "noop.py",
    "pipeline.py",
    "rollback.py",
    "monitoring.py",
    "remote.py",
    "serving.py",
)
LARGE = (
    "pipeline.py --scaling",
    "experiments_grid.py",
    "ui_pages.py",
    "prediction_log.py",
    "tuning.py",
    "remote_versions.py",
    "large_data.py",
)
BUDGET = 15 * 60


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--large", action="store_true", help="run the long benchmarks instead")
    large = p.parse_args().large
    target = "make bench-large" if large else "make bench"
    spent, failed = {}, []
    for line in LARGE if large else SCRIPTS:
        script, *args = line.split()
        start = time.perf_counter()
        if subprocess.run([sys.executable, str(HERE / script), *args], cwd=HERE).returncode:
            # The others still run, and README's table is still regenerated from what did:
            # RESULTS.md and README must not disagree (tests/test_project.py checks).
            print(f"{target}: {line} failed or was skipped", file=sys.stderr)
            failed.append(line)
            continue
        spent[line] = time.perf_counter() - start
    if failed:
        readme_table.main()
        print(f"{target}: did not complete: {', '.join(failed)}", file=sys.stderr)
        return 1
    total = sum(spent.values())
    rows = "\n".join(f"| {name} | {s:.0f} s |" for name, s in spent.items())
    met = total <= BUDGET
    if large:
        record(
            f"{target}: time per script",
            f"""
{dt.date.today()}, {machine()}.

| script | wall time |
|---|---|
{rows}
| **total** | **{total / 60:.1f} min** |
""",
        )
        return readme_table.main()
    record(
        "make bench: time per script",
        f"""
{dt.date.today()}, {machine()}.

| script | wall time |
|---|---|
{rows}
| **total** | **{total / 60:.1f} min** (target < 15 min: {"met" if met else "NOT met"}) |
""",
        rows=[("`make bench`", f"{total / 60:.1f} min", f"< 15 min {verdict(met)}")],
    )
    return readme_table.main()


if __name__ == "__main__":
    sys.exit(main())
