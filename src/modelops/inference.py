"""The rules every consumer of a model applies: serving (JSON records), batch prediction
and monitoring (CSV chunks) take their inputs and encode their outputs through here.

CSV files given to a model (``--input``, ``--batch``) are read here too, header first and
then in chunks of bounded size: ``modelops.data`` reads the training data, this module
what a model is asked about.

Inputs: the model's features must all be present; any other column or field (an id,
a timestamp, the target) is ignored and named, never refused. A number must be
finite; ``None``/NA is a missing value, imputed as in training.

Outputs: an answer is finite or it is not given. A record whose standardised
features leave float32's range (far outside anything seen in training; scikit-learn's
trees would refuse it) is not passed to the estimator, and one whose output is NaN or
infinite is not reported; either way the caller gets the record's index and a
reason naming the feature furthest from training.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from modelops.bundle import Model

# Standardised values beyond this are refused: float32's largest finite value.
MAX_STANDARDISED = 3.4028234663852886e38


def columns(present: Iterable[str], needed: list[str], used: Iterable[str] = ()) -> tuple:
    """(missing, ignored): the features absent from ``present``, and the columns of
    ``present`` the model does not use (``used`` names columns read for another purpose)."""
    present = list(present)
    have, want = set(present), set(needed) | set(used)
    return [c for c in needed if c not in have], [c for c in present if c not in want]


def json_number(value: Any) -> float:
    """A JSON number as a finite float; ValueError saying why not (bool, huge int, inf)."""
    if type(value) is int:
        try:
            value = float(value)
        except OverflowError:
            raise ValueError("is beyond the range of a float") from None
    elif type(value) is not float:
        raise TypeError(type(value).__name__)
    if not math.isfinite(value):
        raise ValueError("must be finite")
    return value


def numeric_column(raw: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """A CSV column as floats (NaN = missing) and the mask of cells that are not finite
    numbers (text, or a number beyond float range)."""
    import numpy as np
    import pandas as pd

    if raw.dtype.kind == "f":  # the C reader parsed every cell as a number already
        values = raw.to_numpy(dtype=float)
        return values, np.isinf(values)
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return values, (raw.notna().to_numpy() & np.isnan(values)) | np.isinf(values)


def cell(value: Any, limit: int = 60) -> str:
    """A CSV cell as an error message quotes it: ``1e+308`` or ``'oops'``, not numpy's repr,
    and at most ``limit`` characters of it (a 20 MB cell is not echoed whole)."""
    import numpy as np

    text = repr(float(value)) if isinstance(value, np.floating) else repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def category_column(raw: pd.Series) -> np.ndarray:
    """A CSV column as an object array of strings, ``None`` where missing."""
    return raw.astype(object).where(raw.notna(), None).to_numpy()


@dataclass
class Outputs:
    """The model's answers for n records, and which records have none (``refused``)."""

    task: str
    classes: list | None
    proba: np.ndarray | None  # (n, k) class probabilities; rows of refused records are 0
    values: np.ndarray | None  # (n,) regression predictions; refused rows are 0
    refused: np.ndarray  # (n,) bool
    reasons: dict[int, tuple[str, str | None]]  # record index -> (reason, feature or None)

    def keep(self, mask: np.ndarray) -> Outputs:
        """The answers of the records where ``mask`` is True, re-indexed."""
        import numpy as np

        index = np.flatnonzero(mask)
        old = {int(j): i for i, j in enumerate(index)}
        return Outputs(
            self.task,
            self.classes,
            None if self.proba is None else self.proba[mask],
            None if self.values is None else self.values[mask],
            self.refused[mask],
            {old[i]: r for i, r in self.reasons.items() if i in old},
        )

    def labels(self) -> np.ndarray:
        """The predicted class labels (object array) of a classifier."""
        import numpy as np

        return np.asarray(self.classes, dtype=object)[self.proba.argmax(axis=1)]

    def scores(self) -> np.ndarray:
        """What prediction drift is measured on, as ``profile.prediction_scores`` defines it."""
        if self.task == "regression":
            return self.values
        if len(self.classes) == 2:
            return self.proba[:, 1]
        return self.proba.argmax(axis=1).astype(float)

    def to_json(self) -> dict[str, Any]:
        """The body of a prediction response (no refused records: the caller checks first)."""
        import numpy as np

        if self.task == "regression":
            return {"predictions": self.values.tolist()}
        names = list(map(str, self.classes))
        return {
            "predictions": self.labels().tolist(),
            "probabilities": [
                dict(zip(names, row, strict=True)) for row in np.round(self.proba, 12).tolist()
            ],
        }

    def to_columns(self) -> dict[str, np.ndarray]:
        """The columns of a batch prediction file: prediction and one proba_<class> each."""
        if self.task == "regression":
            return {"prediction": self.values}
        out = {"prediction": self.labels().astype(str)}
        for k, label in enumerate(self.classes):
            out[f"proba_{label}"] = self.proba[:, k]
        return out


