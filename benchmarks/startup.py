"""`modelops --version` against `dvc --version`, measured in the same run (target ratio <= 1.0)."""

from __future__ import annotations

import datetime as dt

from common import BIN, machine, record, time_commands, verdict

REPEATS = 15


def main() -> None:
    t = time_commands(
        {"modelops": [str(BIN / "modelops"), "--version"], "dvc": [str(BIN / "dvc"), "--version"]},
        REPEATS,
    )
    ratio = t["modelops"] / t["dvc"]
    record(
        "Start-up: modelops --version vs dvc --version",
        f"""
Median of {REPEATS} alternating runs each, {dt.date.today()}, {machine()}.

| command | median wall time |
|---|---|
| `modelops --version` | {t["modelops"] * 1000:.0f} ms |
| `dvc --version` (baseline) | {t["dvc"] * 1000:.0f} ms |

Ratio modelops / dvc: **{ratio:.2f}** (target ≤ 1.0: {"met" if ratio <= 1.0 else "NOT met"}).
""",
        rows=[
            (
                "`modelops --version` vs `dvc --version`",
                f"{ratio:.2f}× ({t['modelops'] * 1000:.0f} vs {t['dvc'] * 1000:.0f} ms)",
                f"≤ 1.0 {verdict(ratio <= 1.0)}",
            )
        ],
    )


if __name__ == "__main__":
    main()
