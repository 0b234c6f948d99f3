"""Loading sources (bundled datasets, CSV, synthetic), schema checks and the split.

Functions here take and return data frames and typed params; the prepare stage
does the file writing. Every data problem is a ``DataError`` whose message
names the column or key and what to do.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.errors import DataError, WorkspaceError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from modelops.params import DataParams, SplitParams

# A numeric target with at most this many distinct integer values is read as
# class labels when data.task is not set.
MAX_INFERRED_CLASSES = 20
# The prepared data: what prepare writes into its output directory (paths.prepared). The
# splits are Arrow IPC files (Feather v2), uncompressed: the next stage maps them instead of
# decoding them (reading 800,000 x 21 floats as parquet cost train 0.70 s).
TRAIN_FILE, TEST_FILE, SCHEMA_FILE = "train.arrow", "test.arrow", "schema.json"
BUNDLED = {
    # name: (scikit-learn's loader, target column, task, default positive class)
    "breast_cancer": ("load_breast_cancer", "diagnosis", "classification", "malignant"),
    "diabetes": ("load_diabetes", "progression", "regression", None),
}


@dataclass(frozen=True)
class Schema:
    """What prepare learned about the data; train, evaluate and serving read it."""

    task: str
    target: str
    numeric: list[str]
    categorical: list[str]
    dropped: dict[str, str]
    classes: list[Any] | None
    positive_class: Any
    source: dict[str, Any]
    rows: dict[str, int] = field(default_factory=dict)
    # column -> how many stray words (data.stray_text: missing) were read as missing
    stray_as_missing: dict[str, int] = field(default_factory=dict)

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def encode_labels(self, y: pd.Series | Column) -> np.ndarray:
        """Class labels -> indices into ``classes``; -1 for a label the model never saw."""
        import numpy as np

        values = y.to_numpy(dtype=object)
        classes = self.classes or []
        # A dict compares as pandas' object Index did (1 == 1.0 == np.int64(1)), without pandas.
        index = {c: k for k, c in enumerate(classes)}
        codes = np.fromiter((index.get(v, -1) for v in values), np.int64, len(values))
        miss = codes < 0
        if miss.any():  # labels that differ only in type, e.g. "1" in a batch and 1 in training
            by_text = {str(c): k for k, c in enumerate(classes)}
            codes[miss] = [by_text.get(str(v), -1) for v in values[miss]]
        return codes

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Schema:
        return cls(**d)


def _py(value: Any) -> Any:
    """numpy scalars -> Python scalars, so labels survive JSON unchanged."""
    return value.item() if hasattr(value, "item") else value


def load_source(
    p: DataParams, root: Path = Path("."), spill: Spill | None = None
) -> tuple[pd.DataFrame, str, dict[str, Any]]:
    """Load the configured source; return (frame, target column, source description)."""
    if p.source in BUNDLED:
        return _load_bundled(p)
    if p.source == "synthetic":
        return _load_synthetic(p)
    return _load_csv(p, root, spill)


# The bundled datasets are the files scikit-learn ships (sklearn/datasets/data/), read as its
# load_breast_cancer and load_diabetes(scaled=False) read them, without importing scikit-learn:
# its import (scipy.stats, pandas) cost prepare more than the rest of its work.
# tests/test_data.py compares both frames with scikit-learn's loaders value for value.
_MEASURES = (
    "radius",
    "texture",
    "perimeter",
    "area",
    "smoothness",
    "compactness",
    "concavity",
    "concave points",
    "symmetry",
    "fractal dimension",
)
BREAST_CANCER_FEATURES = [
    *(f"mean {m}" for m in _MEASURES),
    *(f"{m} error" for m in _MEASURES),
    *(f"worst {m}" for m in _MEASURES),
]
DIABETES_FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]


def _sklearn_data_dir() -> Path:
    """scikit-learn's bundled data files, found without running its __init__."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("data.source: the bundled datasets come with scikit-learn; install it")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


def _read_breast_cancer(folder: Path) -> pd.DataFrame:
    import csv

    import numpy as np
    import pandas as pd

    with open(folder / "breast_cancer.csv", encoding="utf-8", newline="") as handle:
        rows = csv.reader(handle)
        n_rows, n_features, *labels = next(rows)
        body = list(rows)
    data = np.asarray([row[:-1] for row in body], dtype=np.float64)  # float(): as sklearn
    codes = np.asarray([row[-1] for row in body], dtype=np.int64)
    if data.shape != (int(n_rows), int(n_features)):
        raise DataError(f"{folder / 'breast_cancer.csv'}: not the file scikit-learn ships")
    frame = pd.DataFrame(data, columns=BREAST_CANCER_FEATURES)
    frame["diagnosis"] = np.asarray(labels, dtype=object)[codes]
    return frame


def _read_diabetes(folder: Path) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    data = np.loadtxt(folder / "diabetes_data_raw.csv.gz")  # as sklearn's loader reads them
    target = np.loadtxt(folder / "diabetes_target.csv.gz")
    frame = pd.DataFrame(data, columns=DIABETES_FEATURES)
    frame["progression"] = target
    return frame


