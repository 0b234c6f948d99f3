"""Stage prepare: load the source, check it, split it, write the splits and the schema."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from modelops.stages import entry, parser, run, writing


def _body(args: argparse.Namespace) -> None:
    from modelops import data, params
    from modelops.files import atomic_dir, write_json

    p = params.load(args.params)
    train, test, schema = data.prepare(p.data, p.split)
    with writing("prepare"):
        with atomic_dir(args.out) as tmp:
            for frame, name in ((train, data.TRAIN_FILE), (test, data.TEST_FILE)):
                data.write_prepared(frame, tmp / name)
            write_json(tmp / data.SCHEMA_FILE, schema.to_dict())
        _report(schema)


def _report(schema) -> None:
    print(
        f"prepare: {schema.task}, target {schema.target!r}, {schema.rows['train']} train / "
        f"{schema.rows['test']} test rows, {len(schema.numeric)} numeric and "
        f"{len(schema.categorical)} categorical features"
    )
    if schema.rows["dropped_unlabelled"]:
        print(f"prepare: dropped {schema.rows['dropped_unlabelled']} rows with no target value")
    for col, n in schema.stray_as_missing.items():
        print(f"prepare: column {col!r}: {n} stray text value(s) read as missing")
    for col, why in schema.dropped.items():
        print(f"prepare: dropped column {col!r}: {why}")


def main(argv: Sequence[str] | None = None) -> int:
    p = parser("prepare", __doc__)
    p.add_argument("--out", type=Path, required=True, help="directory for the prepared data")
    return run(_body, p, argv)


if __name__ == "__main__":
    entry(main)
