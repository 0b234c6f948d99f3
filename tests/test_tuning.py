"""modelops tune's search without DVC: the range grammar, the schema check, conditional
params, the grid, and Optuna studies driven by an objective computed in-process (seeded
sequences, failures, interruption and resuming)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from modelops import tuning
from modelops.errors import ParamsError, UsageError, WorkspaceError
from modelops.params import read_yaml

ROOT = Path(__file__).resolve().parents[1]
RAW = read_yaml(ROOT / "params.yaml")


@pytest.mark.parametrize(
    ("spec", "kind", "low", "high", "choices"),
    [
        ("train.l2=log:1e-6..1", "log", 1e-6, 1.0, ()),
        ("train.lr=0.01..1", "float", 0.01, 1.0, ()),
        ("train.epochs=int:10..2000", "int", 10, 2000, ()),
        ("train.model=ridge, random_forest", "choice", 0, 0, ("ridge", "random_forest")),
        ("train.random_forest.max_depth=null,3,10", "choice", 0, 0, (None, 3, 10)),
        ("features.scale=true,false", "choice", 0, 0, (True, False)),
        ("train.l2=0,1e-3", "choice", 0, 0, (0, 0.001)),
    ],
)
def test_ranges_and_choices_parse(spec, kind, low, high, choices):
    p = tuning.parse(spec)
    assert (p.kind, p.low, p.high, p.choices) == (kind, low, high, choices)
    assert p.key == spec.split("=")[0]


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("train.l2", "write KEY=RANGE"),
        ("train.l2=", "write KEY=RANGE"),
        ("train l2=0..1", "not a dotted params.yaml key"),
        ("train.l2=1..0", "the low end must be below the high end"),
        ("train.l2=log:0..1", "a log range needs a low end above 0"),
        ("train.epochs=int:1.5..9", "'1.5' is not an integer"),
        ("train.lr=0.1..inf", "'inf' is not a finite number"),
        ("train.lr=0.1", "give a range"),
        ("train.model=ridge,ridge", "a choice is listed twice"),
        ("train.model=ridge,'x y'", "is not a number, true, false, null or a plain word"),
        ("train.model=ridge,nan", "is not a number, true, false, null or a plain word"),
        ("train.l2=1e400..2e400", "'1e400' is not a finite number"),
        ("train.l2=0..1e400", "'1e400' is not a finite number"),
        ("train.epochs=int:1..99999999999999999999", "is beyond ±2**53"),
    ],
)
def test_a_bad_range_is_one_line_naming_it(spec, says):
    with pytest.raises(UsageError) as err:
        tuning.parse(spec)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_a_key_given_twice_or_none_is_refused():
    with pytest.raises(UsageError, match=r"train\.l2 is given twice"):
        tuning.parse_space(["train.l2=0..1", "train.l2=log:1e-3..1"])
    with pytest.raises(UsageError, match="at least one --param"):
        tuning.parse_space([])


def test_the_deciding_keys_come_first():
    space = tuning.parse_space(["train.l2=0..1", "train.solver=closed_form,gd", "train.model=a,b"])
    assert [p.key for p in space] == ["train.model", "train.solver", "train.l2"]


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        (
            "train.ll2=0..1",
            "--param train.ll2: params.yaml has no such key; did you mean train.l2?",
        ),
        ("train.random_forest=1,2", "a section of params.yaml, not a value"),
        ("nothing.here=1,2", "params.yaml has no such key"),
        ("train.l2=-1..1", "-1.0 is refused (train.l2: Input should be greater than or equal"),
        ("train.momentum=0.5..1.5", "1.5 is refused (train.momentum: must be a number in [0, 1)"),
        ("train.model=ridge,logistic_regression", "ridge is refused"),
        ("train.epochs=int:0..10", "0 is refused (train.epochs"),
    ],
)
def test_the_schema_refuses_a_key_or_a_value_before_any_trial(spec, says):
    with pytest.raises(ParamsError) as err:
        tuning.check(tuning.parse_space([spec]), RAW, "classification")
    assert says in str(err.value)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("registry.gate.tolerance=0..0.1", "no stage reads the registry section"),
        ("paths.model=m1,m2", "no stage reads the paths section"),
        ("serving.max_rows=int:1..9", "no stage reads the serving section"),
        ("train.solver=closed_form,gd", "the model params.yaml names (auto) does not read it"),
    ],
)
def test_a_key_no_trial_would_vary_is_refused(spec, says):
    with pytest.raises(ParamsError) as err:
        tuning.check_read(tuning.parse_space([spec]), RAW["train"], "classification")
    assert says in str(err.value)


def test_a_key_no_model_of_the_search_reads_is_refused():
    forest = tuning.parse_space(["train.random_forest.n_estimators=int:10..50"])
    with pytest.raises(ParamsError, match=r"the model params.yaml names \(auto\) does not read"):
        tuning.check_read(forest, RAW["train"], "classification")
    both = tuning.parse_space(
        ["train.model=linear_regression,ridge", "train.random_forest.max_depth=3,5"]
    )
    with pytest.raises(ParamsError, match=r"no model of train\.model=linear_regression,ridge"):
        tuning.check_read(both, RAW["train"], "regression")
    tuning.check_read(  # read by one of the choices: searched where it applies
        tuning.parse_space(
            ["train.model=ridge,random_forest", *["train.random_forest.max_depth=3,5"]]
        ),
        RAW["train"],
        "regression",
    )


def test_a_trial_varies_only_the_keys_its_model_reads():
    space = tuning.parse_space(
        [
            "train.l2=log:1e-4..1",
            "train.random_forest.n_estimators=int:10..50",
            "train.model=logistic_regression,random_forest",
            "features.scale=true,false",
        ]
    )
    tuning.check(space, RAW, "classification")
    configs = tuning.grid(
        tuning.parse_space(
            [
                "train.l2=0.1,1",
                "train.random_forest.n_estimators=10,20",
                "train.model=logistic_regression,random_forest",
            ]
        ),
        RAW["train"],
        "classification",
    )
    # 2 + 2 distinct configurations, not the 8 of the full product
    assert configs == [
        {"train.model": "logistic_regression", "train.l2": 0.1},
        {"train.model": "logistic_regression", "train.l2": 1},
        {"train.model": "random_forest", "train.random_forest.n_estimators": 10},
        {"train.model": "random_forest", "train.random_forest.n_estimators": 20},
    ]
    study = _study(None)
    seen = []
    search = tuning.Search(study, space, RAW["train"], "classification", total=12)
    search.run(lambda batch: [seen.append(p) or tuning.Outcome(0.5, "x") for _, p in batch])
    assert len(seen) == 12
    for params in seen:
        forest = params["train.model"] == "random_forest"
        assert ("train.random_forest.n_estimators" in params) == forest
        assert ("train.l2" in params) == (not forest)
        assert "features.scale" in params  # outside train: every model reads it


def test_the_closed_form_solver_reads_no_gradient_descent_key():
    space = tuning.parse_space(["train.solver=closed_form,gd", "train.lr=log:1e-3..1"])
    configs = tuning.grid(
        tuning.parse_space(["train.solver=closed_form,gd", "train.lr=0.1,0.5"]),
        {**RAW["train"], "model": "linear_regression"},
        "regression",
    )
    assert configs == [
        {"train.solver": "closed_form"},
        {"train.solver": "gd", "train.lr": 0.1},
        {"train.solver": "gd", "train.lr": 0.5},
    ]
    with pytest.raises(UsageError, match="--sampler grid takes choice lists"):
        tuning.grid(space, RAW["train"], "regression")
    wide = tuning.parse_space(["train.epochs=int:1..100000000000"])
    with pytest.raises(UsageError, match="is more than a grid takes"):
        tuning.grid(wide, RAW["train"], "classification")  # at once, building no list


def test_overrides_keep_their_type_through_dvc_s_grammar():
    assert tuning.override("train.model", "ridge") == "train.model='ridge'"
    assert tuning.override("train.l2", 1e-06) == "train.l2=1e-06"
    assert tuning.override("train.epochs", 30) == "train.epochs=30"
    assert tuning.override("train.random_forest.max_depth", None) == (
        "train.random_forest.max_depth=null"
    )
    assert tuning.override("features.scale", False) == "features.scale=false"


def test_the_error_line_of_a_failed_run_is_the_stage_s_own():
    out = (
        "Running stage 'train':\nerror: train.lr: gradient descent diverged\n"
        "ERROR: failed to reproduce 'train'"
    )
    assert tuning.error_line(out) == "error: train.lr: gradient descent diverged"
    assert tuning.error_line("ERROR: no such file\n") == "ERROR: no such file"
    assert tuning.error_line("") == "failed without a message"


# -- studies -------------------------------------------------------------------------------
SETTINGS = dict(metric="f1", higher=True, sampler="tpe", seed=0, space=[], baseline="a" * 40)


def _study(path: Path | None, **changes):
    import optuna

    if path is None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        return optuna.create_study(direction="maximize", sampler=tuning.make_sampler("tpe", 0))
    settings = tuning.Settings(**{**SETTINGS, **changes})
    return tuning.open_study(path, "s", settings)


def objective(params: dict) -> float:
    """A smooth bowl with its top at l2 = 1e-2 and lr = 0.3."""
    return 1.0 - (math.log10(params["train.l2"]) + 2) ** 2 / 10 - (params["train.lr"] - 0.3) ** 2


SPACE = ["train.l2=log:1e-5..1", "train.lr=0.01..1"]


def _run(path: Path, total: int, execute=None, **changes) -> list[tuning.TrialRecord]:
    study, _ = _study(path, **changes)
    space = tuning.parse_space(SPACE)
    search = tuning.Search(study, space, RAW["train"], "classification", total=total)
    search.run(execute or (lambda batch: [tuning.Outcome(objective(p), f"e{n}") for n, p in batch]))
    return tuning.records(study)


def test_a_seed_gives_the_same_suggestions_one_trial_at_a_time(tmp_path):
    """Past TPE's 10 random start-up trials, so the model-based suggestions count too."""
    a = _run(tmp_path / "a.journal", 14)
    b = _run(tmp_path / "b.journal", 14)
    assert [t.params for t in a] == [t.params for t in b]
    c = _run(tmp_path / "c.journal", 14, seed=1)
    assert [t.params for t in a] != [t.params for t in c]
    assert all(t.state == "complete" for t in a)


