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
    env.globals.update(version_file=version_file, compare_file=compare_file)
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


def page(template: str, *, base: str, actions: Any = None, **context: Any) -> str:
    """Render ``template``; ``base`` is the prefix links take ("/" served, "../" exported);
    ``actions`` (served with --allow-actions only) holds the CSRF token and the stages."""
    return _env().get_template(template).render(base=base, actions=actions, **context)


# A model's name may hold "/" (GTO's "dir/name"); in a file name it becomes "~", which no
# name or version holds, so every page is one file in one folder, served and exported alike.
def slug(ref: str) -> str:
    return ref.replace("/", "~")


def unslug(part: str) -> str:
    return part.replace("~", "/")


def version_file(name: str, version: str) -> str:
    """The page of a version, relative to the site's root (the same served and exported)."""
    return f"versions/{slug(name)}@{version}.html"


def compare_file(a: str, b: str) -> str:
    """The page comparing ``b`` (new) with ``a`` (old): NAME@vX.Y.Z, experiment names or
    commits, joined by "..." (which no git ref name holds)."""
    return f"compare/{slug(a)}...{slug(b)}.html"
