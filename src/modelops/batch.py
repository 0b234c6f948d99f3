"""Batch prediction: stream a CSV through the model in chunks, with bounded memory.

Every column is read as text and validated column by column. A bad row is
reported with its line number, and the run fails unless ``--skip-invalid``.
The rules are serving's and monitoring's (``modelops.inference``): numbers
must be finite, categories must have been seen in training (unless
``serving.unknown_categories: allow``), empty or NA cells are missing values,
columns the model does not use are ignored and named, and a row without a
finite answer is a bad row, never a ``nan``. Predictions go to a temp file
that replaces the output only when everything succeeded; on an error, Ctrl-C or
SIGTERM (``api.predict`` turns it into an interrupt) the temp file is removed.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from modelops import interrupts
from modelops.errors import DataError
from modelops.files import umask

if TYPE_CHECKING:
    from modelops.bundle import Model
    from modelops.params import ServingParams

MAX_REPORTED = 20


@dataclass
class BatchResult:
    rows: int = 0
    written: int = 0
    skipped: int = 0
    ignored_columns: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def predict_csv(
    model: Model, s: ServingParams, na_values: list[str], src: Path, dst: Path, skip_invalid: bool
) -> BatchResult:
    """Predict every row of ``src`` into ``dst`` (line, prediction, class probabilities)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from modelops import inference
    from modelops.data import csv_header
    from modelops.inference import iter_csv, read_ahead

    pre = model.preprocessor
    header = csv_header(src, "--input")
    needed = [*pre.numeric, *pre.categorical]
    missing, ignored = inference.columns(header, needed)
    if missing:
        raise DataError(
            f"--input {src}: column {missing[0]!r} is missing"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            + f"; the model needs {', '.join(needed[:12])}{', ...' if len(needed) > 12 else ''}"
        )
    result = BatchResult(ignored_columns=ignored)
    allowed = {c: set(v) for c, v in zip(pre.categorical, pre.categories_, strict=True)}
    dst.parent.mkdir(parents=True, exist_ok=True)
    progress = _progress(src)
    writer = tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
        os.close(fd)
        chunks = iter_csv(
            src, pre.numeric, pre.categorical, na_values, s.chunk_rows, len(header), "--input"
        )
        for first, frame in read_ahead(chunks):  # the next chunk is parsed meanwhile
            n = len(frame)
            lines = np.arange(first, first + n)
            result.rows += n
            numeric, cats, lines = _valid_rows(frame, pre, allowed, s, lines, result)
            answers = inference.predict(model, numeric, cats) if len(lines) else None
            if answers is not None and answers.refused.any():
                answers, lines = _finite_answers(answers, lines, result)
            result.skipped += n - len(lines)
            if not len(lines) or (result.errors and not skip_invalid):
                progress(n)
                continue  # keep scanning to report every bad line, but write nothing
            table = pa.table({"line": lines, **answers.to_columns()})
            if writer is None:
                writer = pacsv.CSVWriter(tmp, table.schema)
            writer.write_table(table)
            if not result.written:
                interrupts.pause_for_test("predict-writing")
            result.written += len(lines)
            progress(n)
        if result.rows == 0:
            raise DataError(f"--input {src}: has a header but no rows")
        if result.errors and not skip_invalid:
            shown = "; ".join(result.errors[:3])
            raise DataError(
                f"--input {src}: {result.skipped} invalid row(s): {shown}"
                + ("; ..." if len(result.errors) > 3 else "")
                + "; fix them or pass --skip-invalid (nothing was written)"
            )
        if writer is None:  # every row was skipped: the same columns, no rows
            schema = model.schema
            empty = {"line": pa.array([], pa.int64())}
            if schema.task == "regression":
                empty["prediction"] = pa.array([], pa.float64())
            else:
                empty["prediction"] = pa.array([], pa.string())
                empty.update({f"proba_{c}": pa.array([], pa.float64()) for c in schema.classes})
            pacsv.write_csv(pa.table(empty), tmp)
        else:
            writer.close()
            writer = None
        os.chmod(tmp, 0o666 & ~umask())  # as an ordinary write would, not mkstemp's 0600
        os.replace(tmp, dst)
    finally:
        if writer is not None:
            writer.close()
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        progress(None)
    return result


def _valid_rows(frame, pre, allowed, s: ServingParams, lines, result: BatchResult):
    """(numeric, categorical, line numbers) of the chunk's rows that pass the input rules;
    each refused row is noted in ``result`` with its line, column and value."""
    import numpy as np

    from modelops import inference

    n = len(frame)
    bad = np.zeros(n, dtype=bool)
    numeric = np.empty((n, len(pre.numeric)))
    for j, col in enumerate(pre.numeric):
        raw = frame[col]
        values, wrong = inference.numeric_column(raw)
        _note(result, lines[wrong], col, "is not a finite number", raw[wrong])
        bad |= wrong
        numeric[:, j] = values
    cats = []
    for col in pre.categorical:
        raw = inference.category_column(frame[col])
        if s.unknown_categories == "reject":
            wrong = np.array([v is not None and v not in allowed[col] for v in raw], bool)
            _note(result, lines[wrong], col, "is a category never seen in training", raw[wrong])
            bad |= wrong
        cats.append(raw)
    if not bad.any():
        return numeric, cats, lines
    keep = ~bad
    return numeric[keep], [c[keep] for c in cats], lines[keep]


def _finite_answers(answers, lines, result: BatchResult):
    """The answers and line numbers left once rows without a finite answer are noted."""
    import numpy as np

    from modelops import inference

    for i in np.flatnonzero(answers.refused).tolist():
        if len(result.errors) < MAX_REPORTED:
            result.errors.append(f"line {lines[i]}: {inference.reason(answers, i)[0]}")
    keep = ~answers.refused
    return answers.keep(keep), lines[keep]


def _note(result: BatchResult, lines, col: str, what: str, values) -> None:
    from modelops.inference import cell

    for ln, v in zip(lines[:MAX_REPORTED], list(values)[:MAX_REPORTED], strict=False):
        if len(result.errors) < MAX_REPORTED:
            result.errors.append(f"line {ln}: {col!r} = {cell(v)} {what}")


def _progress(src: Path):
    """A row counter on a terminal (tqdm, which DVC already brings); silent otherwise."""
    if not sys.stderr.isatty():
        return lambda n: None
    from tqdm import tqdm

    bar = tqdm(desc=f"predict {src.name}", unit=" rows", unit_scale=True, file=sys.stderr)

    def update(n):
        if n is None:
            bar.close()
        else:
            bar.update(n)

    return update
