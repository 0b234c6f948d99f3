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


@functools.cache
def static_files() -> dict[str, bytes]:
    """The vendored chart scripts and their licences, each checked against the sha256 that
    static/VENDOR.json records (written by .ci/vendor_js.py); BundleError if one differs."""
    import hashlib
    import json
    from importlib.resources import files

    from modelops.errors import BundleError

    static = files("modelops.ui") / "static"
    record = json.loads((static / "VENDOR.json").read_text(encoding="utf-8"))
    out = {}
    for package in record.values():
        for name, sha256 in package["files"].items():
            data = (static / name).read_bytes()
            if hashlib.sha256(data).hexdigest() != sha256:
                raise BundleError(
                    f"modelops/ui/static/{name}: its sha256 is not the one VENDOR.json records; "
                    f"reinstall modelops (or run `make vendor-js`)"
                )
            out[name] = data
    return out


def page(template: str, *, base: str, **context: Any) -> str:
    """Render ``template``; ``base`` is the prefix links take ("/" served, "../" exported)."""
    return _env().get_template(template).render(base=base, **context)


def version_file(name: str, version: str) -> str:
    """The page of a version, relative to the site's root (the same served and exported)."""
    return f"versions/{name}@{version}.html"
