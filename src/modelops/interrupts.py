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


def pause_for_test(point: str) -> None:
    """For tests only, not a user setting: with ``MODELOPS_TEST_PAUSE=<point>:<file>`` in
    the environment, create ``<file>`` on reaching ``point`` and wait (at most 30 s) until
    the test deletes it, so that the test can signal this process at a known place."""
    name, _, marker = os.environ.get("MODELOPS_TEST_PAUSE", "").partition(":")
    if name != point or not marker:
        return
    Path(marker).write_text(str(os.getpid()))
    deadline = time.monotonic() + 30
    while os.path.exists(marker) and time.monotonic() < deadline:
        time.sleep(0.01)
