"""Atomic writes and hashing: an output is either complete or absent, never half-written."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    import zipfile

DIR_SUFFIX = ".dir"  # DVC's mark on a directory's md5


def md5_bytes(data: bytes) -> str:
    """md5 of bytes, as DVC records it in dvc.lock."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def md5_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """md5 of a file, streamed."""
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def scratch_array(shape: tuple[int, ...], dtype: Any, folder: Path) -> Any:
    """A zeroed numpy array whose pages are a file's in ``folder``, not the process's own
    memory: the kernel writes them out and drops them under pressure, so an array larger than
    the memory left can be filled. The file is unlinked at once (nothing is left behind, even
    by a killed process), and its blocks are allocated first, so a full disk is an OSError
    (ENOSPC) here rather than a SIGBUS when a page is first written."""
    import mmap

    import numpy as np

    dtype = np.dtype(dtype)
    count = int(np.prod(shape))
    nbytes = max(1, count * dtype.itemsize)
    # The folder's nearest existing ancestor if it is not there yet: no empty folder is left.
    folder = next(d for d in (folder, *folder.parents) if d.is_dir())
    fd, name = tempfile.mkstemp(prefix=".scratch-", dir=folder)
    try:
        os.unlink(name)
        try:
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(fd, 0, nbytes)
            else:  # macOS: writing zeros allocates the blocks as well
                block = bytes(min(nbytes, 1 << 24))
                for start in range(0, nbytes, len(block)):
                    os.write(fd, block[: nbytes - start])
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, f"a scratch file in {folder}") from None
        buffer = mmap.mmap(fd, nbytes)
    finally:
        os.close(fd)
    return np.frombuffer(buffer, dtype=dtype, count=count).reshape(shape)


def umask() -> int:
    """The process's umask. Linux shows it in /proc; elsewhere reading it means setting it
    and back, which a thread creating a file at that instant would see."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def copy_md5(src: BinaryIO, *sinks: BinaryIO, chunk: int = 1 << 20) -> str:
    """md5 of a stream's bytes, computed in the same pass that writes them to ``sinks``."""
    h = hashlib.md5(usedforsecurity=False)
    while block := src.read(chunk):
        h.update(block)
        for sink in sinks:
            sink.write(block)
    return h.hexdigest()


def remove_path(path: Path) -> None:
    """Remove a file, a symlink (not what it points to) or a directory tree, if there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def multipart_etag(path: str | Path, part_size: int) -> str:
    """The ETag S3 gives an object uploaded in parts of ``part_size`` bytes: the md5 of
    the parts' md5 digests, then ``-`` and the number of parts."""
    digests = []
    with open(path, "rb") as f:
        while part := f.read(part_size):
            digests.append(hashlib.md5(part, usedforsecurity=False).digest())
    return f"{md5_bytes(b''.join(digests))}-{len(digests)}"


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write bytes atomically: temp file in the same directory, fsync, rename. The file gets
    the mode an ordinary write would (0666 less the umask), not mkstemp's 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def dumps_json(obj: Any) -> str:
    """Stable JSON: sorted keys where order does not matter is the caller's choice."""
    return json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_json(path: str | Path, obj: Any) -> None:
    """Write JSON atomically."""
    write_bytes(path, dumps_json(obj).encode("utf-8"))


def write_text(path: str | Path, text: str) -> None:
    """Write text atomically."""
    write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temp directory that replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~umask())  # as mkdir would make it, not mkdtemp's 0700
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def manifest_md5(entries: list[dict[str, str]]) -> str:
    """A directory's md5 as DVC records it: the md5 of its sorted (relpath, md5) list."""
    rows = sorted(({"md5": e["md5"], "relpath": e["relpath"]} for e in entries), key=_relpath)
    return hashlib.md5(json.dumps(rows, sort_keys=True).encode()).hexdigest() + DIR_SUFFIX


def _relpath(entry: dict[str, str]) -> str:
    return entry["relpath"]


def npy_header(f: Any, info: zipfile.ZipInfo) -> tuple[tuple[int, ...], bool, Any, int]:
    """(shape, fortran order, dtype, data bytes) of the ``.npy`` member ``info`` opened as
    ``f``, left at the start of its data; ValueError unless the header's shape and dtype
    account for exactly the bytes the member holds (so nothing is allocated for a claim)."""
    import numpy as np

    fmt = np.lib.format
    readers = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}
    read = readers.get(fmt.read_magic(f))
    if read is None:
        raise ValueError(f"{info.filename[:80]} has an unknown .npy version")
    shape, fortran, dtype = read(f)
    size = 1
    for dim in shape:
        size *= dim  # Python ints: a claim of 10^13 elements does not overflow
    expected = size * dtype.itemsize
    held = info.file_size - f.tell()
    if not dtype.hasobject and expected != held:
        raise ValueError(
            f"{info.filename[:80]} claims shape {shape} of {dtype} ({expected:,} bytes) "
            f"in {held:,} bytes"
        )
    return shape, fortran, dtype, expected
