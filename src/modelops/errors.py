"""One exception hierarchy: every message says what was wrong and what to do.

Commands catch ``ModelopsError`` in one place (``modelops.stages.run`` and
``modelops.cli.main``), print ``error: <message>`` as a single line on stderr
and exit with its family's code. Anything else is a bug: the CLI prints its
traceback and exits 70.

Exit codes, one per family (the README's "Exit codes" table is this one):

==== =====================================================================
0    done; ``monitor``: ok or warn; ``verify``: identical
1    a verdict, never an error: ``monitor``: alert; ``verify``: the outputs differ
2    usage: the command line (``UsageError``, and argparse's own)
3    params: params.yaml (``ParamsError``)
4    data: an input CSV, batch or request's data (``DataError``)
5    bundle and integrity: bytes missing, malformed or not matching their record
     (``BundleError``; ``InputError``: what ``verify`` cannot check)
6    registry: a registry operation refused (``RegistryError``, ``TagExists``)
7    workspace: the checkout's state, git or DVC (``WorkspaceError``)
8    remote: the DVC or git remote (``RemoteError``)
70   a bug in modelops (the traceback is printed; sysexits.h's EX_SOFTWARE)
130  interrupted: Ctrl-C or SIGTERM (``Interrupted``, printed as ``interrupted: ...``)
==== =====================================================================

Splitting 1 from every error lets a CI job tell "retrain" (monitor's alert) from
"misconfigured".
"""

from __future__ import annotations

MAX_MESSAGE = 2000  # characters of one error line


class ModelopsError(Exception):
    """A user-facing failure; the message is one line that names the culprit. Raise one of
    the families below; the base class exits as a workspace error."""

    exit_code = 7

    def __init__(self, message: str) -> None:
        # Collapse newlines so the "one line" promise holds even for messages
        # that quote multi-line text from libraries, and cut what quotes a 20 MB cell.
        text = " ".join(str(message).split())
        if len(text) > MAX_MESSAGE:
            text = f"{text[:MAX_MESSAGE]}... (cut at {MAX_MESSAGE:,} characters)"
        super().__init__(text)


class UsageError(ModelopsError):
    """The command line itself is wrong (exit 2, like argparse)."""

    exit_code = 2


class ParamsError(ModelopsError):
    """params.yaml has an unknown key, a wrong type or a value out of range."""

    exit_code = 3


class DataError(ModelopsError):
    """The input data cannot be used: missing column, empty file, one class, ..."""

    exit_code = 4


class BatchError(DataError):
    """monitor: a batch that cannot be checked (a data error, distinct from 1 for an alert)."""


class BundleError(ModelopsError):
    """A model bundle is missing, corrupt, or does not match its recorded hash."""

    exit_code = 5


class RegistryError(ModelopsError):
    """A registry operation is not allowed: bad name, unknown version or stage, gate failed."""

    exit_code = 6


class TagExists(RegistryError):
    """A git tag of that name is already there (another writer took it, or it was made before).

    Raised from a check on the ref itself, never from git's wording, so the registry can
    retry with a fresh name."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        super().__init__(f"tag {tag} already exists")


class WorkspaceError(ModelopsError):
    """The checkout is not in a state that allows the operation (dirty tree, stale pipeline)."""

    exit_code = 7


class RemoteError(ModelopsError):
    """The DVC remote or the git remote: none configured, unreachable, refused credentials,
    a push or pull that failed."""

    exit_code = 8


class InputError(ModelopsError):
    """verify: an input cannot be reached, or its bytes do not match their record.

    Distinct from a reproduction that differs (exit 1): nothing was re-run, so
    nothing can be said about the version yet. Exits as the integrity family.
    """

    exit_code = 5

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(message)


class Interrupted(ModelopsError):
    """Ctrl-C or SIGTERM stopped a command; the message says what state it left (exit 130,
    as a shell reports a process stopped by SIGINT)."""

    exit_code = 130


BUG_EXIT = 70  # an exception that is not a ModelopsError: a bug, shown with its traceback
