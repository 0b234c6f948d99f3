"""Same data and params, same bytes, whatever the machine (issue 12, item 1).

Other machines are emulated on this one in child processes, never in the test process: by
the variables that steer numpy's CPU dispatch, OpenBLAS's kernel and threads, OpenMP, glibc's
libm variants and the hash seed; and, where qemu-user is installed, by a whole other CPU
(``qemu-x86_64 -cpu Nehalem``: no AVX, so every library detects an older machine by itself).
Each check has a control showing that the emulated machine really gives other bytes to code
that is not pinned, so the equality is not vacuous.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from modelops import numerics

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.skipif(
        platform.machine().lower() not in ("x86_64", "amd64"), reason="x86-64 emulation"
    ),
    pytest.mark.slow,
]

# Every model kind on every task it supports, small enough to train in a fraction of a second.
SMALL = {
    "train.random_forest.n_estimators": 15,
    "train.hist_gradient_boosting.max_iter": 25,
    "train.epochs": 200,
}
KINDS = {
    "binary": [
        {"train.model": "logistic_regression"},
        {"train.model": "sklearn_logistic_regression"},
        {"train.model": "random_forest"},
        {"train.model": "hist_gradient_boosting"},
    ],
    "multiclass": [
        {"train.model": "logistic_regression"},
        {"train.model": "logistic_regression", "train.dtype": "float64"},
        {"train.model": "sklearn_logistic_regression"},
        {"train.model": "random_forest"},
        {"train.model": "hist_gradient_boosting"},
    ],
    "regression": [
        {"train.model": "linear_regression", "train.solver": "closed_form"},
        {"train.model": "linear_regression", "train.solver": "gd"},
        {"train.model": "ridge"},
        {"train.model": "random_forest"},
        {"train.model": "hist_gradient_boosting"},
    ],
}
SOURCES = {
    "binary": {"data.source": "breast_cancer"},
    "multiclass": {
        "data.source": "csv",
        "data.path": "flowers.csv",
        "data.target": "species",
    },
    "regression": {"data.source": "diabetes"},
}

# Ambient settings of other machines. Values that need a CPU feature this one lacks are left
# out (OpenBLAS would crash on a kernel the CPU cannot run).
OLD_CPU = {
    "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR",
    "OPENBLAS_CORETYPE": "Prescott",
    "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2,-FMA,-AVX",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "PYTHONHASHSEED": "1",
}
BIG_BOX = {
    "OPENBLAS_CORETYPE": "Sandybridge",
    "OPENBLAS_NUM_THREADS": "32",
    "OMP_NUM_THREADS": "32",
    "MKL_NUM_THREADS": "32",
    "OMP_DYNAMIC": "true",
    "PYTHONHASHSEED": "12345",
}
MACHINES = {"this machine": {}, "old CPU": OLD_CPU, "big box": BIG_BOX}

# A child trains every job in one process (one import of scikit-learn), pinned unless told
# "ambient", and prints the md5 of each bundle and loss file.
DRIVER = """
import hashlib, json, sys
from pathlib import Path
if sys.argv[1] == "pinned":
    from modelops import numerics
    numerics.pin_process()
from modelops.stages import evaluate, train
out = {}
for name, params, data in json.loads(sys.argv[2]):
    model, loss, metrics, card = (Path(f"out-{name}.{x}") for x in ("npz", "json", "m", "card"))
    argv = ["--params", params, "--data", data, "--model", str(model), "--loss", str(loss)]
    assert train.main(argv) == 0, name
    argv = ["--params", params, "--data", data, "--model", str(model), "--metrics", str(metrics),
            "--plots", f"out-{name}-plots", "--card", str(card), "--lock", "no.lock"]
    assert evaluate.main(argv) == 0, name
    files = [model, loss, metrics, card.with_suffix(".json")]
    out[name] = [hashlib.md5(p.read_bytes()).hexdigest() for p in files]
