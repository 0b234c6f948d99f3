"""The batch check: a CSV streamed in chunks into an ``Accumulator``, then judged.

Each chunk is parsed and validated under the inference rules (finite numbers,
answers the model can give, labels it knows) and reduced to counts, so memory
does not grow with the batch. ``verdict.report`` then turns the counts, the
model's reference profile and the thresholds into the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.errors import BatchError, BundleError
from modelops.monitoring.accumulator import Accumulator, Chunk

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np
    import pandas as pd

    from modelops.bundle import Model
    from modelops.data import Schema
    from modelops.inference import Outputs
    from modelops.params import MonitorParams


def parse_chunk(
    model: Model, frame: pd.DataFrame, line: int, path: Path, labelled: bool, flag: str = "--batch"
) -> Chunk:
    """A CSV chunk whose first row is at ``line`` as a ``Chunk``; BatchError naming the
    line and column of the first cell, answer or label that breaks the rules."""
    import numpy as np

    from modelops import inference

    pre, schema = model.preprocessor, model.schema
    numeric = {}
    for col in pre.numeric:
        values, wrong = inference.numeric_column(frame[col])
        if wrong.any():
            first = int(np.flatnonzero(wrong)[0])
            value = inference.cell(frame[col].iloc[first])
            raise BatchError(
                f"{flag} {path}: line {line + first}: {col!r} = {value} is not a finite number"
            )
        numeric[col] = values
    categorical = {col: inference.category_column(frame[col]) for col in pre.categorical}
    matrix = np.empty((len(frame), len(pre.numeric)))
    for j, values in enumerate(numeric.values()):
        matrix[:, j] = values
    answers = inference.predict(model, matrix, list(categorical.values()))
    if answers.refused.any():
        first = int(answers.refused.argmax())
        raise BatchError(
            f"{flag} {path}: line {line + first}: {inference.reason(answers, first)[0]}"
        )
    chunk = Chunk(len(frame), numeric, categorical, answers.scores())
    if labelled:
        chunk.y_true, chunk.y_out = _labelled(
            schema, frame[schema.target], answers, line, path, flag
        )
    return chunk


def _labelled(
    schema: Schema, target: pd.Series, answers: Outputs, line: int, path: Path, flag: str
) -> tuple[np.ndarray, np.ndarray]:
    """(known labels, the outputs for them): class codes and probabilities, or values and
    predictions; rows without a label are left out, a label the model never saw refused."""
    import numpy as np

    from modelops import inference

    if schema.task != "classification":
        yv, bad = inference.numeric_column(target)
        if bad.any():  # text or infinity: refused, as in a feature (not dropped unsaid)
            first = int(np.flatnonzero(bad)[0])
            raise BatchError(
                f"{flag} {path}: target {schema.target!r} = "
                f"{inference.cell(target.iloc[first])} (line {line + first}) is not a finite "
                "number; correct it, or leave the cell empty for a row without a label"
            )
        keep = ~np.isnan(yv)
        return yv[keep], answers.values[keep]
    codes = schema.encode_labels(target)
    unknown = (codes < 0) & target.notna().to_numpy()
    if unknown.any():
        first = int(np.flatnonzero(unknown)[0])
        raise BatchError(
            f"{flag} {path}: target {schema.target!r} has label "
            f"{target.iloc[first]!r} (line {line + first}) that the model never "
            f"saw; its labels are {', '.join(map(str, schema.classes))}"
        )
    keep = codes >= 0
    return codes[keep], answers.proba[keep]


def monitor(
    model: Model,
    path: Path,
    p: MonitorParams,
    na_values: list[str],
    chunk_rows: int,
    reference_metrics: dict[str, float],
) -> dict[str, Any]:
    """Drift report of the CSV at ``path`` against the model's reference profile."""
    from modelops import inference
    from modelops.data import csv_header
    from modelops.inference import iter_csv, read_ahead
    from modelops.monitoring import verdict

    profile = model.profile
    if not profile:
        raise BundleError("the model bundle has no reference profile; retrain it with `dvc repro`")
    pre, schema = model.preprocessor, model.schema
    header = csv_header(path, "--batch", BatchError)
    needed = [*pre.numeric, *pre.categorical]
    missing, ignored = inference.columns(header, needed, [schema.target])
    if missing:
        raise BatchError(
            f"--batch {path}: column {missing[0]!r} is missing; the model needs "
            f"{', '.join(needed[:10])}{', ...' if len(needed) > 10 else ''}"
        )
    labelled = schema.target in header
    acc = Accumulator.for_model(model)
    strings = [*pre.categorical, *([schema.target] if labelled else [])]
    chunks = iter_csv(
        path, pre.numeric, strings, na_values, chunk_rows, len(header), "--batch", BatchError
    )
    for line, frame in read_ahead(chunks):
        if len(frame):  # a header-only file gives one empty chunk; estimators refuse 0 rows
            acc.add(parse_chunk(model, frame, line, path, labelled))
    if acc.rows == 0:
        raise BatchError(f"--batch {path}: has a header but no rows")
    empty = acc.empty_column()
    if empty is not None:
        raise BatchError(f"--batch {path}: column {empty!r} has no values at all")
    return verdict.report(acc, profile, schema, p, reference_metrics, str(path), ignored)


