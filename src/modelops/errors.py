"""One exception hierarchy: every message says what was wrong and what to do.

Commands catch ``ModelopsError`` in one place (``modelops.stages._run`` and
``modelops.cli.main``), print ``error: <message>`` as a single line on stderr
and exit with ``exit_code``. Anything else is a bug and keeps its traceback.

Exit codes (README, "Exit codes"): 0 success; 1 a refused or failed operation
(every error below unless it says otherwise), and for ``verify`` "the outputs
differ" (a verdict, not an error); 2 a usage error, or for ``verify`` an input it
cannot reach or whose bytes do not match their record (``InputError``).
"""

from __future__ import annotations

MAX_MESSAGE = 2000  # characters of one error line


class ModelopsError(Exception):
    """A user-facing failure; the message is one line that names the culprit."""

    exit_code = 1

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


class DataError(ModelopsError):
    """The input data cannot be used: missing column, empty file, one class, ..."""


class BundleError(ModelopsError):
    """A model bundle is missing, corrupt, or does not match its recorded hash."""


class RegistryError(ModelopsError):
    """A registry operation is not allowed: bad name, unknown version or stage, gate failed."""


class TagExists(RegistryError):
    """A git tag of that name is already there (another writer took it, or it was made before).

    Raised from a check on the ref itself, never from git's wording, so the registry can
    retry with a fresh name."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        super().__init__(f"tag {tag} already exists")


class WorkspaceError(ModelopsError):
    """The checkout is not in a state that allows the operation (dirty tree, stale pipeline)."""


class InputError(ModelopsError):
    """verify: an input cannot be reached, or its bytes do not match their record (exit 2).

    Distinct from a reproduction that differs (exit 1): nothing was re-run, so
    nothing can be said about the version yet.
    """

    exit_code = 2

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(message)