def test_a_failing_trial_is_recorded_with_its_line_and_the_study_goes_on(tmp_path):
    def execute(batch):
        return [
            tuning.Outcome(error="error: train.lr: gradient descent diverged")
            if n == 1
            else tuning.Outcome(objective(p), f"e{n}")
            for n, p in batch
        ]

    found = _run(tmp_path / "s.journal", 4, execute)
    assert [t.state for t in found] == ["complete", "failed", "complete", "complete"]
    assert found[1].error == "error: train.lr: gradient descent diverged"
    assert found[0].experiment == "e0" and found[1].value is None


def test_an_interrupted_study_resumes_where_it_stopped(tmp_path):
    path = tmp_path / "s.journal"
    calls = []

    def stop_at_third(batch):
        calls.append(batch[0][0])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return [tuning.Outcome(objective(p), f"e{n}") for n, p in batch]

    with pytest.raises(KeyboardInterrupt):
        _run(path, 5, stop_at_third)
    study, resumed = _study(path)
    assert resumed
    assert [(t.state, t.error) for t in tuning.records(study)] == [
        ("complete", None),
        ("complete", None),
        ("failed", "interrupted"),
    ]
    found = _run(path, 5)  # five that ran to an end: the interrupted one is not counted
    assert [t.number for t in found] == [0, 1, 2, 3, 4, 5]
    assert [t.state for t in found].count("complete") == 5


