"""The numerical environment of a stage process, fixed so the same inputs give the same bits.

Floating-point results depend on more than the code. On the same pinned wheels:

- numpy picks SIMD loops for the CPU when it is imported (its "dispatch": X86_V3 = AVX2/FMA,
  X86_V4 = AVX-512, ...); the float32 ``log``/``exp`` loops of each level round differently;
- OpenBLAS picks a kernel per CPU (Haswell, SkylakeX, Zen, ...), with other blockings and
  FMA use, and splits dot products between its threads;
- glibc's libm picks FMA variants of ``exp``, ``log``, ``pow`` where the CPU has FMA, and
  they differ in the last bit from the SSE2 ones (float64 ``np.exp``/``np.log`` of 2·10^6
  values hashed differently with and without FMA on glibc 2.36);
- OpenMP reductions in scikit-learn (histogram gradient boosting) depend on the thread count.

A stage therefore runs in a process whose environment fixes each of these before any of those
libraries load, to a choice every x86-64 machine that the wheels run on can make: numpy's
baseline (X86_V2, which numpy 2.4's wheels require anyway), OpenBLAS's Nehalem kernel (SSE4.2;
its blocking is a constant, unlike Prescott's or Core2's, which scale with the L2 size), one
BLAS and one OpenMP thread, libm's SSE2 code paths, and a fixed hash seed. Whatever the user's
shell exports under these names is replaced. ``python -m modelops.numerics`` prints what a
pinned process sees.

Only the dynamic loader reads ``GLIBC_TUNABLES``, at process start, so pinning re-executes the
process (once) rather than editing ``os.environ`` in place.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping

# Exported variables that can change the bits; all are dropped, then ours are set. (KMP_* is
# Intel's OpenMP, which these wheels do not use; scikit-learn sets two KMP_ variables itself.)
_PREFIXES = ("NPY_", "OPENBLAS_", "GOTO", "OMP_", "GOMP_", "MKL_", "BLIS_", "VECLIB_")
_NAMES = ("GLIBC_TUNABLES", "PYTHONHASHSEED", "PYTHONUTF8", "NUMEXPR_NUM_THREADS")

_COMMON = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYTHONHASHSEED": "0",
    # Files and stdio in UTF-8 whatever the locale: a Latin-1 locale misread non-ASCII column
    # names in schema.json (other bytes, or a KeyError).
    "PYTHONUTF8": "1",
}
# glibc >= 2.33 names the features without "_Usable"; older releases with it. Unknown names
# are ignored, so both spellings are listed.
_MASKED = ("AVX2", "FMA", "FMA4", "AVX2_Usable", "FMA_Usable", "FMA4_Usable")
_X86_64 = {
    # Only baseline loops: naming a baseline feature enables no dispatched one.
    "NPY_ENABLE_CPU_FEATURES": "X86_V2",
    "OPENBLAS_CORETYPE": "Nehalem",
    "GLIBC_TUNABLES": "glibc.cpu.hwcaps=" + ",".join(f"-{f}" for f in _MASKED),
}
# The PID of the process that re-executed itself (exec keeps the PID). Seen again in the same
# process without the pinned values, something at start-up (a sitecustomize) changed them and
# another exec would loop; inherited from a parent, it means nothing.
_MARKER = "MODELOPS_NUMERICS_PID"


def pinned_variables(machine: str | None = None) -> dict[str, str]:
    """The variables a stage process runs with on this kind of machine."""
    machine = (machine or platform.machine()).lower()
    extra = _X86_64 if machine in ("x86_64", "amd64") else {}
    return {**_COMMON, **extra}


def pinned_environ(environ: Mapping[str, str], machine: str | None = None) -> dict[str, str]:
    """``environ`` without the user's numerical settings, with the pinned ones."""
    dropped = (*_NAMES, _MARKER)
    kept = {k: v for k, v in environ.items() if not (k.startswith(_PREFIXES) or k in dropped)}
    return {**kept, **pinned_variables(machine)}


def _differences(environ: Mapping[str, str]) -> list[str]:
    want = pinned_environ(environ)
    have = {k: v for k, v in environ.items() if k != _MARKER}
    return sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))


def is_pinned(environ: Mapping[str, str]) -> bool:
    """Whether ``environ`` is already the pinned environment (the marker aside). Under
    ``python -I`` or ``-E`` Python ignores PYTHONHASHSEED and PYTHONUTF8, so it is not."""
    return not _differences(environ) and not sys.flags.ignore_environment


def pin_process() -> None:
    """Re-execute this process with the pinned environment, unless it already runs in it.

    Call it first thing in ``__main__``, before anything is printed. Where exec cannot be
    used (Windows, where the caller would lose the exit code; an environment exec refuses)
    or would loop, the variables are set in place and a warning says what could not be."""
    if is_pinned(os.environ):
        return
    env = pinned_environ(os.environ)
    changed = _differences(os.environ)
    if os.environ.get(_MARKER) == str(os.getpid()) or os.name != "posix":
        _pin_in_place(env, f"{', '.join(changed)} changed while this process started")
        return
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(
            sys.executable, [sys.executable, *sys.orig_argv[1:]], env | {_MARKER: str(os.getpid())}
        )
    except (OSError, ValueError) as exc:  # an empty sys.executable, a nameless variable
        _pin_in_place(env, f"cannot re-execute {sys.executable!r} ({exc})")


def _pin_in_place(env: dict[str, str], why: str) -> None:
    print(
        f"warning: numerics pinned in place only: {why}; glibc's libm choice and the hash seed "
        "take effect only at start-up, so outputs may differ from other machines'",
        file=sys.stderr,
    )
    os.environ.clear()
    os.environ.update(env)


def report() -> dict[str, object]:
    """What the numerical libraries of this process actually use (imports numpy and scipy)."""
    pinned = is_pinned(os.environ)
    import numpy as np
    import scipy.linalg  # noqa: F401  (scipy's own OpenBLAS, for threadpoolctl to see)
    import sklearn.ensemble  # noqa: F401  (scikit-learn's OpenMP runtime)
    import threadpoolctl
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    return {
        "machine": platform.machine(),
        "pinned": pinned,
        "numpy": np.__version__,
        "numpy_dispatch": [f for f in __cpu_dispatch__ if __cpu_features__[f]],
        "threadpools": [
            {k: info.get(k) for k in ("internal_api", "prefix", "architecture", "num_threads")}
            for info in threadpoolctl.threadpool_info()
        ],
        "hash_seed": os.environ.get("PYTHONHASHSEED"),
        "hash_randomization": bool(sys.flags.hash_randomization),
        "utf8_mode": bool(sys.flags.utf8_mode),
        "glibc_tunables": os.environ.get("GLIBC_TUNABLES"),
    }


if __name__ == "__main__":
    import json

    if "--ambient" not in sys.argv:
        pin_process()
    print(json.dumps(report(), indent=2))
