"""The prediction log: what the served model was asked and answered, and the ground truth
that came back for it.

- ``RequestIds`` issues an id per answered record, signed with a secret kept in the log
  directory, so any worker (and any later server) can tell an id it issued from one it did
  not, and read the version that answered from it.
- ``PredictionLog`` writes answered requests to Parquet off the request path: requests go
  into a bounded queue (a full queue drops and counts them, never blocks an answer); one
  thread per worker writes them to a hidden file that is renamed into place once complete
  (rotated by size, age and when the version changes), so a killed server never leaves a
  torn file for a reader.
- ``Feedback`` stores labels in SQLite beside the log: one transaction per request, the first
  label of an id stands, any worker can write.
- ``read`` gives the logged records (and their labels) back as frames for monitoring and
  export.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import math
import os
import queue
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.errors import BatchError, UsageError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import numpy as np

    from modelops.inference import Outputs
    from modelops.params import LogParams

log = logging.getLogger("modelops.serving")

SECRET_FILE = ".request-id-secret"
FEEDBACK_FILE = "feedback.sqlite"
SEP = "~"  # in no version (SemVer) and no hex


# -- request ids ------------------------------------------------------------------------------
class RequestIds:
    """``<version>~<random>~<signature>``: verifiable by anyone holding the log's secret."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    @classmethod
    def of(cls, directory: Path) -> RequestIds:
        """The directory's secret, made on first use (exclusively: one of several workers
        starting together writes it, the others read it)."""
        path = directory / SECRET_FILE
        directory.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            for _ in range(50):  # the writer may not have written it yet
                data = path.read_bytes()
                if len(data) == 32:
                    return cls(data)
                time.sleep(0.01)
            raise UsageError(
                f"{path}: not a request-id secret; delete it to make a new one"
            ) from None
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
        return cls(path.read_bytes())

    def _sign(self, body: str) -> str:
        # BLAKE2b in keyed mode is a MAC by design (RFC 7693), and a third of HMAC-SHA256's
        # cost here: ids are made for every answered record
        return hashlib.blake2b(body.encode(), key=self.secret, digest_size=16).hexdigest()

    def issue(self, version: str, n: int) -> list[str]:
        """``n`` ids: a random part per request, a counter per record, each signed."""
        base = f"{version}{SEP}{secrets.token_hex(8)}"
        bodies = [f"{base}{i:04x}" for i in range(n)]
        return [f"{b}{SEP}{self._sign(b)}" for b in bodies]

    def version_of(self, rid: Any) -> str | None:
        """The version an id was issued for, or None if this log did not issue it."""
        if not isinstance(rid, str) or len(rid) > 200 or not rid.isascii() or rid.count(SEP) != 2:
            return None
        body, _, sig = rid.rpartition(SEP)
        if not hmac.compare_digest(sig.encode(), self._sign(body).encode()):
            return None
        return body.partition(SEP)[0]


# -- the log ----------------------------------------------------------------------------------
@dataclass
class Answered:
    """One answered request, as the writer needs it."""

    ids: list[str]
    time: float
    version: str
    names: tuple[list[str], list[str]]  # the version's numeric and categorical inputs
    numeric: np.ndarray  # (n, k) float64, NaN = missing
    categorical: list[np.ndarray]  # object arrays, None = missing
    outputs: Outputs


