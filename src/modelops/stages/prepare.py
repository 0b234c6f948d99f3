"""Stage prepare: load the source, check it, split it, write the splits and the schema."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from modelops.stages import entry, parser, run, writing


def _body(args: argparse.Namespace) -> None:
    import errno

    from modelops import data, params
    from modelops.errors import WorkspaceError
    from modelops.files import atomic_dir, write_json

    p = params.load(args.params)
    data.check_disk_space(p.data, args.out)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # A large CSV's columns of numbers wait in scratch files beside the output (its disk,
    # mapped back), not in this process's memory: a CSV larger than memory can be prepared.
    # The files are unlinked as soon as they are made, so nothing is left to clean up.
    spill = data.Spill(args.out.parent) if data.spills(p.data) else None
    try:
        train, test, schema = data.prepare(p.data, p.split, spill=spill)
        with writing("prepare"):
            with atomic_dir(args.out) as tmp:
                for frame, name in ((train, data.TRAIN_FILE), (test, data.TEST_FILE)):
                    data.write_prepared(frame, tmp / name)
                write_json(tmp / data.SCHEMA_FILE, schema.to_dict())
            _report(schema)
    except OSError as exc:
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        if not full and not isinstance(exc, data.ScratchError):
            raise
        # The estimate checked above reads the CSV's start; a file whose later rows are
        # shorter holds more values than it showed.
        what = "filled up" if full else f"refused a write ({exc.strerror})"
        fix = "free space" if full else "lift that limit or use another disk"
        raise WorkspaceError(
            f"disk: the disk of {args.out} {what} while preparing the data (its scratch files "
            f"and the prepared splits are removed); {fix} and run the stage again"
        ) from None


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
