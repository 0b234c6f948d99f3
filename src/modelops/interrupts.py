"""Ctrl-C and SIGTERM: a command stops where it is, except in a short stretch that must finish.

An interrupt is a ``KeyboardInterrupt``; inside ``as_interrupt()`` SIGTERM is one too, so
that ``finally`` clauses (which remove temporary files) run for both. Inside ``deferred()``
(HEAD and the outputs moving together, a stage writing its outputs) both signals wait until
the block ends and are then raised as ``Finished``: the block completed, the command stops
after it. Commands turn either into one ``interrupted: ...`` line and exit 130.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Finished(KeyboardInterrupt):
    """An interrupt that waited for a ``deferred()`` block: the block's work is complete."""


def _main_thread() -> bool:
    # Python runs signal handlers, and lets them be set, only in the main thread.
    return threading.current_thread() is threading.main_thread()


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt inside the block (as Ctrl-C does), so cleanup runs."""
    if not _main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, then raise ``Finished`` if one came.

    Two guards, because either alone leaks: the signals are blocked in this thread, which
    child processes started in the block (git) inherit, so a Ctrl-C sent to the terminal's
    whole process group cannot kill them halfway; and Python's handlers only record the
    signal, because the kernel may deliver it to another thread (OpenBLAS, pyarrow, DVC's
    pools), whose handler would otherwise raise in this one at once. A signal that was
    ignored when the block began stays ignored."""
    if not _main_thread():
        yield
        return
    caught: list[int] = []
    ignored = {s for s in SIGNALS if signal.getsignal(s) is signal.SIG_IGN}

    def hold(signum, frame) -> None:
        if signum not in ignored:
            caught.append(signum)

    previous = {s: signal.signal(s, hold) for s in SIGNALS}
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        # Unblocking delivers what is pending, to ``hold`` (pthread_sigmask runs the
        # handlers before it returns), so nothing is lost between these two steps.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
        for s, handler in previous.items():
            signal.signal(s, handler)
    if caught:
        raise Finished


def stop_children(timeout: float = 60) -> None:
    """Send SIGTERM to the processes this one started (a pipeline stage, and what it runs;
    git is left alone) and wait until they are gone, so that none writes after the caller
    has put things back. A stage that gets SIGTERM writes all its outputs or none. Only
    where /proc lists children (Linux); elsewhere nothing is done."""
    me = os.getpid()
    pids = [p for p in _descendants(me) if _command(p) != "git"]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for pid in pids:
        while time.monotonic() < deadline and not _gone(pid):
            time.sleep(0.02)


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            for child in map(int, task.read_text().split()):
                found += [child, *_descendants(child)]
    return found


def _command(pid: int) -> str:
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except OSError:
        return ""
    return os.path.basename(argv0.decode(errors="replace"))


def _gone(pid: int) -> bool:
    """Exited: reaped here if it is a child, else no longer running (a zombie has exited)."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0]:
            return True
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return status.rpartition(")")[2].split()[0] in ("Z", "X")


def pause_for_test(point: str) -> None:
    """For tests only, not a user setting: with ``MODELOPS_TEST_PAUSE=<point>:<file>`` in
    the environment, create ``<file>`` on reaching ``point`` and wait (at most 30 s) until
    the test deletes it, so that the test can signal this process at a known place."""
    name, _, marker = os.environ.get("MODELOPS_TEST_PAUSE", "").partition(":")
    if name != point or not marker:
        return
    tmp = Path(f"{marker}.{os.getpid()}.tmp")
    tmp.write_text(str(os.getpid()))
    os.replace(tmp, marker)  # whole: a test that sees the marker reads the pid at once
    deadline = time.monotonic() + 30
    while os.path.exists(marker) and time.monotonic() < deadline:
        time.sleep(0.01)
