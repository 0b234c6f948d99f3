"""dvc.yaml's ``deps:`` and ``params:`` of each stage are exactly what the stage reads.

Code. The stage's modules are the import closure of ``modelops.stages.<name>``: every
``import``/``from ... import`` of a modelops module anywhere in a module (inside functions
too; not in ``if TYPE_CHECKING:`` bodies, which never run), plus the parent packages that
Python runs first (``src/modelops/__init__.py`` holds the version that goes into every
bundle). Every one of them must be covered by a ``src/`` entry of the stage's ``deps:``;
every ``src/`` entry must be imported: a file must be in the closure, and a directory may
be listed only if the stage imports every module in it. A dynamic cross-check runs each
stage and requires every modelops module it actually loaded to be in the static closure,
so an import the walker cannot see (``importlib`` with a computed name) fails too.

Params. Each stage runs in-process (``tests/stages/stage_reads.py``, one child process per
stage) over a matrix of scenarios that takes every branch that reads params: each data
source, each model kind and solver, each importance method, a monitored batch. The loaded
params are wrapped so that every key read is recorded, including reads inside library
functions the sections are handed to (``models.build(p.train)``, ``TrainParams.used``);
``model_dump()`` of a section counts as reading all its keys. Validation of the whole file
is not a read: it can stop a stage, never change its outputs. Then:

- every key read must be covered by ``params:`` (an entry equal to it or a section above it);
- every entry must be read in full: a section may be listed only if the stage reads every
  key in it (in some scenario), otherwise its keys are listed one by one (``data.na_values``).
  An entry that is never read fails; so does a key only a missing scenario would reach:
  then add the scenario.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modelops.params import read_yaml, validate
from tests.stages.stage_reads import Recorder, leaves

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
DVC_YAML = read_yaml(ROOT / "dvc.yaml")
STAGES = list(DVC_YAML["stages"])


# -- the import closure -----------------------------------------------------------------------
def module_file(name: str, src: Path = SRC) -> Path | None:
    """The file that defines module ``name`` under ``src``, or None (not a module)."""
    base = src.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST):
    """Every node that can run: ``if TYPE_CHECKING:`` bodies are skipped, their else kept."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))


def imported_names(name: str, path: Path) -> set[str]:
    """Absolute names of what module ``name`` (at ``path``) imports; for ``from m import x``
    both ``m`` and ``m.x`` (which counts if ``m.x`` is a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            out.add(module)
            out.update(f"{module}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            out.add(node.args[0].value)
    return out


def import_closure(module: str, src: Path = SRC) -> set[str]:
    """Every module under ``src`` that importing and running ``module`` may load."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        path = module_file(name, src)
        if name in seen or path is None:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        todo += imported_names(name, path)
    return seen


def code_files(stage: str) -> set[str]:
    return {
        module_file(m).relative_to(ROOT).as_posix()
        for m in import_closure(f"modelops.stages.{stage}")
    }


def listed_code(stage: str) -> list[str]:
    return [d.rstrip("/") for d in DVC_YAML["stages"][stage]["deps"] if d.startswith("src/")]


def test_import_closure_sees_function_imports_and_skips_type_checking(tmp_path):
    pkg = tmp_path / "modelops"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from modelops import hidden\n"
            "else:\n    from . import shown\n"
            "def f():\n    from modelops.sub import deep\n"
        ),
        "hidden.py": "",
        "shown.py": "",
        "unused.py": "",
        "sub/__init__.py": "",
        "sub/deep.py": "import importlib\nimportlib.import_module('modelops.late')\n",
        "late.py": "from .sub import helper_function\n",
    }
    for rel, text in files.items():
        (pkg / rel).write_text(text)
    assert import_closure("modelops.a", tmp_path) == {
        "modelops",
        "modelops.a",
        "modelops.shown",
        "modelops.sub",
        "modelops.sub.deep",
        "modelops.late",
    }


@pytest.mark.parametrize("stage", STAGES)
def test_code_deps_are_exactly_the_imports(stage):
    needed = code_files(stage)
    listed = listed_code(stage)

    def covers(entry: str, path: str) -> bool:
        return path == entry or path.startswith(entry + "/")

    missing = sorted(p for p in needed if not any(covers(e, p) for e in listed))
    extra = []
    for entry in listed:
        target = ROOT / entry
        inside = [p.relative_to(ROOT).as_posix() for p in target.rglob("*.py")]
        files = inside if target.is_dir() else [entry]
        unused = sorted(f for f in files if f not in needed)
        if unused:
            extra.append(
                f"{entry} ({', '.join(unused)} not imported)" if target.is_dir() else entry
            )
    assert not missing and not extra, (
        f"dvc.yaml stage {stage!r}: deps miss {missing}; deps list code the stage does not "
        f"import: {extra}"
    )