@dataclass
class Stats:
    # per worker: /v1/model answers from whichever worker took the request
    pid: int = field(default_factory=os.getpid)
    taken: int = 0  # records put on the queue to be written
    written: int = 0  # records in published files
    dropped: int = 0  # records not logged (queue full, or logging stopped)
    files: int = 0
    error: str | None = None  # set when logging stopped

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class PredictionLog:
    """One per worker process: ``submit`` from requests, a thread writes."""

    directory: Path
    settings: LogParams
    stats: Stats = field(default_factory=Stats)
    _queue: queue.Queue = field(init=False)
    _thread: threading.Thread | None = None
    _seq: int = 0

    def __post_init__(self) -> None:
        self._queue = queue.Queue(self.settings.queue)

    def start(self) -> PredictionLog:
        self.directory.mkdir(parents=True, exist_ok=True)
        _remove_orphans(self.directory)
        self._thread = threading.Thread(target=self._run, name="modelops-log", daemon=True)
        self._thread.start()
        return self

    def submit(self, item: Answered) -> None:
        """Never blocks: a full queue (or a stopped log) drops the request and counts it."""
        if self.stats.error is not None:
            self.stats.dropped += len(item.ids)
            return
        try:
            self._queue.put_nowait(item)
            self.stats.taken += len(item.ids)
        except queue.Full:
            self.stats.dropped += len(item.ids)

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued and publish the open file (SIGTERM's path)."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout)
        self._thread = None
        s = self.stats
        log.info(
            "prediction log: %d record(s) written in %d file(s), %d dropped%s",
            s.written,
            s.files,
            s.dropped,
            f"; {s.error}" if s.error else "",
        )

    # -- the writer thread -----------------------------------------------------------------
    def _run(self) -> None:
        writer: _File | None = None
        while True:
            batch = self._take()
            items = [b for b in batch if b is not None]  # not yet in a file, below
            try:
                if writer is not None and writer.due(self.settings):  # even with no traffic
                    self._publish(writer)
                    writer = None
                for group in _by_version(items):
                    if writer is not None and writer.due(self.settings, group[0].version):
                        self._publish(writer)
                        writer = None
                    if writer is None:
                        writer = self._open(group[0])
                    writer.append(group, self.settings.exclude)
                    items = items[len(group) :]
                if batch and batch[-1] is None:  # close(): publish and stop
                    if writer is not None:
                        self._publish(writer)
                    return
            except Exception as exc:  # a full disk, a vanished directory: answering goes on
                self._stop(exc, writer, items)
                return

    def _take(self) -> list[Answered | None]:
        """What is queued, in one batch (up to 1,000 requests): one Parquet write for many
        requests, and the writer thread wakes less often beside the requests it serves.
        Empty after a second without any (a tick, to publish an old file)."""
        try:
            first = self._queue.get(timeout=1.0)
        except queue.Empty:
            return []
        if first is None:
            return [None]
        if self._queue.qsize() < self.settings.queue // 4:
            time.sleep(0.25)  # let a burst gather: fewer, larger writes beside the requests
        out: list[Answered | None] = [first]
        while len(out) < 1000:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                break
            if out[-1] is None:
                break
        return out

    def _open(self, item: Answered) -> _File:
        self._seq += 1
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(item.time))
        name = f"{stamp}-{os.getpid()}-{self._seq:05d}.parquet"
        return _File(self.directory / name, item.version)

    def _publish(self, writer: _File) -> None:
        writer.finish()
        self.stats.written += writer.rows
        self.stats.files += 1

    def _stop(self, exc: Exception, writer: _File | None, items: list[Answered]) -> None:
        why = f"{type(exc).__name__}: {exc}"
        self.stats.error = f"prediction log stopped: {why}"
        log.error(
            "%s; answering goes on without it (serving.log.dir %s)",
            self.stats.error,
            self.directory,
        )
        # the open file's records, the rest of the batch and what is queued are not written
        lost = (writer.rows if writer is not None else 0) + sum(len(i.ids) for i in items)
        if writer is not None:
            writer.discard()
        while True:
            try:
                queued = self._queue.get_nowait()
            except queue.Empty:
                break
            lost += len(queued.ids) if queued else 0
        self.stats.dropped += lost


def _remove_orphans(directory: Path) -> None:
    """Hidden files of killed servers (their process is gone): records never published, and
    inputs that should not linger."""
    for tmp in directory.glob(".*.parquet.tmp"):
        pid = tmp.name.split("-")[1] if tmp.name.count("-") >= 2 else ""
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            with contextlib.suppress(OSError):
                tmp.unlink()