def test_a_resumed_seeded_study_goes_on_instead_of_repeating_itself(tmp_path):
    """The sampler restarted from its seed would suggest again what the study ran (TPE's ten
    random start-up trials, the random sampler throughout); resuming continues from a seed
    made of the seed and the trials held, so it is reproducible and new."""
    path = tmp_path / "s.journal"
    _run(path, 2)
    resumed = _run(path, 4)
    assert resumed[2].params not in (resumed[0].params, resumed[1].params)
    assert resumed[3].params not in (resumed[0].params, resumed[1].params)
    again = tmp_path / "again.journal"
    _run(again, 2)
    assert [t.params for t in _run(again, 4)] == [t.params for t in resumed]


def test_an_interrupted_grid_point_runs_again_on_resuming(tmp_path):
    import optuna

    configs = [{"train.l2": v} for v in (0.1, 0.2, 0.3)]
    study, _ = _study(tmp_path / "g.journal", sampler="grid")
    for c in tuning.grid_left(study, configs):
        study.enqueue_trial(c)
    trial = study.ask()  # takes 0.1 ...
    trial.suggest_float("train.l2", 0.1, 0.3)
    trial.set_user_attr("error", tuning.INTERRUPTED)
    study.tell(trial, state=optuna.trial.TrialState.FAIL)  # ... and is interrupted
    assert tuning.grid_left(study, configs) == [{"train.l2": 0.1}]  # 0.2, 0.3 still wait