# -- what each stage reads when it runs --------------------------------------------------------
SCENARIOS: dict[str, dict[str, Any]] = {
    # Defaults: breast_cancer, numpy logistic regression, coefficients.
    "bundled-logistic": {},
    "bundled-linear-closed-form": {"data.source": "diabetes", "train.model": "linear_regression"},
    "csv-multiclass-forest-permutation": {
        "data.source": "csv",
        "data.path": "data/raw/shop.csv",
        "data.target": "segment",
        "train.model": "random_forest",
        "train.random_forest.n_estimators": 5,
        "evaluate.importance": "permutation",
        "evaluate.permutation_repeats": 2,
    },
    "csv-binary-sklearn-logistic": {
        "data.source": "csv",
        "data.path": "data/raw/shop.csv",
        "data.target": "bought",
        "data.positive_class": "yes",
        "train.model": "sklearn_logistic_regression",
        "evaluate.importance": "coefficients",
    },
    "csv-regression-ridge": {
        "data.source": "csv",
        "data.path": "data/raw/shop.csv",
        "data.target": "basket",
        "data.task": "regression",
        "train.model": "ridge",
    },
    "synthetic-regression-gd": {
        "data.source": "synthetic",
        "data.synthetic.task": "regression",
        "data.synthetic.n_rows": 200,
        "train.model": "linear_regression",
        "train.solver": "gd",
        "train.early_stopping": True,
        "train.epochs": 50,
    },
    "synthetic-multiclass-boosting": {
        "data.source": "synthetic",
        "data.synthetic.n_rows": 300,
        "data.synthetic.n_classes": 3,
        "train.model": "hist_gradient_boosting",
        "train.hist_gradient_boosting.max_iter": 5,
    },
}


def _shop_csv(path: Path) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 240
    frame = pd.DataFrame(
        {
            "basket": rng.gamma(2.0, 30.0, n).round(2),
            "visits": rng.poisson(5, n).astype(float),
            "channel": rng.choice(["web", "app", "store"], n),
        }
    )
    frame["bought"] = np.where(frame["basket"] + 5 * frame["visits"] > 85, "yes", "no")
    frame["segment"] = np.where(frame["visits"] > 6, "loyal", "new")
    frame.loc[frame["basket"] > 90, "segment"] = "big"
    frame.loc[::17, "visits"] = np.nan
    path.parent.mkdir(parents=True)
    frame.to_csv(path, index=False, na_rep="?")


def _params_text(changes: dict[str, Any]) -> str:
    raw = read_yaml(ROOT / "params.yaml")
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = raw
        for key in parents:
            node = node[key]
        assert last in node, dotted
        node[last] = value
    return json.dumps(raw)  # JSON is YAML: params.load reads it as DVC would


def stage_argv(stage: str, raw_params: dict[str, Any]) -> list[str]:
    """The stage's flags exactly as dvc.yaml's cmd gives them, ${...} filled from params."""

    def lookup(match: re.Match) -> str:
        node: Any = raw_params
        for key in match.group(1).split("."):
            node = node[key]
        return str(node)

    cmd = re.sub(r"\$\{\s*([\w.]+)\s*\}", lookup, DVC_YAML["stages"][stage]["cmd"])
    words = shlex.split(cmd)
    assert words[:3] == ["python", "-m", f"modelops.stages.{stage}"], cmd
    return words[3:]


def _write_batch(workdir: Path, raw_params: dict[str, Any]) -> None:
    """A labelled batch for the monitor stage: the prepared test split, as CSV."""
    import pandas as pd

    from modelops.data import TEST_FILE

    paths = raw_params["paths"]
    frame = pd.read_feather(workdir / paths["prepared"] / TEST_FILE)
    incoming = workdir / paths["incoming"]
    incoming.mkdir(parents=True, exist_ok=True)
    frame.to_csv(incoming / "batch.csv", index=False)


@pytest.fixture(scope="module")
def scenario_dirs(tmp_path_factory) -> dict[str, Path]:
    """A working directory per scenario, with its params.yaml (and CSV)."""
    base = tmp_path_factory.mktemp("scenarios")
    dirs = {}
    for name, changes in SCENARIOS.items():
        workdir = base / name
        workdir.mkdir()
        (workdir / "params.yaml").write_text(_params_text(changes))
        if changes.get("data.source") == "csv":
            _shop_csv(workdir / changes["data.path"])
        dirs[name] = workdir
    return dirs


@pytest.fixture(scope="module")
def observed(scenario_dirs: dict[str, Path]) -> dict[str, dict[str, Any]]:
    """Per stage: the params keys it read and the modelops modules it loaded, over all
    scenarios; the stages run in dvc.yaml's order, each on the previous one's outputs."""
    dirs = scenario_dirs
    base = next(iter(dirs.values())).parent
    out = {}
    for stage in STAGES:
        todo = list(dirs.values())
        if stage == "monitor":
            for workdir in todo:
                _write_batch(workdir, read_yaml(workdir / "params.yaml"))
        runs = [
            {"cwd": str(d), "argv": stage_argv(stage, read_yaml(d / "params.yaml"))} for d in todo
        ]
        spec = base / f"{stage}.json"
        spec.write_text(json.dumps({"stage": stage, "runs": runs}))
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).with_name("stage_reads.py")), str(spec)],
            capture_output=True,
            text=True,
            cwd=base,
        )
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        for run in result["runs"]:
            assert run["code"] == 0, f"{stage} in {run['cwd']}: {run['stderr']}"
            assert run["loads"] >= 1, f"{stage} did not load its params via modelops.params.load"
        out[stage] = result
    return out