def _by_version(items: list[Answered]) -> list[list[Answered]]:
    """Consecutive runs of one version (a file holds one version's columns)."""
    groups: list[list[Answered]] = []
    for item in items:
        if groups and groups[-1][0].version == item.version:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


class _File:
    """One Parquet file being written under a hidden name; ``finish`` renames it into place."""

    def __init__(self, path: Path, version: str) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp")
        self.version = version
        self.opened = time.monotonic()
        self.rows = 0
        self._writer = None
        self._sink = None

    def due(self, settings: LogParams, version: str | None = None) -> bool:
        if version is not None and version != self.version:
            return True  # one version per file: its columns are that version's
        if time.monotonic() - self.opened >= settings.rotate_seconds:
            return True
        return self._sink is not None and self._sink.tell() >= settings.rotate_mb * 1e6

    def append(self, items: list[Answered], exclude: list[str]) -> None:
        import pyarrow.parquet as pq

        table = _table(items, exclude)
        if self._writer is None:
            self._sink = open(self.tmp, "wb")  # noqa: SIM115 (closed in finish/discard)
            self._writer = pq.ParquetWriter(
                self._sink, table.schema, compression="snappy", write_statistics=True
            )
        self._writer.write_table(table, row_group_size=max(len(table), 1))
        self.rows += table.num_rows
        if os.fstat(self._sink.fileno()).st_nlink == 0:  # deleted (or its directory) meanwhile
            raise OSError(f"{self.tmp} was deleted while being written")

    def finish(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._sink.flush()
        os.fsync(self._sink.fileno())
        self._sink.close()
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        with contextlib.suppress(Exception):
            if self._writer is not None:
                self._writer.close()
            if self._sink is not None:
                self._sink.close()
        with contextlib.suppress(OSError):
            self.tmp.unlink()


def _table(items: list[Answered], exclude: list[str]):
    """Requests of one version as Arrow columns: id, time, version, the inputs (less
    ``exclude``), the prediction and, for a classifier, one probability column per class."""
    import numpy as np
    import pyarrow as pa

    numeric, categorical = items[0].names
    sizes = [len(i.ids) for i in items]
    n = sum(sizes)
    times = np.repeat([int(i.time * 1e6) for i in items], sizes)
    cols: dict[str, Any] = {
        "request_id": pa.array([r for i in items for r in i.ids], pa.string()),
        "time": pa.array(times, pa.timestamp("us", tz="UTC")),
        "version": pa.array([items[0].version] * n, pa.string()),
    }
    matrix = np.concatenate([i.numeric for i in items]) if n else np.empty((0, len(numeric)))
    for j, name in enumerate(numeric):
        if name not in exclude:
            cols[f"input.{name}"] = pa.array(matrix[:, j], pa.float64(), from_pandas=True)
    for j, name in enumerate(categorical):
        if name not in exclude:
            values = np.concatenate([i.categorical[j] for i in items])
            cols[f"input.{name}"] = pa.array(values, pa.string())
    first = items[0].outputs
    if first.task == "regression":
        values = np.concatenate([i.outputs.values for i in items])
        cols["output.prediction"] = pa.array(values, pa.float64())
    else:  # the columns Outputs.to_columns gives, made once for the whole batch
        proba = np.concatenate([i.outputs.proba for i in items])
        labels = np.asarray(list(map(str, first.classes)), dtype=object)
        cols["output.prediction"] = pa.array(labels[proba.argmax(axis=1)], pa.string())
        for k, label in enumerate(first.classes):
            cols[f"output.proba_{label}"] = pa.array(proba[:, k], pa.float64())
    return pa.table(cols)


# -- feedback ---------------------------------------------------------------------------------
class FeedbackError(Exception):
    def __init__(self, status: int, error: str, message: str, record: int | None = None):
        super().__init__(message)
        self.status, self.error, self.record = status, error, record


class StoreError(BatchError):
    """The feedback store cannot be read or written (a full disk, a locked or broken file)."""


class Feedback:
    """Labels by request id in ``feedback.sqlite`` beside the log (SQLite's own locking lets
    every worker write; one transaction per request)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / FEEDBACK_FILE

    @contextlib.contextmanager
    def _db(self) -> Iterator[Any]:
        import sqlite3

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{self.path}: {exc}") from None
        try:
            db.execute(
                "CREATE TABLE IF NOT EXISTS feedback (request_id TEXT PRIMARY KEY, "
                "version TEXT NOT NULL, label TEXT NOT NULL, time REAL NOT NULL)"
            )
            yield db
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from None
        finally:
            db.close()

    def add(self, rows: list[tuple[str, str, Any]]) -> None:
        """Store (request id, version, label) rows, all or none: an id that already has a
        label refuses the request (409 naming the record); the first label stands."""
        now = time.time()
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                for i, (rid, _, _) in enumerate(rows):
                    if db.execute("SELECT 1 FROM feedback WHERE request_id = ?", (rid,)).fetchone():
                        raise FeedbackError(
                            409,
                            "duplicate_feedback",
                            f"record {i}: request {rid} already has feedback; the first label "
                            f"stands",
                            i,
                        )
                db.executemany(
                    "INSERT INTO feedback VALUES (?, ?, ?, ?)",
                    [(rid, version, json.dumps(label), now) for rid, version, label in rows],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def labels(self) -> dict[str, Any]:
        """Every stored label by request id."""
        if not self.path.exists():
            return {}
        with self._db() as db:
            try:
                rows = db.execute("SELECT request_id, label FROM feedback").fetchall()
                return {rid: json.loads(label) for rid, label in rows}
            except (ValueError, TypeError) as exc:
                raise StoreError(f"{self.path}: not modelops' feedback ({exc})") from None


@dataclass(frozen=True)
class Rules:
    """What a label must be for one version's model."""

    task: str
    classes: tuple[str, ...]
    target: str


def check_labels(body: Any, ids: RequestIds, rules_of: Callable[[str], Rules | None]):
    """The feedback body as (id, version, label) rows; FeedbackError naming the first record
    that is not an object, has an id this log never issued, repeats an id, or a label the
    model of that version never saw (or, for regression, not a finite number)."""
    if not isinstance(body, list) or not body:
        raise FeedbackError(
            422, "not_a_list", 'send a non-empty JSON list of {"request_id": ..., "label": ...}'
        )
    rows, seen = [], set()
    for i, rec in enumerate(body):
        if not isinstance(rec, dict) or set(rec) != {"request_id", "label"}:
            shape = '{"request_id": ..., "label": ...}'
            raise FeedbackError(422, "bad_record", f"record {i} must be {shape}", i)
        rid, label = rec["request_id"], rec["label"]
        version = ids.version_of(rid)
        if version is None:
            raise FeedbackError(
                422, "unknown_request_id", f"record {i}: {str(rid)[:80]!r} was not issued here", i
            )
        if rid in seen:
            raise FeedbackError(
                409,
                "duplicate_feedback",
                f"record {i}: request {rid} appears twice in this request; the first label stands",
                i,
            )
        seen.add(rid)
        rules = rules_of(version)
        if rules is None:
            raise FeedbackError(
                422, "unknown_version", f"record {i}: {version} is not a registered version", i
            )
        if rules.task == "classification":
            # a bool only for a model whose classes are bools (True is 1 to Python)
            boolean = set(rules.classes) == {"False", "True"}
            wrong_type = not isinstance(label, str | int | float)
            if wrong_type or (isinstance(label, bool) and not boolean):
                label = None
            if label is None or str(label) not in rules.classes:
                raise FeedbackError(
                    422,
                    "unknown_label",
                    f"record {i}: label {_shown(rec['label'])} is not one of {version}'s "
                    f"labels: {', '.join(rules.classes)}",
                    i,
                )
            label = str(label)
        else:
            label = _number(label)
            if label is None:
                raise FeedbackError(
                    422,
                    "not_finite",
                    f"record {i}: label must be a number of magnitude below {MAX_LABEL:g} "
                    f"(the target {rules.target!r})",
                    i,
                )
        rows.append((rid, version, label))
    return rows


MAX_LABEL = 1e150  # beyond it a squared error overflows, and the live metric is not a number


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        value = float(value)
    except OverflowError:  # a 400-digit integer
        return None
    return value if math.isfinite(value) and abs(value) < MAX_LABEL else None


def _shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True)[:80]


