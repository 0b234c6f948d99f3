"""The search of `modelops tune`, not its plumbing: on a seeded synthetic classification task,
TPE (`tuning.Search` with `tuning.make_sampler("tpe", seed)`, the code `tune` runs) against a
64-point grid of the same space. Each trial fits the pipeline's own preprocessing and model
(`models.build`) and scores F1 on the test split with `modelops.metrics`, in this process.

Target (issue 17): TPE gets within 0.5 points of the grid's best F1 in at most a third of the
grid's trials (21), as the median over seeds."""

from __future__ import annotations

import statistics
import time

from common import machine, record, verdict

SEEDS = (0, 1, 2, 3, 4)
# two continuous params and one choice; the grid takes 4 values of each
LR = (0.01, 0.04, 0.15, 0.6)
L2REG = (0.001, 0.03, 1.0, 30.0)
LEAVES = (3, 7, 15, 31)
SPACE = [
    "train.hist_gradient_boosting.learning_rate=log:0.01..0.6",
    "train.hist_gradient_boosting.l2_regularization=log:0.001..30",
    "train.hist_gradient_boosting.max_leaf_nodes=3,7,15,31",
]
BUDGET = 64 // 3
POINTS = 0.005  # half a point of F1


def task():
    """Features and labels of the synthetic source, prepared as `prepare` and `train` do."""
    from modelops import data, params
    from modelops.features import Preprocessor

    raw = params.read_yaml("../params.yaml")
    raw["data"] = {
        **raw["data"],
        "source": "synthetic",
        "synthetic": {
            "task": "classification",
            "n_rows": 3000,
            "n_features": 20,
            "n_informative": 8,
            "n_classes": 2,
            "noise": 0.15,
            "seed": 7,
        },
    }
    raw["train"]["model"] = "hist_gradient_boosting"
    raw["train"]["hist_gradient_boosting"]["max_iter"] = 60
    p = params.validate(raw)
    train, test, schema = data.prepare(p.data, p.split)
    pre = Preprocessor(schema.numeric, schema.categorical, "median", True).fit(train)
    y_train = schema.encode_labels(train[schema.target])
    y_test = schema.encode_labels(test[schema.target])
    return raw, schema, pre.transform(train), y_train, pre.transform(test), y_test


def make_objective(raw, schema, X, y, Xt, yt):
    import numpy as np

    from modelops import models
    from modelops.metrics import precision_recall_f1
    from modelops.params import TrainParams

    def f1(chosen: dict) -> float:
        hgb = dict(raw["train"]["hist_gradient_boosting"])
        train = {**raw["train"], "hist_gradient_boosting": hgb}
        for key, value in chosen.items():
            hgb[key.rsplit(".", 1)[1]] = value
        est = models.build(TrainParams.model_validate(train), schema.task).fit(X, y)
        pred = np.argmax(est.predict_proba(Xt), axis=1)
        return float(precision_recall_f1(yt, pred, 2, positive=1)[2])

    return f1


def tpe_run(seed: int, raw, f1) -> list[float]:
    import optuna

    from modelops import tuning

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=tuning.make_sampler("tpe", seed))
    space = tuning.parse_space(SPACE)
    search = tuning.Search(study, space, raw["train"], "classification", total=BUDGET)
    search.run(lambda batch: [tuning.Outcome(f1(p), None) for _, p in batch])
    return [t.value for t in tuning.records(study)]


def main() -> None:
    raw, schema, X, y, Xt, yt = task()
    f1 = make_objective(raw, schema, X, y, Xt, yt)
    start = time.perf_counter()
    grid = [
        f1(
            {
                "train.hist_gradient_boosting.learning_rate": lr,
                "train.hist_gradient_boosting.l2_regularization": reg,
                "train.hist_gradient_boosting.max_leaf_nodes": leaves,
            }
        )
        for lr in LR
        for reg in L2REG
        for leaves in LEAVES
    ]
    grid_time = time.perf_counter() - start
    target = max(grid) - POINTS
    rows, reached, bests = [], [], []
    for seed in SEEDS:
        values = tpe_run(seed, raw, f1)
        hit = next((i + 1 for i, v in enumerate(values) if v >= target), None)
        reached.append(hit if hit is not None else float("inf"))
        bests.append(max(values))
        rows.append(
            f"| {seed} | {max(values):.4f} | {hit if hit is not None else f'not in {BUDGET}'} |"
        )
    median = statistics.median(reached)
    met = median <= BUDGET
    record(
        "Tuning: TPE against a 64-point grid",
        f"""
A seeded synthetic task (3,000 rows, 20 features, 8 informative, 15 % labels flipped), the
`hist_gradient_boosting` model with 60 iterations; params: `learning_rate` (log 0.01..0.6),
`l2_regularization` (log 0.001..30) and `max_leaf_nodes` (3, 7, 15, 31). The grid takes 4
values of each (64 fits, {grid_time:.0f} s); TPE runs {BUDGET} trials (a third of the grid)
per seed through `tuning.Search`, the code `modelops tune` runs, with the trial's F1 computed
in this process instead of through `dvc exp run`. {dt_now()}, {machine()}.

Grid best F1: **{max(grid):.4f}** (median of the grid {statistics.median(grid):.4f}, worst
{min(grid):.4f}); the target is {target:.4f} (half a point below).

| seed | TPE best F1 in {BUDGET} trials | trials to reach {target:.4f} |
|---|---|---|
{chr(10).join(rows)}

Median trials to reach the target: **{median if median != float("inf") else "not reached"}**
of {BUDGET} allowed (target: at most a third of the grid's 64: {"met" if met else "NOT met"});
median best F1 of TPE {statistics.median(bests):.4f}.
""",
        rows=[
            (
                "`tune`'s search: TPE (`tuning.Search`) vs a 64-point grid on a seeded synthetic "
                "task (two continuous params, one choice), trials to within 0.5 points of the "
                f"grid's best F1, median of {len(SEEDS)} seeds",
                f"{median if median != float('inf') else 'not reached'} trials (seeds: "
                + ", ".join(str(r) if r != float("inf") else f"not in {BUDGET}" for r in reached)
                + ")",
                f"≤ {BUDGET} (a third of the grid) {verdict(met)}",
            )
        ],
    )


def dt_now() -> str:
    import datetime as dt

    return str(dt.date.today())


if __name__ == "__main__":
    main()