LOADED = """
import json, sys
from modelops.stages import {stage} as stage
code = stage.main(json.loads(sys.argv[1]))
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & {{"pandas", "scipy", "sklearn"}})
print(json.dumps([code, heavy]))
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stage", "scenario", "unwanted"),
    [
        ("prepare", "bundled-logistic", {"scipy", "sklearn"}),  # scikit-learn's files, read
        ("prepare", "csv-binary-sklearn-logistic", {"scipy", "sklearn"}),
        # the splits are mapped Arrow files; numbers and labels come out without pandas
        ("train", "bundled-logistic", {"pandas", "scipy", "sklearn"}),
        ("train", "bundled-linear-closed-form", {"pandas", "scipy", "sklearn"}),
        ("evaluate", "bundled-logistic", {"pandas", "scipy", "sklearn"}),
        ("evaluate", "bundled-linear-closed-form", {"pandas", "scipy", "sklearn"}),
        # a batch to check: the drift tests' p-values come from scipy.stats
        ("monitor", "bundled-logistic", {"sklearn"}),
    ],
)
def test_a_stage_on_its_default_path_does_not_load_what_it_does_not_need(
    observed, scenario_dirs, stage, scenario, unwanted
):
    """Their import costs more than a small stage's work (issue 18): numpy models are
    scored with modelops.metrics; only scikit-learn models load scipy and scikit-learn, and
    only text columns load pandas in train and evaluate."""
    workdir = scenario_dirs[scenario]
    argv = stage_argv(stage, read_yaml(workdir / "params.yaml"))
    proc = subprocess.run(
        [sys.executable, "-c", LOADED.format(stage=stage), json.dumps(argv)],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    code, heavy = json.loads(proc.stdout.strip().splitlines()[-1])
    assert code == 0, proc.stderr
    assert not unwanted & set(heavy), heavy
    if stage == "monitor":  # it did check the batch (and so loaded scipy.stats)
        assert "scipy" in heavy


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_modules_a_stage_loads_are_in_its_import_closure(observed, stage):
    unseen = set(observed[stage]["modules"]) - import_closure(f"modelops.stages.{stage}")
    assert not unseen, f"{stage} loaded {sorted(unseen)}, which the import walker missed"


def listed_params(stage: str) -> list[str]:
    out = []
    for entry in DVC_YAML["stages"][stage].get("params", []):
        if isinstance(entry, dict):
            assert set(entry) == {"params.yaml"}, (
                f"{stage}: params from files other than params.yaml"
            )
            out += entry["params.yaml"]
        else:
            out.append(entry)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_params_are_exactly_the_keys_the_stage_reads(observed, stage):
    defaults = validate(read_yaml(ROOT / "params.yaml"))
    reads = set(observed[stage]["reads"])
    listed = listed_params(stage)
    missing = sorted(r for r in reads if not any(r == e or r.startswith(e + ".") for e in listed))
    partly = {}
    for entry in listed:
        section: Any = defaults
        for key in entry.split("."):
            section = getattr(section, key)
        unread = sorted(leaves(section, entry) - reads)
        if unread:
            partly[entry] = unread
    assert not missing and not partly, (
        f"dvc.yaml stage {stage!r}: params miss {missing}; entries with keys the stage never "
        f"reads (list only the keys it reads, or add a scenario that reads them): {partly}"
    )


@pytest.mark.slow
def test_the_scenarios_read_something_in_every_stage(observed):
    # The recorder itself works: train reads keys inside TrainParams.used() and
    # models.build() (handed the section), and monitor reads one key of two sections.
    assert {"train.model", "train.random_forest.n_estimators", "train.solver"} <= set(
        observed["train"]["reads"]
    )
    assert {"data.na_values", "serving.chunk_rows"} <= set(observed["monitor"]["reads"])
    assert not {r for r in observed["monitor"]["reads"] if r.startswith("train.")}


def test_recorder_logs_keys_read_directly_in_methods_and_in_bulk():
    log: set[str] = set()
    p = Recorder(validate({"data": {"source": "diabetes"}, "train": {"model": "ridge"}}), "", log)
    assert p.data.na_values == validate({}).data.na_values
    p.train.used()  # model, seed and the ridge section, through a method on TrainParams
    p.monitor.model_dump()
    assert log == {
        "data.na_values",
        "train.model",
        "train.seed",
        "train.ridge.alpha",
        *(f"monitor.{k}" for k in type(validate({}).monitor).model_fields),
    }
    with pytest.raises(TypeError, match="params section split used as a whole"):
        _ = p.split == p.split
    with pytest.raises(AttributeError):
        _ = p.train.no_such_key
