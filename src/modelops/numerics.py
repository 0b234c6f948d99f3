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

# Exported variables that can change the bits; all are dropped, then ours are set.
_PREFIXES = ("NPY_", "OPENBLAS_", "GOTO", "OMP_", "GOMP_", "KMP_", "MKL_", "BLIS_", "VECLIB_")
_NAMES = ("GLIBC_TUNABLES", "PYTHONHASHSEED", "NUMEXPR_NUM_THREADS", "NUMEXPR_MAX_THREADS")

_COMMON = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYTHONHASHSEED": "0",
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


def pinned_variables(machine: str | None = None) -> dict[str, str]:
    """The variables a stage process runs with on this kind of machine."""
    machine = (machine or platform.machine()).lower()
    extra = _X86_64 if machine in ("x86_64", "amd64") else {}
    return {**_COMMON, **extra}


# Set in the re-executed process: seen again without the pinned values, something at start-up
# (a sitecustomize, a launcher) changed them, and a second exec would loop.
_MARKER = "MODELOPS_NUMERICS"


def pinned_environ(environ: Mapping[str, str], machine: str | None = None) -> dict[str, str]:
    """``environ`` without the user's numerical settings, with the pinned ones."""
    dropped = (*_NAMES, _MARKER)
    kept = {k: v for k, v in environ.items() if not (k.startswith(_PREFIXES) or k in dropped)}
    return {**kept, **pinned_variables(machine), _MARKER: "pinned"}


def is_pinned(environ: Mapping[str, str]) -> bool:
    return dict(environ) == pinned_environ(environ)


def pin_process() -> None:
    """Re-execute this process with the pinned environment, unless it already runs in it.

    Call it first thing in ``__main__``, before anything is printed. On Windows, where exec
    starts a new process and the caller would lose the exit code, the variables are set in
    place instead (everything but the libm choice, which glibc alone has)."""
    if is_pinned(os.environ):
        return
    env = pinned_environ(os.environ)
    again = os.environ.get(_MARKER) == "pinned"
    if again:
        changed = sorted(k for k in set(env) | set(os.environ) if env.get(k) != os.environ.get(k))
        print(
            f"warning: {', '.join(changed)} changed while this process started; "
            "outputs may differ from other machines' (see `python -m modelops.numerics`)",
            file=sys.stderr,
        )
    if again or os.name != "posix":
        os.environ.clear()
        os.environ.update(env)
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


def report() -> dict[str, object]:
    """What the numerical libraries of this process actually use (imports numpy and scipy)."""
    pinned = is_pinned(os.environ)  # before scikit-learn sets KMP_* variables of its own
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
        "glibc_tunables": os.environ.get("GLIBC_TUNABLES"),
    }


if __name__ == "__main__":
    import json

    if "--ambient" not in sys.argv:
        pin_process()
    print(json.dumps(report(), indent=2))