def _load_bundled(p: DataParams) -> tuple[pd.DataFrame, str, dict[str, Any]]:
    from importlib.metadata import version

    _loader, target, _task, _pos = BUNDLED[p.source]
    if p.target not in (None, target):
        raise DataError(
            f"data.target: the {p.source} dataset's target column is {target!r}, "
            f"not {p.target!r}; remove data.target or set it to {target!r}"
        )
    folder = _sklearn_data_dir()
    # Named labels make the positive class explicit: malignant is what we look for.
    frame = _read_breast_cancer(folder) if p.source == "breast_cancer" else _read_diabetes(folder)
    return frame, target, {"kind": p.source, "library": f"scikit-learn {version('scikit-learn')}"}


def _load_synthetic(p: DataParams) -> tuple[pd.DataFrame, str, dict[str, Any]]:
    import numpy as np
    import pandas as pd
    from sklearn.datasets import make_classification, make_regression

    s = p.synthetic
    if s.task == "classification":
        X, y = make_classification(
            n_samples=s.n_rows,
            n_features=s.n_features,
            n_informative=s.n_informative,
            n_redundant=0,
            n_classes=s.n_classes,
            flip_y=min(s.noise, 1.0),
            random_state=s.seed,
        )
    else:
        X, y = make_regression(
            n_samples=s.n_rows,
            n_features=s.n_features,
            n_informative=s.n_informative,
            noise=s.noise,
            random_state=s.seed,
        )
    width = len(str(s.n_features - 1))
    frame = pd.DataFrame(X, columns=[f"x{i:0{width}d}" for i in range(s.n_features)])
    frame["target"] = y.astype(np.int64) if s.task == "classification" else y
    return frame, "target", {"kind": "synthetic", **s.model_dump()}


HEADER_LIMIT = 1 << 20  # bytes: a header row longer than this is not a header


