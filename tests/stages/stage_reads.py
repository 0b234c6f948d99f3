"""Run one DVC stage in-process on several workdirs; report the params keys it read and
the modelops modules it loaded, as JSON on stdout.

Usage: python tests/stages/stage_reads.py SPEC.json, where SPEC is
``{"stage": "train", "runs": [{"cwd": "...", "argv": [...]}, ...]}``.

A separate process per stage, so the modules a stage loads are its own and the
recording wrapper around ``modelops.params.load`` never leaks into the test session.
Only ``modelops.params`` (with ``modelops.errors``) is imported before the stage:
the recorder needs it, and every stage loads its params through it anyway.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import types
from typing import Any


def leaves(obj: Any, path: str) -> set[str]:
    """Every leaf key under a params section, as dotted paths."""
    from pydantic import BaseModel

    if not isinstance(obj, BaseModel):
        return {path}
    out: set[str] = set()
    for name in type(obj).model_fields:
        out |= leaves(getattr(obj, name), f"{path}.{name}" if path else name)
    return out


class Recorder:
    """A read-only view of a params section that logs every key read through it.

    A field read logs its dotted path (a nested section is wrapped in turn, so only the
    keys actually read below it count). A method defined on our section classes
    (``TrainParams.used``) runs with the recorder as ``self``, so the keys it reads count
    one by one. pydantic's own API (``model_dump`` and the like) and ``repr`` read every
    key, and count as reading all of them. Using a section as a whole in any other way
    (``==``, ``in``, iteration, truth) fails loudly rather than going unseen.
    """

    def __init__(self, obj: Any, path: str, log: set[str]) -> None:
        object.__setattr__(self, "_obj", obj)
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_log", log)

    def __getattr__(self, name: str) -> Any:
        from pydantic import BaseModel

        obj, path, log = self._obj, self._path, self._log
        key = f"{path}.{name}" if path else name
        if name in type(obj).model_fields:
            value = getattr(obj, name)
            if isinstance(value, BaseModel):
                return Recorder(value, key, log)
            log.add(key)
            return value
        for klass in type(obj).__mro__:
            if klass is BaseModel:
                break
            if name in vars(klass):
                attr = vars(klass)[name]
                if isinstance(attr, property):
                    return attr.fget(self)
                if isinstance(attr, types.FunctionType):
                    return types.MethodType(attr, self)
                return getattr(obj, name)  # a class constant
        if hasattr(BaseModel, name):
            log.update(leaves(obj, path))
            return getattr(obj, name)
        raise AttributeError(f"{type(obj).__name__} has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("params are frozen")

    def __repr__(self) -> str:
        self._log.update(leaves(self._obj, self._path))
        return repr(self._obj)

    def _unknown_read(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"params section {self._path or '(root)'} used as a whole (compared, iterated, "
            f"hashed, tested for truth): the recorder cannot tell which keys that reads"
        )

    __eq__ = __ne__ = __hash__ = __bool__ = __iter__ = __len__ = __contains__ = _unknown_read
    __getitem__ = _unknown_read


def main(spec_path: str) -> None:
    with open(spec_path) as f:
        spec = json.load(f)
    from modelops import params

    real_load = params.load
    reads: set[str] = set()
    loads = []

    def recording_load(path: Any = "params.yaml") -> Any:
        loads.append(str(path))
        return Recorder(real_load(path), "", reads)

    params.load = recording_load
    before = set(sys.modules)
    import importlib

    stage = importlib.import_module(f"modelops.stages.{spec['stage']}")
    home = os.getcwd()
    runs = []
    for run in spec["runs"]:
        os.chdir(run["cwd"])
        n_loads = len(loads)
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = stage.main(run["argv"])
        finally:
            os.chdir(home)
        runs.append(
            {
                "cwd": run["cwd"],
                "code": code,
                "loads": len(loads) - n_loads,
                "stderr": err.getvalue(),
            }
        )
    loaded = sorted(m for m in set(sys.modules) - before if m.split(".")[0] == "modelops")
    print(json.dumps({"reads": sorted(reads), "modules": loaded, "runs": runs}))


if __name__ == "__main__":
    main(sys.argv[1])