def test_a_torn_journal_is_one_line_and_left_alone(tmp_path):
    path = tmp_path / "s.journal"
    _run(path, 1)
    with open(path, "ab") as f:
        f.write(b'{"op_code": 5, "worker_id": "x", "trial_id"')
    size = path.stat().st_size
    with pytest.raises(WorkspaceError, match="its last line is incomplete"):
        _study(path)
    assert path.stat().st_size == size


def test_equal_ranges_written_differently_are_one_space():
    a = tuning.parse_space(["train.l2=log:1e-6..1", "train.lr=0.1..1"])
    b = tuning.parse_space(["train.lr=0.1..1.0", "train.l2=log:1e-06..1"])
    assert sorted(p.canonical() for p in a) == sorted(p.canonical() for p in b)


def test_a_run_killed_mid_trial_leaves_a_trial_that_resuming_fails(tmp_path):
    path = tmp_path / "s.journal"
    study, _ = _study(path)
    study.ask()  # the process died here: the trial stays "running" in the journal
    again, _ = _study(path)
    assert tuning.fail_stale(again) == 1
    assert [(t.state, t.error) for t in tuning.records(again)] == [("failed", "interrupted")]


def test_a_study_resumes_only_with_what_it_started_with(tmp_path):
    path = tmp_path / "s.journal"
    _run(path, 1)
    with pytest.raises(UsageError, match="started with sampler 'tpe', not 'random'"):
        _study(path, sampler="random")
    with pytest.raises(WorkspaceError, match="ran on commit aaaaaaaa, HEAD is bbbbbbbb"):
        _study(path, baseline="b" * 40)
    (tmp_path / "junk.journal").write_text("not a journal\n")
    with pytest.raises(UsageError, match="not an Optuna journal"):
        _study(tmp_path / "junk.journal")


def test_one_tune_per_study_at_a_time(tmp_path):
    with (
        tuning.running(tmp_path, "s"),
        pytest.raises(UsageError, match="another modelops tune"),
        tuning.running(tmp_path, "s"),
    ):
        pass


def test_the_best_and_the_importances():
    study = _study(None)
    space = tuning.parse_space(SPACE)
    search = tuning.Search(study, space, RAW["train"], "classification", total=12)
    search.run(lambda batch: [tuning.Outcome(objective(p), f"e{n}") for n, p in batch])
    top = tuning.best(study)
    assert top.value == max(t.value for t in tuning.records(study))
    weights, why = tuning.importances(study)
    assert why is None and set(weights) == {"train.l2", "train.lr"}
    assert math.isclose(sum(weights.values()), 1.0)


class _Terminal:
    """stderr as a terminal: what tqdm and Live write lands in ``text``."""

    def __init__(self) -> None:
        self.text = ""

    def isatty(self) -> bool:
        return True

    def write(self, chunk: str) -> int:
        self.text += chunk
        return len(chunk)

    def flush(self) -> None:
        pass


@pytest.mark.parametrize("tty", [True, False])
def test_the_live_table_on_a_terminal_and_off_it(monkeypatch, capsys, tty):
    from modelops.commands.tuning import Live

    term = _Terminal()
    if tty:
        monkeypatch.setattr("sys.stderr", term)
    live = Live("f1")
    done = tuning.TrialRecord(0, "complete", 0.9, {"train.l2": 0.012345678}, "s-000", None)
    failed = tuning.TrialRecord(1, "failed", None, {"train.l2": 2.0}, None, "error: diverged")
    live(tuning.Progress(done, 1, 2, done))
    live(tuning.Progress(failed, 2, 2, done))
    live.close()
    text = term.text if tty else capsys.readouterr().err
    assert "trial 0 (1/2)  f1=0.9  train.l2=0.01235  [best f1=0.9, trial 0]" in text
    assert "trial 1 (2/2)  failed: error: diverged  train.l2=2" in text
    assert ("2/2" in text and "trial/s" in text) if tty else "trial/s" not in text