def predict(model: Model, numeric: np.ndarray, categorical: list) -> Outputs:
    """Answers for the records given as a float matrix (NaN = missing) and one object array
    per categorical feature; records without a finite answer are refused with a reason."""
    import numpy as np

    pre, schema = model.preprocessor, model.schema
    with np.errstate(all="ignore"):  # overflow to inf is caught just below, row by row
        X = pre.transform_arrays(numeric, categorical)
        far = ~(np.abs(X) <= MAX_STANDARDISED)  # NaN counts as far too
    n = len(X)
    refused = far.any(axis=1)
    reasons: dict[int, tuple[str, str | None]] = {}
    for i in np.flatnonzero(refused)[:1000].tolist():
        j = int(np.flatnonzero(far[i])[0])  # only a numeric column can be far: one-hots are 0/1
        name, value = pre.numeric[j], float(numeric[i, j])
        reasons[i] = (
            f"{name!r} = {value!r} is too far outside the training range to give an answer",
            name,
        )
    X[refused] = 0.0  # answered below but never reported: the estimator sees only finite input
    proba = values = None
    with np.errstate(all="ignore"):
        if schema.task == "classification":
            proba = np.asarray(model.estimator.predict_proba(X), dtype=float)
            bad = ~np.isfinite(proba).all(axis=1)
        else:
            values = np.asarray(model.estimator.predict(X), dtype=float).reshape(n)
            bad = ~np.isfinite(values)
    for i in np.flatnonzero(bad & ~refused)[:1000].tolist():
        reasons[i] = ("the model's answer is not finite", None)
        if len(pre.numeric):  # blame the feature furthest from training, in standard deviations
            j = int(np.argmax(np.abs(X[i, : len(pre.numeric)])))
            name = pre.numeric[j]
            reasons[i] = (
                f"the model's answer is not finite: {name!r} = {float(numeric[i, j])!r} is far "
                "outside the training range",
                name,
            )
    refused |= bad
    out = proba if proba is not None else values
    out[refused] = 0.0
    return Outputs(schema.task, schema.classes, proba, values, refused, reasons)


def reason(out: Outputs, i: int) -> tuple[str, str | None]:
    """Why record ``i`` was refused, and the feature to blame (if one is)."""
    return out.reasons.get(i, ("the model's answer is not finite", None))


HEADER_LIMIT = 1 << 20  # bytes: a header row longer than this is not a header


def csv_header(path: Path, flag: str, error: type[DataError] = DataError) -> list[str]:
    """The header row of a CSV given as ``flag``; ``error`` naming the flag if unreadable.
    At most ``HEADER_LIMIT`` bytes are read, so /dev/zero or a binary file cannot fill memory."""
    import csv

    try:
        with open(path, "rb") as f:
            raw = f.readline(HEADER_LIMIT + 1)
    except FileNotFoundError:
        raise error(f"{flag} {path}: no such file") from None
    except OSError as exc:
        raise error(f"{flag} {path}: cannot read it ({exc})") from None
    if len(raw) > HEADER_LIMIT:
        raise error(
            f"{flag} {path}: no line end in its first {HEADER_LIMIT:,} bytes; "
            "give a CSV file with a header row"
        )
    try:
        header = next(csv.reader([raw.decode("utf-8").rstrip("\r\n")]), None)
    except UnicodeDecodeError as exc:
        raise error(f"{flag} {path}: cannot read it as UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:  # a NUL byte, a field over csv's 128 KiB limit
        raise error(f"{flag} {path}: its header row is not CSV ({exc})") from None
    if not header:
        raise error(f"{flag} {path}: empty file; it needs a header row and rows")
    return header


def read_ahead(chunks: Iterator[Any], depth: int = 1) -> Iterator[Any]:
    """``chunks`` in order, with the next ``depth`` produced in a thread meanwhile: pandas'
    C parser and numpy release the GIL, so parsing the next chunk overlaps counting this one
    (two cores). At most ``depth`` chunks wait beyond the one in hand: memory stays bounded.
    What the producer raises is raised here, where the chunk would have come."""
    import queue
    import threading

    box: queue.Queue = queue.Queue(maxsize=depth)
    done, stop = object(), threading.Event()

    def put(entry: tuple[Any, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                box.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in chunks:
                if not put((item, None)):
                    return
            put((done, None))
        except BaseException as exc:  # handed to the consumer, raised there
            put((done, exc))
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # a generator's file handles, when the consumer left early

    thread = threading.Thread(target=produce, name="modelops-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, exc = box.get()
            if item is done:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()  # the consumer stopped early (an error, Ctrl-C): the producer ends too


def iter_csv(
    path: Path, numeric: list[str], strings: list[str], na_values: list[str], chunk_rows: int
):
    """Yield (first line number, frame) chunks of a CSV with bounded memory.

    Numeric columns are parsed as floats by pandas' C reader. If a chunk holds a
    value that is not a number, reading resumes at that chunk with every column as
    text, so the caller can say which lines are bad. (pyarrow's streaming reader
    decodes blocks ahead of the consumer, so its memory grows with the file; pandas'
    chunked reader does not.) Line numbers assume no quoted newlines.
    """
    import pandas as pd

    def reader(dtype, skip: int):
        return pd.read_csv(
            path,
            usecols=[*numeric, *strings],
            dtype=dtype,
            chunksize=chunk_rows,
            na_values=na_values,
            keep_default_na=False,
            engine="c",
            skiprows=range(1, skip + 1) if skip else None,
        )

    fast = {**dict.fromkeys(numeric, "float64"), **dict.fromkeys(strings, object)}
    done = 0
    try:
        for chunk in reader(fast, 0):
            yield done + 2, chunk
            done += len(chunk)
        return
    except ValueError as exc:
        if isinstance(exc, pd.errors.ParserError):
            raise DataError(f"{path}: malformed CSV after line {done + 1} ({exc})") from None
    for chunk in reader(dict.fromkeys([*numeric, *strings], object), done):
        yield done + 2, chunk
        done += len(chunk)