print("RESULT " + json.dumps(out, sort_keys=True))
"""


def _cpu_has(flag: str) -> bool:
    try:
        return f" {flag}" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def write_params(dest: Path, changes: dict) -> None:
    doc = yaml.safe_load((ROOT / "params.yaml").read_text())
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = doc
        for key in parents:
            node = node[key]
        node[last] = value
    dest.write_text(yaml.safe_dump(doc))


def flowers_csv(path: Path) -> None:
    """Three string classes, a categorical column, missing values and an identifier."""
    rng = np.random.default_rng(7)
    n = 240
    species = np.array(["setosa", "versicolor", "virginica"])[np.arange(n) % 3]
    shift = (np.arange(n) % 3)[:, None] * 0.9
    X = rng.normal(size=(n, 4)) + shift
    frame = pd.DataFrame(X, columns=["sepal_l", "sepal_w", "petal_l", "petal_w"]).round(3)
    frame["soil"] = rng.choice(["clay", "sand", "loam"], n)
    frame["plant_id"] = [f"P{i:04d}" for i in range(n)]
    frame["species"] = species
    frame.loc[::11, "petal_w"] = np.nan
    frame.to_csv(path, index=False)


@pytest.fixture(scope="module")
def jobs(tmp_path_factory) -> tuple[Path, list]:
    """Prepared data for the three tasks and one params file per model kind."""
    work = tmp_path_factory.mktemp("determinism")
    flowers_csv(work / "flowers.csv")
    jobs = []
    for task, kinds in KINDS.items():
        write_params(work / f"params-{task}.yaml", {**SOURCES[task], **kinds[0]})
        prepare = ["-m", "modelops.stages.prepare", "--params", f"params-{task}.yaml"]
        subprocess.run(
            [sys.executable, *prepare, "--out", f"prep-{task}"],
            cwd=work,
            check=True,
            capture_output=True,
        )
        for i, kind in enumerate(kinds):
            name = f"{task}-{i}-{kind['train.model']}"
            write_params(work / f"params-{name}.yaml", {**SOURCES[task], **SMALL, **kind})
            jobs.append([name, f"params-{name}.yaml", f"prep-{task}"])
    return work, jobs


def train_all(
    work: Path, jobs: list, mode: str, ambient: dict, prefix: list[str] | None = None
) -> dict:
    """Run the driver in a child with ``ambient`` added to the test's environment."""
    env = {**os.environ, **ambient}
    if mode == "pre-pinned":  # for qemu: an exec'd child would run natively, outside qemu
        env, mode = numerics.pinned_environ(env), "pinned"
    proc = subprocess.run(
        [*(prefix or []), sys.executable, "-c", DRIVER, mode, json.dumps(jobs)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def machines() -> dict[str, dict]:
    out = dict(MACHINES)
    if not _cpu_has("avx"):  # Sandybridge needs AVX
        out["big box"] = {k: v for k, v in BIG_BOX.items() if k != "OPENBLAS_CORETYPE"}
    return out


def test_every_model_kind_gives_the_same_bytes_under_every_emulated_machine(jobs):
    """Train and evaluate, every kind: what a shell exports cannot reach a pinned process (the
    control below shows it reaches unpinned code). That the pinned values themselves give the
    same bytes on another CPU is the qemu test's to show."""
    work, todo = jobs
    pinned = {name: train_all(work, todo, "pinned", env) for name, env in machines().items()}
    reference = pinned["this machine"]
    assert len(reference) == sum(len(k) for k in KINDS.values())
    for name, got in pinned.items():
        differing = sorted(k for k in reference if got[k] != reference[k])
        assert not differing, f"{name}: other bytes for {differing}"


def test_control_unpinned_code_does_change_bytes_on_those_machines(jobs):
    """Without pinning, the "old CPU" settings change the bytes of the numpy trainers (the
    ambient numerics reach them), so the equality above is not vacuous."""
    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    if not any(__cpu_features__[f] for f in __cpu_dispatch__):
        pytest.skip("this CPU has no dispatch level above numpy's baseline to switch off")
    work, todo = jobs
    numpy_trainers = [j for j in todo if "-logistic_regression" in j[0] and "sklearn" not in j[0]]
    numpy_trainers += [j for j in todo if "linear_regression" in j[0]]
    here = train_all(work, numpy_trainers, "ambient", {})
    old = train_all(work, numpy_trainers, "ambient", OLD_CPU)
    changed = sorted(k for k in here if here[k] != old[k])
    assert "binary-0-logistic_regression" in changed, changed


QEMU = shutil.which("qemu-x86_64")


@pytest.mark.skipif(QEMU is None, reason="qemu-user is not installed (.ci/run installs it)")
def test_an_emulated_cpu_without_avx_gives_the_same_bytes(jobs):
    """qemu-user runs the numpy trainers and evaluate on a Nehalem CPU (SSE4.2, no AVX/FMA),
    which numpy, OpenBLAS and glibc each detect for themselves. Pinned, it gives the bytes this
    machine gives. Unpinned (one thread), it gives the same bytes too: the pin is what the
    oldest CPU the wheels run on does by itself, so a pin changed to a newer kernel or
    dispatch level fails here. Control: unpinned, this machine gives other bytes."""
    work, todo = jobs
    # Emulation is slow (about 10x): the two numpy trainers, whose bytes the CPU moves most.
    picked = [
        j
        for j in todo
        if j[0] in ("binary-0-logistic_regression", "regression-1-linear_regression")
    ]
    qemu = [QEMU, "-cpu", "Nehalem"]
    probe = "from numpy._core._multiarray_umath import __cpu_features__ as f; print(f['AVX'])"
    seen = subprocess.run(
        [*qemu, sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert seen.stdout.strip() == "False", "qemu did not hide AVX: the emulation proves nothing"
    one_thread = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    native = train_all(work, picked, "pinned", {})
    assert train_all(work, picked, "pre-pinned", {}, prefix=qemu) == native
    assert train_all(work, picked, "ambient", one_thread, prefix=qemu) == native
    if _cpu_has("avx2"):
        own = train_all(work, picked, "ambient", one_thread)
        assert own["binary-0-logistic_regression"] != native["binary-0-logistic_regression"]


def test_pinned_environ_replaces_what_the_shell_exports():
    shell = {
        "HOME": "/home/u",
        "NPY_DISABLE_CPU_FEATURES": "X86_V4",
        "NPY_ENABLE_CPU_FEATURES": "X86_V3",  # both set: numpy refuses to import
        "OPENBLAS_CORETYPE": "Haswell",
        "OPENBLAS_L2_SIZE": "1048576",
        "OMP_NUM_THREADS": "8",
        "OMP_SCHEDULE": "dynamic",
        "MKL_CBWR": "AVX2",
        "GLIBC_TUNABLES": "glibc.malloc.arena_max=2",
        "PYTHONHASHSEED": "random",
    }
    env = numerics.pinned_environ(shell, machine="x86_64")
    assert env["HOME"] == "/home/u"
    assert "NPY_DISABLE_CPU_FEATURES" not in env and "OMP_SCHEDULE" not in env
    assert "OPENBLAS_L2_SIZE" not in env and "MKL_CBWR" not in env
    assert env["NPY_ENABLE_CPU_FEATURES"] == "X86_V2"
    assert env["OPENBLAS_CORETYPE"] == "Nehalem"
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == "1"
    assert env["PYTHONHASHSEED"] == "0"
    assert "-FMA" in env["GLIBC_TUNABLES"] and "malloc" not in env["GLIBC_TUNABLES"]
    assert numerics.is_pinned(env) and not numerics.is_pinned(shell)
    # Elsewhere only what holds on every platform: threads and the hash seed.
    arm = numerics.pinned_environ(shell, machine="aarch64")
    assert "OPENBLAS_CORETYPE" not in arm and "GLIBC_TUNABLES" not in arm
    assert arm["OMP_NUM_THREADS"] == "1" and arm["PYTHONHASHSEED"] == "0"


def test_a_pinned_process_reports_what_it_runs_with():
    proc = subprocess.run(
        [sys.executable, "-m", "modelops.numerics"],
        env={**os.environ, **OLD_CPU, **BIG_BOX},
        capture_output=True,
        text=True,
        check=True,
    )
    seen = json.loads(proc.stdout)
    assert seen["pinned"] and seen["numpy_dispatch"] == [] and seen["hash_seed"] == "0"
    blas = [t for t in seen["threadpools"] if t["internal_api"] == "openblas"]
    assert len(blas) == 2  # numpy's and scipy's own copies
    assert all(t["architecture"] == "Nehalem" and t["num_threads"] == 1 for t in blas)
    omp = [t for t in seen["threadpools"] if t["internal_api"] == "openmp"]
    assert omp and all(t["num_threads"] == 1 for t in omp)


def test_a_variable_changed_at_start_up_warns_instead_of_looping(tmp_path):
    """A sitecustomize that sets a pinned variable would make every exec see an unpinned
    environment again: the second time, the process pins in place and says so."""
    (tmp_path / "sitecustomize.py").write_text("import os\nos.environ['OMP_NUM_THREADS'] = '5'\n")
    proc = subprocess.run(
        [sys.executable, "-m", "modelops.numerics"],
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "OMP_NUM_THREADS changed while this process started" in proc.stderr


def test_an_inherited_marker_does_not_stop_the_re_exec():
    """A marker exported by a parent (another PID) must not pass for this process's own."""
    proc = subprocess.run(
        [sys.executable, "-m", "modelops.numerics"],
        env={**os.environ, "MODELOPS_NUMERICS_PID": "1", "PYTHONHASHSEED": "7"},
        capture_output=True,
        text=True,
        check=True,
    )
    seen = json.loads(proc.stdout)
    assert seen["pinned"] and seen["hash_seed"] == "0" and seen["utf8_mode"]
    assert "warning" not in proc.stderr