def logged_chunk(model: Model, table: Any, labels: dict[str, Any], path: Path) -> Chunk:
    """A chunk of the prediction log (an Arrow table from ``predlog.tables``) as a ``Chunk``:
    the inputs as logged, the scores from the answers logged with them (the model is not run
    again), and the labels that feedback gave for them. BatchError when a file holds what the
    server never writes (an infinite number, a missing answer column)."""
    import numpy as np
    import pandas as pd

    from modelops.inference import Outputs

    pre, schema = model.preprocessor, model.schema
    n = table.num_rows
    numeric = {}
    for col in pre.numeric:
        try:
            # asarray: no copy of what is already float64, as the log writes numbers
            values = np.asarray(table.column(f"input.{col}").to_numpy(zero_copy_only=False), float)
        except (TypeError, ValueError):
            raise BatchError(f"log {path}: {col!r} is not numbers; not written by serve") from None
        if np.isinf(values).any():
            raise BatchError(f"log {path}: {col!r} holds an infinite number; not written by serve")
        numeric[col] = values
    categorical = {
        col: table.column(f"input.{col}").to_numpy(zero_copy_only=False) for col in pre.categorical
    }
    try:
        if schema.task == "classification":
            proba = np.column_stack(
                [table.column(f"output.proba_{c}").to_numpy() for c in schema.classes]
            )
            answers = Outputs(schema.task, schema.classes, proba, None, np.zeros(n, bool), {})
        else:
            values = table.column("output.prediction").to_numpy()
            answers = Outputs(schema.task, None, None, values, np.zeros(n, bool), {})
    except KeyError as exc:
        raise BatchError(f"log {path}: no answer column {exc}; not written by serve") from None
    chunk = Chunk(n, numeric, categorical, answers.scores())
    if labels:
        target = pd.Series(table.column("request_id").to_pandas().map(labels), dtype=object)
        if target.notna().any():
            chunk.y_true, chunk.y_out = _labelled(schema, target, answers, 1, path, "log")
    return chunk


def monitor_logged(
    model: Model,
    parts: Iterator[tuple[Path, Any]],
    labels: dict[str, Any],
    p: MonitorParams,
    reference_metrics: dict[str, float],
    source: str,
) -> dict[str, Any]:
    """The batch report for a version's logged records (``predlog.tables``), with the labels
    feedback gave by request id."""
    from modelops.monitoring import verdict

    profile = model.profile
    if not profile:
        raise BundleError("the model bundle has no reference profile; retrain it with `dvc repro`")
    acc = Accumulator.for_model(model)
    for path, table in parts:
        acc.add(logged_chunk(model, table, labels, path))
    if acc.rows == 0:
        raise BatchError(f"{source}: no logged records; serve some, or widen --since")
    return verdict.report(acc, profile, model.schema, p, reference_metrics, source, [])