def csv_header(path: Path, flag: str, error: type[DataError] = DataError) -> list[str]:
    """The header row of a CSV given as ``flag``; ``error`` naming the flag if unreadable.
    At most ``HEADER_LIMIT`` bytes are read, so /dev/zero or a binary file cannot fill memory."""
    import bz2
    import csv
    import gzip
    import lzma

    opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(path.suffix.lower(), open)
    try:
        with opener(path, "rb") as f:
            raw = f.readline(HEADER_LIMIT + 1)
    except FileNotFoundError:
        raise error(f"{flag} {path}: no such file") from None
    except (OSError, EOFError, lzma.LZMAError) as exc:  # also a corrupt compressed file
        raise error(f"{flag} {path}: cannot read it ({exc})") from None
    if len(raw) > HEADER_LIMIT:
        raise error(
            f"{flag} {path}: no line end in its first {HEADER_LIMIT:,} bytes; "
            "give a CSV file with a header row"
        )
    try:
        # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark, which pandas skips too
        header = next(csv.reader([raw.decode("utf-8-sig").rstrip("\r\n")]), None)
    except UnicodeDecodeError as exc:
        raise error(f"{flag} {path}: cannot read it as UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:  # a NUL byte, a field over csv's 128 KiB limit
        raise error(f"{flag} {path}: its header row is not CSV ({exc})") from None
    if not header:
        raise error(f"{flag} {path}: empty file; it needs a header row and rows")
    seen: set[str] = set()
    for i, name in enumerate(header, 1):
        if not name.strip():
            continue  # pandas' index column (`to_csv` without index=False): "Unnamed: 0"
        if name in seen:  # pandas would rename the second (name.1) and use the first
            raise error(
                f"{flag} {path}: column {name!r} appears twice in the header (fields "
                f"{header.index(name) + 1} and {i}); rename one"
            )
        seen.add(name)
    return header


CSV_CHUNK_ROWS = 100_000


def read_csv(path: Path, na_values: list[str], spill: Spill | None = None) -> pd.DataFrame:
    """Read a CSV for prepare; DataError on any failure.

    pandas' C reader in chunks of 100,000 rows, each column copied out of its chunk so
    the chunk can go: at 10^6 x 21 (392 MB) the whole prepare stage peaked at 360 MB,
    where one pyarrow read_csv call alone peaked at 880 MB, most of it parse buffers its
    allocator kept. With ``spill``, columns of numbers go to its files as they are read and
    come back mapped, so a CSV larger than memory can be read. Each chunk infers its own
    types, so when chunks disagree on a column (numbers in one, text in another) the file
    is read again whole by pyarrow, which types each column from all of its values.
    """
    import pandas as pd

    if not path.exists():
        raise DataError(
            f"data.path: {path} does not exist; put the file there "
            f"(and `dvc add {path}`) or fix data.path"
        )
    if path.is_dir():
        raise DataError(f"data.path: {path} is a directory; point it at a CSV file")
    if path.stat().st_size == 0:
        raise DataError(f"data.path: {path} is empty; it needs a header row and data rows")
    if path.suffix.lower() not in (".zip", ".zst", ".tar"):  # pandas opens those itself
        csv_header(path, "data.path")  # bounded: /dev/zero or a binary file cannot fill memory
    pieces: dict[str, _Pieces] = {}
    kinds: dict[str, set[str]] = {}
    try:
        for chunk in pd.read_csv(
            path,
            chunksize=CSV_CHUNK_ROWS,
            na_values=na_values,
            keep_default_na=False,
            low_memory=False,  # one type per column within a chunk
            engine="c",
        ):
            for name in chunk.columns:
                kinds.setdefault(name, set()).add(_kind(chunk[name]))
                # A copy per column (or its spilled file) lets the chunk go now; the columns
                # are joined below.
                pieces.setdefault(name, _Pieces(name, spill)).add(chunk[name])
            del chunk
    except PermissionError:
        raise DataError(f"data.path: {path} is not readable (permission denied)") from None
    except ScratchError:  # writing the scratch files: the disk's state, not the CSV's
        raise
    except OSError as exc:
        raise DataError(f"data.path: cannot read {path} as CSV: {exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:  # ParserError is a ValueError
        raise DataError(f"data.path: cannot read {path} as CSV: {exc}") from None
    if not pieces or next(iter(pieces.values())).rows == 0:
        raise DataError(f"data.path: {path} has a header but no data rows")
    if any(len(k - {"any"}) > 1 for k in kinds.values()):
        pieces.clear()
        return _read_csv_whole(path, na_values)
    columns = {name: pieces.pop(name).joined() for name in list(pieces)}
    # One block per column (no consolidation copy); split() can then free them one by one.
    return pd.DataFrame(columns, copy=False)


# A CSV this large is prepared through scratch files (``Spill``); a smaller one in memory,
# where its columns fit and a scratch file per column would cost more than it saves.
SPILL_FROM_BYTES = 1 << 30


def spills(p: DataParams, root: Path = Path(".")) -> bool:
    """Whether prepare should hold this source's columns of numbers in scratch files."""
    if p.source != "csv":
        return False
    try:
        return (root / str(p.path)).stat().st_size >= SPILL_FROM_BYTES
    except OSError:
        return False  # reading it says why


class ScratchError(OSError):
    """Writing a scratch file failed (a full disk, a quota, an I/O error): the machine's state,
    not the data's."""


class Spill:
    """Scratch files for prepare's columns of numbers, mapped back read-only: such a column
    then lives in the page cache, which the kernel writes out and drops under pressure,
    instead of in the process's own memory. The files go in ``folder`` (the stage gives the
    output's, so they are on its disk) and are unlinked as soon as they are created: their
    space is freed when the last view of a column goes, and a killed process leaves none.

    Each mapped column holds a file descriptor (Python's mmap keeps one), so a column is
    spilled only while the process's limit leaves room; past it, columns stay in memory."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._budget = _raise_open_files_limit() - 256  # for everything else the stage opens
        self._files = 0

    def _new(self):
        """A new scratch file, already unlinked, open for writing; None past the budget."""
        import os
        import tempfile

        if self._files >= self._budget:
            return None
        self._files += 1
        try:
            fd, name = tempfile.mkstemp(prefix=".scratch-", dir=self.folder)
            os.unlink(name)
        except OSError as exc:
            raise ScratchError(exc.errno, exc.strerror) from None
        return os.fdopen(fd, "w+b")

    @staticmethod
    def holds(values: np.ndarray) -> bool:
        """Whether a column of this type goes to a file (numbers and booleans do, text does
        not)."""
        return values.dtype.kind in "biuf"

    def series(self, col: pd.Series) -> pd.Series:
        """``col`` as a mapped file when it holds numbers (and the budget allows), else
        itself."""
        import numpy as np
        import pandas as pd

        values = col.to_numpy()
        if not self.holds(values) or not len(values):
            return col
        f = self._new()
        if f is None:
            return col
        with f:
            _write(f, np.ascontiguousarray(values))
            mapped = _mapped(f, values.dtype, len(values))
        return pd.Series(mapped, name=col.name, copy=False)


def _raise_open_files_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit (many systems start
    processes at 1024, which a CSV of a few hundred columns would reach); return it."""
    try:
        import resource
    except ImportError:  # not a Unix
        return 512
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    top = 1 << 20 if hard == resource.RLIM_INFINITY else hard
    # macOS refuses more than its OPEN_MAX (10240) even with no hard limit: try that next.
    for want in (top, min(top, 10240)):
        if want <= soft:
            break
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            return want
        except (ValueError, OSError):
            continue
    return soft


def _write(f, values: np.ndarray) -> None:
    """``values``' bytes to ``f``; a failure (a full disk) is a ScratchError with its errno."""
    import numpy as np

    try:
        f.write(np.ascontiguousarray(values).data)
        f.flush()
    except OSError as exc:
        raise ScratchError(exc.errno, exc.strerror) from None


def _mapped(f, dtype, n: int, offset: int = 0) -> np.ndarray:
    """``n`` values of ``dtype`` from the open file ``f``, mapped read-only."""
    import mmap

    import numpy as np

    if not n:
        return np.empty(0, dtype)
    size = offset + n * np.dtype(dtype).itemsize
    view = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ)
    # A plain ndarray over the map, which it keeps alive: pandas takes it without a copy.
    return np.frombuffer(view, dtype=dtype, count=n, offset=offset)


# The chunk types a column's spilled parts may mix and still be joined in their file, as
# pandas' concat would join them (int64 chunks, then one with a gap: float64). Any other mix
# (booleans and a chunk of gaps, which pandas makes object) is joined by pandas in memory.
_JOINABLE = {"int64", "float64"}


class _Pieces:
    """One column's chunks as read_csv meets them: in memory, or appended to one scratch file
    while they are numbers."""

    def __init__(self, name: str, spill: Spill | None) -> None:
        self.name, self.spill = name, spill
        self.memory: list[pd.Series] = []
        self.parts: list[tuple[np.dtype, int]] = []  # (dtype, rows) appended to self.file
        self.file = None
        self.rows = 0

    def add(self, col: pd.Series) -> None:
        self.rows += len(col)
        values = col.to_numpy()
        first = self.file is None and not self.memory
        if first and self.spill is not None and Spill.holds(values):
            self.file = self.spill._new()
        if self.file is None or self.memory or not Spill.holds(values):
            self.memory.append(col.copy())
            return
        _write(self.file, values)
        self.parts.append((values.dtype, len(values)))

    def joined(self) -> pd.Series:
        import numpy as np
        import pandas as pd

        spilled = []
        if self.file is not None:
            types = {dtype for dtype, _ in self.parts}
            n = sum(n for _, n in self.parts)
            if len(types) == 1:
                whole = _mapped(self.file, types.pop(), n)
                spilled = [pd.Series(whole, name=self.name, copy=False)]
            elif {t.name for t in types} <= _JOINABLE:
                joined = self._cast(np.result_type(*types), n)
                spilled = [pd.Series(joined, name=self.name, copy=False)]
            else:
                spilled = self._in_memory()
            self.file.close()  # a map keeps its own descriptor
            self.file = None
        parts = spilled + self.memory
        self.memory = []
        if len(parts) == 1:
            return parts[0].reset_index(drop=True)
        return pd.concat(parts, ignore_index=True)

    def _in_memory(self) -> list[pd.Series]:
        import pandas as pd

        out, offset = [], 0
        for dtype, n in self.parts:
            values = _mapped(self.file, dtype, n, offset).copy()
            out.append(pd.Series(values, name=self.name, copy=False))
            offset += n * dtype.itemsize
        return out

    def _cast(self, dtype, n: int) -> np.ndarray:
        """The spilled chunks, each of its own type, rewritten as one of ``dtype``."""
        assert self.spill is not None
        out = self.spill._new()
        if out is None:  # no descriptor left for a second file
            import numpy as np

            return np.concatenate([p.to_numpy(dtype) for p in self._in_memory()])
        offset = 0
        with out:
            for part_type, count in self.parts:
                part = _mapped(self.file, part_type, count, offset)
                _write(out, part.astype(dtype))
                offset += count * part_type.itemsize
                del part
            return _mapped(out, dtype, n)


# Bytes per value of a CSV's columns that prepare may need on disk at once: the read's spilled
# files as the split takes them (8), the split's (8) and the prepared files (8), of which the
# read's are freed as the split goes; after prepare, DVC's cache holds a copy of its output (8).
DISK_BYTES_PER_VALUE = 16
DISK_SAMPLE = 1 << 20  # bytes of the CSV's start that estimate its rows


def disk_needed(p: DataParams, root: Path = Path(".")) -> tuple[int, str] | None:
    """(bytes, what for) that prepare will write for this source beside its output and in
    DVC's cache, estimated before reading; None for a source too small to matter or a CSV that
    is not there (reading it says why)."""
    if p.source == "synthetic":
        s = p.synthetic
        values = s.n_rows * (s.n_features + 1)
        what = f"{s.n_rows:,} x {s.n_features + 1} synthetic values"
    elif p.source == "csv":
        path = root / str(p.path)
        try:
            size = path.stat().st_size
            with open(path, "rb") as f:
                head = f.read(DISK_SAMPLE)
        except OSError:
            return None
        lines = head.split(b"\n")
        columns = lines[0].count(b",") + 1
        rows_in_head = max(1, head.count(b"\n") - 1)
        rows = rows_in_head * size / len(head) if size > len(head) else rows_in_head
        values = int(rows * columns)
        what = f"{p.path} (about {int(rows):,} rows x {columns} columns)"
    else:
        return None
    return values * DISK_BYTES_PER_VALUE, what


def check_disk_space(p: DataParams, out: Path, root: Path = Path(".")) -> None:
    """WorkspaceError, before any work, when the disk that will hold ``out`` has less free
    space than prepare needs for this source (``disk_needed``)."""
    import shutil

    need = disk_needed(p, root)
    if need is None:
        return
    needed, what = need
    folder = next(d for d in (out, *out.parents) if d.exists())
    free = shutil.disk_usage(folder).free
    if free < needed * 1.1:
        raise WorkspaceError(
            f"disk: {_size(free)} free on the disk of {out}, and preparing {what} needs about "
            f"{_size(needed)} there (its scratch files, the prepared splits and DVC's cached "
            f"copy); free space or move the repository"
        )


def _size(n: float) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


def _kind(col: pd.Series) -> str:
    """What a chunk made of a column: numbers and all-missing columns agree with anything."""
    if col.isna().all():
        return "any"
    return "number" if _is_numeric(col) else str(col.dtype)


def _read_csv_whole(path: Path, na_values: list[str]) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        table = pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(
                null_values=na_values, strings_can_be_null=True, quoted_strings_can_be_null=True
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError, OSError) as exc:
        raise DataError(f"data.path: cannot read {path} as CSV: {exc}") from None
    # Column by column, releasing Arrow's buffers as it goes: never two copies of the data.
    return table.to_pandas(split_blocks=True, self_destruct=True)


def _load_csv(
    p: DataParams, root: Path, spill: Spill | None = None
) -> tuple[pd.DataFrame, str, dict[str, Any]]:
    from concurrent.futures import ThreadPoolExecutor

    from modelops.files import md5_file

    path = root / str(p.path)
    with ThreadPoolExecutor(1) as pool:
        # hashlib releases the GIL, so the hash overlaps the parse instead of following it.
        digest = pool.submit(md5_file, path)
        frame = read_csv(path, p.na_values, spill)
        md5 = digest.result()
    assert p.target is not None  # guaranteed by params validation
    source = {"kind": "csv", "path": str(p.path), "md5": md5}
    return frame, p.target, source


def _is_numeric(series: pd.Series) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def infer_task(y: pd.Series) -> str:
    """Strings, booleans and few distinct integers are classes; other numbers regress."""
    import numpy as np

    if not _is_numeric(y):
        return "classification"
    values = y.to_numpy(dtype=float)
    if np.all(values == np.round(values)) and y.nunique() <= MAX_INFERRED_CLASSES:
        return "classification"
    return "regression"


def _match_label(wanted: Any, classes: list[Any]) -> Any:
    for c in classes:
        if c == wanted or str(c) == str(wanted):
            return c
    return None


def check_target(
    frame: pd.DataFrame, target: str, p: DataParams, where: str, spill: Spill | None = None
) -> tuple[pd.DataFrame, str, list[Any] | None, Any, int]:
    """Check the target; return (labelled rows, task, classes, positive class, n unlabelled).
    With ``spill``, the labelled rows' columns of numbers are spilled files."""
    import numpy as np

    if target not in frame.columns:
        shown = ", ".join(map(str, list(frame.columns)[:12]))
        more = ", ..." if frame.shape[1] > 12 else ""
        raise DataError(
            f"data.target: column {target!r} is not in {where}; its columns are: {shown}{more}"
        )
    missing = frame[target].isna()
    n_missing = int(missing.sum())
    if n_missing == len(frame):
        raise DataError(f"data.target: column {target!r} has no values in {where}")
    if n_missing:
        frame = take_rows(frame, [np.flatnonzero(~missing.to_numpy())], spill, consume=True)[0]
    y = frame[target]
    task = p.task or (BUNDLED[p.source][2] if p.source in BUNDLED else infer_task(y))
    if task == "regression":
        if not _is_numeric(y):
            example = next(v for v in y if not _is_number(v))
            raise DataError(
                f"data.target: column {target!r} is not numeric (for example {example!r}); "
                f"a regression target must be numbers: set data.task: classification "
                f"or pick another column"
            )
        return frame, task, None, None, n_missing
    classes = sorted({_py(v) for v in y.unique()}, key=lambda v: (str(type(v)), v))
    if len(classes) < 2:
        raise DataError(
            f"data.target: column {target!r} has only one class ({classes[0]!r}) in {where}; "
            f"classification needs at least two"
        )
    positive = _positive_class(p, classes, target)
    return frame, task, classes, positive, n_missing


def _is_number(v: Any) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def _positive_class(p: DataParams, classes: list[Any], target: str) -> Any:
    shown = ", ".join(repr(c) for c in classes[:10])
    if len(classes) > 2:
        if p.positive_class is not None:
            raise DataError(
                f"data.positive_class: applies to binary targets, but {target!r} has "
                f"{len(classes)} classes ({shown}); remove data.positive_class"
            )
        return None
    if p.positive_class is not None:
        match = _match_label(p.positive_class, classes)
        if match is None:
            raise DataError(
                f"data.positive_class: {p.positive_class!r} is not a label of {target!r}; "
                f"its labels are {shown}"
            )
        return match
    if p.source in BUNDLED and BUNDLED[p.source][3] is not None:
        return BUNDLED[p.source][3]
    for guess in (1, True):
        match = _match_label(guess, classes) if all(_is_number(c) for c in classes) else None
        if match is not None:
            return match
    raise DataError(
        f"data.positive_class: cannot tell which label of {target!r} is positive "
        f"({shown}); set data.positive_class to one of them"
    )


def split(
    frame: pd.DataFrame,
    target: str,
    task: str,
    p: SplitParams,
    consume: bool = False,
    spill: Spill | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded train/test split, stratified for classification; DataError if too small.
    ``consume`` deletes each of ``frame``'s columns once it is split, so the data is not
    in memory twice; use it for frames with a block per column (read_csv's). With ``spill``,
    the splits' columns of numbers are spilled files."""
    import numpy as np
    import pandas as pd

    n = len(frame)
    n_test = math.ceil(p.test_size * n)
    n_train = n - n_test
    rng = np.random.default_rng(p.seed)
    if task == "classification":
        codes, labels = pd.factorize(frame[target])
        counts = np.bincount(codes)
        k = len(counts)
        if counts.min() < 2 or n_test < k or n_train < k:
            rarest = labels[int(counts.argmin())]
            raise DataError(
                f"split.test_size: {n} rows are too few for a stratified split with "
                f"test_size {p.test_size} and {k} classes (class {_py(rarest)!r} has "
                f"{counts.min()} row(s)); add rows or change split.test_size"
            )
        test_rows = _stratified_test_rows(codes, counts, n_test, rng)
    else:
        if n_train < 2 or n_test < 1:
            raise DataError(
                f"split.test_size: {n} rows are too few to split with test_size {p.test_size}; "
                f"add rows or change split.test_size"
            )
        test_rows = np.zeros(n, dtype=bool)
        test_rows[rng.permutation(n)[:n_test]] = True
    # Rows keep their file order within each split (training shuffles where it needs to).
    train_idx, test_idx = np.flatnonzero(~test_rows), np.flatnonzero(test_rows)
    if not consume and spill is None:
        return (
            frame.take(train_idx).reset_index(drop=True),
            frame.take(test_idx).reset_index(drop=True),
        )
    train, test = take_rows(frame, [train_idx, test_idx], spill, consume=consume)
    return train, test


def take_rows(
    frame: pd.DataFrame,
    row_sets: list[np.ndarray],
    spill: Spill | None,
    consume: bool = False,
) -> list[pd.DataFrame]:
    """A frame of ``frame``'s rows for each of ``row_sets``, made a column at a time (each
    column taken for every set, then let go), each column of numbers a spilled file with
    ``spill``; ``consume`` deletes ``frame``'s columns as it goes, so the data is not in
    memory twice."""
    import pandas as pd

    # pandas deletes a column in time proportional to the frame's columns: consuming a very
    # wide frame column by column would take seconds (1,000 columns: 10 s), so it is kept
    # whole, and its data is in memory twice at the end.
    consume = consume and frame.shape[1] <= CONSUME_MAX_COLUMNS
    outs: list[dict[str, pd.Series]] = [{} for _ in row_sets]
    for name in list(frame.columns):
        col = frame[name]
        for out, rows in zip(outs, row_sets, strict=True):
            taken = col.take(rows).reset_index(drop=True)
            out[name] = taken if spill is None else spill.series(taken)
            del taken
        del col
        if consume:
            del frame[name]
    return [pd.DataFrame(out, copy=False) for out in outs]


CONSUME_MAX_COLUMNS = 256


def _stratified_test_rows(
    codes: np.ndarray, counts: np.ndarray, n_test: int, rng: np.random.Generator
) -> np.ndarray:
    """A mask of ``n_test`` rows whose class shares match the data's: each class gets the floor
    of its exact share, the rows left over go to the largest remainders, and within a class
    the rows are a seeded random choice. Written here because importing scikit-learn's
    train_test_split costs ~2 s per run, as much as splitting 10^6 rows."""
    import numpy as np

    exact = counts * (n_test / counts.sum())
    per_class = np.floor(exact).astype(np.int64)
    leftover = n_test - int(per_class.sum())
    per_class[np.argsort(-(exact - per_class), kind="stable")[:leftover]] += 1
    mask = np.zeros(len(codes), dtype=bool)
    order = np.argsort(codes, kind="stable")  # rows grouped by class, file order within
    start = 0
    for c, size in enumerate(counts):
        rows = order[start : start + size]
        mask[rng.choice(rows, per_class[c], replace=False)] = True
        start += size
    return mask


def column_roles(
    train: pd.DataFrame, target: str, max_categories: int, test: pd.DataFrame | None = None
) -> tuple[list[str], list[str], dict[str, str]]:
    """Decide on the training split which columns are numeric, categorical or dropped (and why).
    A column of numbers with a few stray words (in either split) is refused, not dropped."""
    import pandas as pd

    numeric: list[str] = []
    categorical: list[str] = []
    dropped: dict[str, str] = {}
    for name in train.columns:
        if name == target:
            continue
        col = train[name]
        if _is_numeric(col):  # min and max tell empty and constant apart without hashing
            lo, hi = col.min(), col.max()
            n_unique = 0 if pd.isna(lo) else (1 if lo == hi else 2)
        else:
            n_unique = col.nunique(dropna=True)
        if n_unique == 0:
            dropped[str(name)] = "all values missing"
        elif n_unique == 1:
            dropped[str(name)] = "constant (one distinct value)"
        elif _is_numeric(col) or pd.api.types.is_bool_dtype(col):
            numeric.append(str(name))
        elif pd.api.types.is_string_dtype(col) or pd.api.types.is_object_dtype(col):
            if n_unique <= max_categories:
                categorical.append(str(name))
            else:
                dropped[str(name)] = (
                    f"text with {n_unique} distinct values, more than "
                    f"data.max_categories={max_categories} (identifier-like or free text)"
                )
        else:
            dropped[str(name)] = f"unsupported type {col.dtype}"
    if not numeric and not categorical:
        raise DataError(
            f"data: no usable feature columns besides the target {target!r} "
            f"(dropped: {'; '.join(f'{k}: {v}' for k, v in dropped.items()) or 'none'})"
        )
    return numeric, categorical, dropped


# A text column whose values are at least this share numbers is numbers with stray words.
NUMBERS_SHARE = 0.95


def stray_text(frame: pd.DataFrame, target: str, policy: str) -> dict[str, int]:
    """Text cells in columns of numbers ("heavy" among body masses, "unknown"): with policy
    "stop", a DataError naming the column, the CSV lines and the values (dropping the column as
    free text would silently lose a feature); with "missing", they become missing values, and
    the count per column is returned. Runs on the frame as read, so index + 2 is the line."""
    import pandas as pd

    counts: dict[str, int] = {}
    for name in frame.columns:
        col = frame[name]
        if name == target or not (
            pd.api.types.is_object_dtype(col) or pd.api.types.is_string_dtype(col)
        ):
            continue
        present = col.dropna()
        if not len(present):
            continue
        words = present[pd.to_numeric(present, errors="coerce").isna().to_numpy()]
        if not len(words) or len(words) > (1 - NUMBERS_SHARE) * len(present):
            continue
        if policy == "stop":
            where = ", ".join(f"{str(v)[:40]!r} on line {int(i) + 2}" for i, v in words[:3].items())
            raise DataError(
                f"data: column {name!r} holds numbers but for {len(words)} value(s) "
                f"({where}{', ...' if len(words) > 3 else ''}); add them to data.na_values, "
                f"or set data.stray_text: missing to read them as missing"
            )
        frame[name] = pd.to_numeric(col, errors="coerce")
        counts[str(name)] = len(words)
    return counts


# The largest magnitude a value may have: float32's. scikit-learn's trees work in float32
# (a larger value is refused or becomes infinite there), and a square of anything larger
# overflows float64 (a linear model's normal equations, a regression target's errors).
MAX_MAGNITUDE = 3.4028234663852886e38


def big_integers_as_floats(frame: pd.DataFrame) -> None:
    """pandas reads a column of integers beyond 64 bits (``10**25``) as Python ints of
    dtype object, which would then be typed as text and cannot be written as Arrow: as
    float64, like any other number (the range check that follows sees them)."""
    for name in frame.columns:
        col = frame[name]
        if col.dtype == object:
            values = col.dropna()
            if len(values) and all(type(v) is int for v in values):
                frame[name] = col.astype("float64")


def out_of_range_values(frame: pd.DataFrame) -> None:
    """Numbers beyond ``MAX_MAGNITUDE``, and those a 64-bit float cannot hold at all ("1e999",
    "inf", read as infinite), which no model can fit or be scored on: a DataError naming the
    column and the CSV lines. Runs on the frame as read, so index + 2 is the line."""
    import numpy as np
    import pandas as pd

    for name in frame.columns:
        col = frame[name]
        if not pd.api.types.is_float_dtype(col):
            continue
        values = col.to_numpy()
        with np.errstate(invalid="ignore"):
            bad = np.abs(values) > MAX_MAGNITUDE  # NaN compares False: missing is fine
        if not bad.any():
            continue
        lines = [int(i) + 2 for i in col.index[bad][:3]]
        more = ", ..." if bad.sum() > 3 else ""
        if np.isinf(values[bad]).all():
            raise DataError(
                f"data: column {name!r} holds {int(bad.sum())} number(s) beyond a 64-bit "
                f"float's range (±1.8e308), read as infinite (line {', '.join(map(str, lines))}"
                f"{more}); correct them, or add their text to data.na_values to read them as "
                "missing"
            )
        raise DataError(
            f"data: column {name!r} holds {int(bad.sum())} number(s) beyond ±3.4e38 (line "
            f"{', '.join(map(str, lines))}{more}), where models overflow (scikit-learn's trees "
            "work in 32-bit floats); rescale the column (a log, other units) or correct them"
        )


def prepare(
    p: DataParams, s: SplitParams, root: Path = Path("."), spill: Spill | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, Schema]:
    """Load, check, split and type the data: everything prepare does but writing. With
    ``spill``, a CSV's columns of numbers are held in its files rather than in memory."""
    frame, target, source = load_source(p, root, spill)
    big_integers_as_floats(frame)
    stray = stray_text(frame, target, p.stray_text)
    out_of_range_values(frame)
    where = source.get("path") or f"the {source['kind']} dataset"
    frame, task, classes, positive, n_unlabelled = check_target(frame, target, p, where, spill)
    csv = source["kind"] == "csv"
    train, test = split(frame, target, task, s, consume=csv, spill=spill if csv else None)
    del frame
    numeric, categorical, dropped = column_roles(train, target, p.max_categories, test)
    keep = [*numeric, *categorical, target]
    schema = Schema(
        task=task,
        target=target,
        numeric=numeric,
        categorical=categorical,
        dropped=dropped,
        classes=classes,
        positive_class=positive,
        source=source,
        rows={"train": len(train), "test": len(test), "dropped_unlabelled": n_unlabelled},
        stray_as_missing=stray,
    )
    if keep == list(train.columns):  # selecting would copy every column for nothing
        return train, test, schema
    return train[keep], test[keep], schema


def write_prepared(frame: pd.DataFrame, path: Path) -> None:
    """One split as an uncompressed Arrow IPC file (``read_prepared`` maps it). Text columns
    are dictionary-encoded: a category repeated over a million rows is stored once (a 10^6-row
    split with text features was 78 MB plain, 28 MB so); ``Column`` decodes them."""
    import pyarrow as pa
    import pyarrow.feather as feather

    table = pa.Table.from_pandas(frame, preserve_index=False).combine_chunks()
    for i, col in enumerate(table.schema):
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            table = table.set_column(i, col.name, table.column(i).dictionary_encode())
    # One record batch: each column is then one run of the file that a reader can view (and
    # an IPC file allows one dictionary per column).
    feather.write_feather(table, path, compression="uncompressed", chunksize=max(1, table.num_rows))


_GIVEN = object()  # "not given": pandas' own defaults apply


# Arrow's types of numbers -> numpy's: a prepared column of these is read from its buffers.
_NUMBERS = {
    "double": "float64",
    "float": "float32",
    **{f"{u}int{b}": f"{u}int{b}" for u in ("", "u") for b in (8, 16, 32, 64)},
}


class Column:
    """One column of a prepared split, out of Arrow. ``to_numpy(dtype, na_value)`` reads
    numbers (NaN for missing) and labels as pandas' method would; any other use of the
    column (``dropna``, ``astype``: the text columns') goes to the pandas Series it then
    becomes, so a split of numbers never imports pandas. (pyarrow's own ``to_numpy`` and
    ``pyarrow.array`` import pandas, so numbers are read from the Arrow buffers, whose layout
    is the Arrow columnar format's.)"""

    def __init__(self, chunked, name: str | None = None) -> None:
        self._chunked, self._name = chunked, name
        self._series = None

    def __len__(self) -> int:
        return len(self._chunked)

    def _numbers(self, np_type: str) -> np.ndarray:
        """The values, a read-only view of the mapped file where nothing is missing; a float64
        copy with NaN for each missing value otherwise."""
        import numpy as np

        parts = []
        for arr in self._chunked.chunks:
            if not len(arr):
                continue
            validity, data = arr.buffers()
            width = np.dtype(np_type).itemsize
            x = np.frombuffer(data, dtype=np_type, count=len(arr), offset=arr.offset * width)
            if arr.null_count:
                bits = np.frombuffer(validity, np.uint8)
                present = np.unpackbits(bits, count=arr.offset + len(arr), bitorder="little")
                x = x.astype(np.float64)
                x[present[arr.offset :] == 0] = np.nan
            parts.append(x)
        if len(parts) == 1:
            return parts[0]
        return np.concatenate(parts) if parts else np.empty(0, np_type)

    def to_numpy(self, dtype=None, na_value=_GIVEN) -> np.ndarray:
        import numpy as np
        import pyarrow as pa

        t = str(self._chunked.type)
        kind = np.dtype(dtype).kind if dtype is not None else None
        nan = na_value is _GIVEN or (isinstance(na_value, float) and math.isnan(na_value))
        if kind == "f" and t in _NUMBERS and nan:  # the callers copy before they write
            return self._numbers(_NUMBERS[t]).astype(dtype, copy=False)
        if kind == "O" and na_value is _GIVEN and not self._chunked.null_count:  # labels
            if t in _NUMBERS:
                return self._numbers(_NUMBERS[t]).astype(object)
            value = self._chunked.type
            if pa.types.is_dictionary(value):
                value = value.value_type
            if pa.types.is_string(value) or pa.types.is_large_string(value):
                return np.array(self._chunked.to_pylist(), dtype=object)  # decoded
        given = {} if na_value is _GIVEN else {"na_value": na_value}
        return self._pandas().to_numpy(dtype=dtype, **given)

    def _pandas(self) -> pd.Series:
        if self._series is None:
            import pyarrow as pa

            chunked = self._chunked
            if pa.types.is_dictionary(chunked.type):  # text as it was written, not categorical
                chunked = chunked.cast(chunked.type.value_type)
            self._series = chunked.to_pandas()
            self._series.name = self._name  # as a DataFrame's column is named
        return self._series

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # never the Series' private parts (nor a copy's recursion)
            raise AttributeError(name)
        return getattr(self._pandas(), name)

    # Python looks operators up on the type, not through __getattr__.
    def __array__(self, dtype=None, copy=None):
        import numpy as np

        return np.asarray(self._pandas(), dtype=dtype)

    def __eq__(self, other):  # type: ignore[override]
        return self._pandas() == other

    def __ne__(self, other):  # type: ignore[override]
        return self._pandas() != other

    __hash__ = None  # type: ignore[assignment]


class Prepared:
    """A split written by prepare, mapped rather than read: ``len()``, ``columns`` and
    ``[name]`` (a ``Column``); ``to_pandas()`` for a whole DataFrame."""

    def __init__(self, table) -> None:
        self._table = table

    def __len__(self) -> int:
        return self._table.num_rows

    @property
    def columns(self) -> list[str]:
        return self._table.column_names

    def __getitem__(self, name: str) -> Column:
        return Column(self._table.column(name), name)

    def to_pandas(self) -> pd.DataFrame:
        """The whole split as pandas reads it, text columns as text (not categoricals)."""
        import pyarrow as pa

        table = self._table
        for i, col in enumerate(table.schema):
            if pa.types.is_dictionary(col.type):
                column = table.column(i).cast(col.type.value_type)
                table = table.set_column(i, col.name, column)
        return table.to_pandas(split_blocks=True)


def read_prepared(path: Path) -> Prepared:
    """A split written by prepare (``write_prepared``), mapped: its pages are the file's, and a
    column of numbers is read without a copy where nothing is missing."""
    import pyarrow as pa
    import pyarrow.feather as feather

    try:
        return Prepared(feather.read_table(path, memory_map=True))
    except (OSError, pa.ArrowInvalid) as exc:  # FileNotFoundError is an OSError
        why = "is missing" if isinstance(exc, FileNotFoundError) else "is not a split prepare wrote"
        raise DataError(
            f"{path} {why}; run the prepare stage again (`dvc repro prepare`, or `dvc checkout` "
            f"to restore it)"
        ) from None
