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


class _FieldCounts:
    """A binary file for pandas that counts each line's fields as pandas reads it: pandas
    fills a short row with missing values and, given ``usecols``, drops a long row's extra
    fields, so a row cut off or shifted by an unquoted comma would be predicted from the
    wrong values. ``bad`` holds the first line (1 = the header) whose field count differs
    from the header's, and that count. Blank lines (pandas skips them, as it does lines of
    spaces) are not counted. A block of lines without a quote is counted with numpy; one with
    a quote goes through ``csv``, whose rules for quotes are pandas': a quote opens a value
    only at a field's start (``5'11"`` is text), and a quoted value may span lines."""

    mode = "rb"

    def __init__(self, path: Path, fields: int) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 (closed by pandas, via close())
        self.fields = fields
        self.bad: tuple[int, int] | None = None
        self._line = 0  # lines completed so far
        self._carry = b""  # the last, unfinished line
        self._open: list[str] = []  # lines of a record whose quoted value goes on
        self._open_at = 0  # the line number (from 0) of its first line

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        if self.bad is None:
            self._count(data or b"\n", final=not data)
        return data

    def _count(self, data: bytes, final: bool) -> None:
        import numpy as np

        block = self._carry + data if self._carry else data
        end = block.rfind(b"\n") + 1  # whole lines only; the rest waits for the next read
        self._carry = b"" if final else block[end:]
        if not end:
            return
        first = self._line
        if self._open:  # within a quoted value that spans lines
            self._line += block.count(b"\n", 0, end)
            self._count_quoted(block[:end], first, final)
            return
        buf = np.frombuffer(block, np.uint8, count=end)  # no copy
        ends = np.flatnonzero(buf == 10)
        starts = np.r_[0, ends[:-1] + 1]
        commas = buf == 44
        # per line (from its start to the next line's): commas + 1 = fields
        fields = np.add.reduceat(commas, starts, dtype=np.int32) + 1
        if block.find(b'"', 0, end) >= 0:
            inside = _commas_in_quotes(buf, commas, ends)
            if inside is None:  # quotes csv must read: a value spanning lines, 5'11"
                self._line += len(ends)
                self._count_quoted(block[:end], first, final)
                return
            fields -= inside
        self._line += len(ends)
        for i in np.flatnonzero(fields != self.fields).tolist():  # few or none
            if first + i == 0 or not block[starts[i] : ends[i]].strip():
                continue  # the header, or a blank line (pandas skips those)
            self.bad = (first + i + 1, int(fields[i]))
            return

    def _count_quoted(self, block: bytes, first: int, final: bool) -> None:
        import csv

        lines = self._open + block.decode("utf-8", "replace").split("\n")[:-1]
        base = self._open_at if self._open else first
        self._open = []
        done = 0  # lines read by whole records
        reader = csv.reader(lines, strict=True)
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error:
                if reader.line_num >= len(lines) and not final:  # a value going on below
                    self._open, self._open_at = lines[done:], base + done
                    return
                # pandas takes what strict csv refuses ("ab"cd): count the rest leniently
                reader = csv.reader(lines[done:], strict=False)
                lines, base, done = lines[done:], base + done, 0
                continue
            at, done = base + done, reader.line_num
            if at == 0 or (len(record) <= 1 and not "".join(record).strip()):
                continue  # the header, or a blank line
            if len(record) != self.fields:
                self.bad = (at + 1, len(record))
                return

    def close(self) -> None:
        self._file.close()

    def __getattr__(self, name: str):
        return getattr(self._file, name)


def _commas_in_quotes(buf, commas, ends):
    """Per line, the commas inside quoted values, for whole lines whose quotes are all
    regular: each line holds an even number, a value opens with a quote only at a field's
    start and closes before a comma or the line's end (``""`` inside is a quote). None for any
    other use of quotes, which ``csv`` then reads (its rules are pandas')."""
    import numpy as np

    quotes = np.flatnonzero(buf == 34)
    line = np.searchsorted(ends, quotes)  # the line each quote is on
    if len(quotes) % 2 or (np.bincount(line, minlength=len(ends)) % 2).any():
        return None
    opens, closes = quotes[0::2], quotes[1::2]
    before = buf[np.maximum(opens - 1, 0)]
    at_start = (opens == 0) | (before == 44) | (before == 10) | (before == 34)
    after = buf[closes + 1]  # a close is never a line's last byte: the newline follows
    at_end = (after == 44) | (after == 10) | (after == 13) | (after == 34)
    if not (at_start.all() and at_end.all()):
        return None
    within = np.add.reduceat(commas, quotes, dtype=np.int32)[0::2]  # from open to close
    return np.bincount(line[0::2], weights=within, minlength=len(ends)).astype(np.int32)


def iter_csv(
    path: Path,
    numeric: list[str],
    strings: list[str],
    na_values: list[str],
    chunk_rows: int,
    fields: int,
    flag: str,
    error: type[DataError] = DataError,
):
    """Yield (first line number, frame) chunks of a CSV with bounded memory; ``fields`` is
    the header's field count, which every row must have (``error`` naming the line if not,
    before its chunk is yielded).

    Numeric columns are parsed as floats by pandas' C reader. If a chunk holds a
    value that is not a number, reading resumes at that chunk with every column as
    text, so the caller can say which lines are bad. (pyarrow's streaming reader
    decodes blocks ahead of the consumer, so its memory grows with the file; pandas'
    chunked reader does not.) Line numbers assume no blank lines and no quoted newlines.
    """
    import pandas as pd

    def reader(dtype, skip: int):
        source = _FieldCounts(path, fields)
        try:
            for chunk in pd.read_csv(
                source,
                usecols=[*numeric, *strings],
                dtype=dtype,
                chunksize=chunk_rows,
                na_values=na_values,
                keep_default_na=False,
                engine="c",
                skiprows=range(1, skip + 1) if skip else None,
            ):
                if source.bad is not None:  # pandas has read at least up to this chunk's end
                    line, n = source.bad
                    raise error(
                        f"{flag} {path}: line {line} has {n} field(s) where the header has "
                        f"{fields}; quote values that hold commas, and complete cut-off rows "
                        "(nothing was written)"
                    )
                yield chunk
        finally:
            source.close()

    fast = {**dict.fromkeys(numeric, "float64"), **dict.fromkeys(strings, object)}
    done = 0
    try:
        for chunk in reader(fast, 0):
            yield done + 2, chunk
            done += len(chunk)
        return
    except UnicodeDecodeError as exc:  # a ValueError: before the generic case below
        raise error(
            f"{flag} {path}: a row after line {done + 1} is not UTF-8 text ({exc.reason}); "
            "save the file as UTF-8"
        ) from None
    except ValueError as exc:
        if isinstance(exc, pd.errors.ParserError):
            raise error(f"{flag} {path}: malformed CSV after line {done + 1} ({exc})") from None
    try:
        for chunk in reader(dict.fromkeys([*numeric, *strings], object), done):
            yield done + 2, chunk
            done += len(chunk)
    except UnicodeDecodeError as exc:
        raise error(
            f"{flag} {path}: a row after line {done + 1} is not UTF-8 text ({exc.reason}); "
            "save the file as UTF-8"
        ) from None