# -- reading it back --------------------------------------------------------------------------
def files(directory: Path) -> list[Path]:
    """The published log files, oldest first (hidden files are being written)."""
    return sorted(p for p in directory.glob("*.parquet") if not p.name.startswith("."))


def last_version(path: Path) -> str | None:
    """The version that wrote a log file (None for an empty one)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        found = pq.ParquetFile(path)
        if found.metadata.num_rows == 0:
            return None
        return found.read_row_group(0, columns=["version"]).column("version")[0].as_py()
    except (pa.ArrowException, OSError, KeyError) as exc:
        raise BatchError(
            f"log {path}: not a file of the prediction log ({str(exc).splitlines()[0][:120]}); "
            f"move it out of serving.log.dir"
        ) from None


def tables(
    paths: list[Path], version: str, since: float | None, columns: list[str], ids: bool = True
):
    """(file, Arrow table) of ``version``'s logged records from ``since`` (a unix time): the
    request ids (unless ``ids`` is false: a million of them are a tenth of the read), the
    inputs named in ``columns`` and the outputs, read column by column (the version is read
    first, from one row group). UsageError when the log does not hold an input
    (``serving.log.exclude``)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    for path in paths:
        try:
            found = pq.ParquetFile(path)
            if found.metadata.num_rows == 0:
                continue
            first = found.read_row_group(0, columns=["version"]).column("version")
        except (pa.ArrowException, OSError, KeyError) as exc:
            raise BatchError(
                f"log {path}: not a file of the prediction log ({str(exc).splitlines()[0][:120]}); "
                f"move it out of serving.log.dir"
            ) from None
        if first[0].as_py() != version:
            continue
        names = found.schema_arrow.names
        wanted = ["request_id"] if ids else []
        wanted += ["time"] if since is not None else []
        wanted += [f"input.{c}" for c in columns if f"input.{c}" in names]
        wanted += [n for n in names if n.startswith("output.")]
        try:
            table = pq.read_table(path, columns=wanted)  # threaded, unlike found.read
        except (pa.ArrowException, OSError) as exc:
            raise BatchError(
                f"log {path}: cannot be read ({str(exc).splitlines()[0][:120]}); move it out "
                f"of serving.log.dir"
            ) from None
        if since is not None:
            start = pa.scalar(int(since * 1e6), pa.timestamp("us", tz="UTC"))
            table = table.filter(pc.greater_equal(table.column("time"), start))
        if not table.num_rows:
            continue
        absent = [c for c in columns if f"input.{c}" not in names]
        if absent:  # written while serving.log.exclude named an input
            raise BatchError(
                f"log {path}: has no column {absent[0]!r} (serving.log.exclude named it); "
                f"narrow --since past it, or move the file out of serving.log.dir"
            )
        yield path, table


def read(paths: list[Path], version: str, since: float | None, columns: list[str]):
    """The same records as frames of ``request_id`` and the inputs under their own names."""
    for _, table in tables(paths, version, since, columns):
        frame = table.select(["request_id", *[f"input.{c}" for c in columns]]).to_pandas()
        frame.columns = ["request_id", *columns]
        yield frame
