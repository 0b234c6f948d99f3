"""HTML from the page dicts: Jinja2 templates shipped in the package, autoescaped.

Every value on a page is someone's input (tag messages, reasons, params, feature names), so
escaping is the environment's default, never a template's choice; ``StrictUndefined`` turns
a misspelt field into an error instead of an empty cell."""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def _env():
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(
        loader=PackageLoader("modelops.ui", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = lambda v: f"{v:.4g}" if isinstance(v, int | float) else "–"
    return env


def page(template: str, *, base: str, **context: Any) -> str:
    """Render ``template``; ``base`` is the prefix links take ("/" served, "../" exported)."""
    return _env().get_template(template).render(base=base, **context)


def version_file(name: str, version: str) -> str:
    """The page of a version, relative to the site's root (the same served and exported)."""
    return f"versions/{name}@{version}.html"
