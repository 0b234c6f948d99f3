"""Stage monitor: check every CSV batch in the incoming directory against the model's
reference profile, so drift is versioned with the model and `dvc metrics diff` shows it.

A drift alert does not fail the stage (it is a finding, recorded in the metrics);
a batch that cannot be read does.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from modelops.stages import entry, parser, run, writing

CODES = {"ok": 0, "warn": 1, "alert": 2}


def _body(args: argparse.Namespace) -> None:
    from modelops import bundle, monitoring, params
    from modelops.files import write_json

    p = params.load(args.params)
    model, _ = bundle.load_locked(args.model, args.lock)
    reference = json.loads(Path(args.metrics).read_bytes()) if Path(args.metrics).exists() else {}
    files = sorted(args.incoming.glob("*.csv")) if args.incoming.is_dir() else []
    summary: dict = {"batches": len(files), "alerts": 0, "warnings": 0, "files": {}}
    for path in files:
        report = monitoring.monitor(
            model, path, p.monitor, p.data.na_values, p.serving.chunk_rows, reference
        )
        summary["alerts"] += report["verdict"] == "alert"
        summary["warnings"] += report["verdict"] == "warn"
        features = report["features"]
        entry = {
            "rows": report["rows"],
            "verdict_code": CODES[report["verdict"]],  # 0 ok, 1 warn, 2 alert
            "max_psi": max((f["psi"] for f in features), default=0.0),
            "prediction_psi": report["prediction"]["psi"],
            "drifted_features": len(report["causes"]),
        }
        if report["performance"]:
            entry[report["performance"]["metric"]] = report["performance"]["batch"]
        summary["files"][path.name] = entry
        print(f"monitor: {path.name}: {report['verdict']}: {report['recommendation']}")
    if not files:
        print(f"monitor: no CSV batches in {args.incoming}; nothing to check")
    with writing("monitor"):
        write_json(args.out, summary)


def main(argv: Sequence[str] | None = None) -> int:
    p = parser("monitor", __doc__)
    p.add_argument("--model", type=Path, required=True, help="model bundle with the profile")
    p.add_argument("--metrics", type=Path, required=True, help="the test split's metrics")
    p.add_argument("--incoming", type=Path, required=True, help="directory of CSV batches")
    p.add_argument("--out", type=Path, required=True, help="drift summary (JSON metrics)")
    p.add_argument("--lock", default="dvc.lock", help="dvc.lock to verify the bundle against")
    return run(_body, p, argv)


if __name__ == "__main__":
    entry(main)
