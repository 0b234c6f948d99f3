"""What commands print: terminal-safe text, aligned tables, ``--json`` or text."""

from __future__ import annotations

import argparse
import json
from typing import Any


def safe(value: Any) -> str:
    """Text a terminal shows as it is: tag authors and messages come from anyone who can
    push a tag, so control characters (escape sequences, newlines, bidi overrides) print
    escaped, as ``\\x1b`` or ``\\u202e``."""
    import unicodedata

    return "".join(
        ch if unicodedata.category(ch)[0] != "C" else ascii(ch)[1:-1] for ch in str(value)
    )


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """Left-aligned columns, two spaces apart, a header line first; cells pass through
    ``safe``."""
    cells = [[safe(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(columns), *(line(r) for r in cells)]).rstrip()


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    """``data`` as JSON with ``--json``, else ``text``."""
    print(json.dumps(data, indent=2) if getattr(args, "json", False) else text)
