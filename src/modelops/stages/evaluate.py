"""Stage evaluate: score the bundle on the test split; write metrics, plots and the model card."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from modelops.stages import entry, parser, run, writing


def _finite(out, what: str, data: Path):
    """The model's outputs on the test split, if every one is finite; else a DataError
    naming the test rows (features far beyond anything in training overflow the model)."""
    import numpy as np

    from modelops.data import TEST_FILE
    from modelops.errors import DataError

    bad = ~np.isfinite(out) if out.ndim == 1 else ~np.isfinite(out).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise DataError(
            f"evaluate: the model gives no finite {what} for {len(rows)} of {len(out)} rows of "
            f"{data / TEST_FILE} (row {', '.join(map(str, rows[:3]))}{', ...' * (len(rows) > 3)}"
            f", counted from 0): their features lie far outside the training data; correct or "
            f"drop them in the source data and run prepare again"
        )
    return out


def _body(args: argparse.Namespace) -> None:
    import hashlib

    import numpy as np

    from modelops import bundle, params
    from modelops import evaluation as ev
    from modelops.data import TEST_FILE, read_prepared
    from modelops.errors import DataError
    from modelops.files import atomic_dir, md5_bytes, write_json, write_text

    p = params.load(args.params)
    # DVC records the train stage's outputs in dvc.lock before evaluate runs.
    model, data = bundle.load_locked(args.model, args.lock)
    s = model.schema
    frame = read_prepared(args.data / TEST_FILE)
    X = model.design_matrix(frame, scratch=args.metrics.parent)  # a large one: mapped
    extra: dict = {}
    overflow = np.errstate(over="ignore", invalid="ignore")  # _finite reports it instead
    if s.task == "classification":
        y = s.encode_labels(frame[s.target])
        with overflow:
            proba = _finite(model.estimator.predict_proba(X), "probabilities", args.data)
        pos = s.classes.index(s.positive_class) if s.positive_class is not None else None
        metrics = ev.classification_metrics(y, proba, pos)
        plots = ev.classification_plots(y, proba, s.classes, pos, p.evaluate.curve_points)
        extra["confusion_matrix"] = ev.confusion_matrix(y, proba, s.classes)
    else:
        y = frame[s.target].to_numpy(dtype=np.float64)
        with overflow:
            pred = np.asarray(model.estimator.predict(X), dtype=np.float64)
        pred = _finite(pred, "prediction", args.data)
        metrics = ev.regression_metrics(y, pred)
        plots = ev.regression_plots(y, pred)
    undefined = [k for k, v in metrics.items() if not np.isfinite(v)]
    if undefined:  # JSON has no NaN; and a card or a gate cannot use one
        raise DataError(
            f"evaluate: {', '.join(undefined)} cannot be computed on the test split's "
            f"{len(y)} row(s) (too few rows, one target value, or values beyond float "
            "range); give more rows or a larger data.test_size"
        )
    method, importance = ev.importance(model, X, y, p.evaluate)
    plots["importance"] = importance
    extra.update(importance_method=method, importance=importance[:20])
    model_file = {
        "path": Path(args.model).as_posix(),
        "md5": md5_bytes(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
    }
    card = ev.build_card(model, model_file=model_file, metrics=metrics, extra=extra)
    # Everything is computed; only now write, each file atomically.
    with writing("evaluate"):
        with atomic_dir(args.plots) as tmp:
            for name in ev.PLOTS:
                write_json(tmp / f"{name}.json", plots.get(name, []))
        write_json(args.card.with_suffix(".json"), card)
        write_text(args.card.with_suffix(".md"), ev.card_markdown(card))
        write_json(args.metrics, metrics)
        print("evaluate: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))


def main(argv: Sequence[str] | None = None) -> int:
    p = parser("evaluate", __doc__)
    p.add_argument("--data", type=Path, required=True, help="prepared data directory")
    p.add_argument("--model", type=Path, required=True, help="model bundle to evaluate")
    p.add_argument("--metrics", type=Path, required=True, help="metrics JSON to write")
    p.add_argument("--plots", type=Path, required=True, help="directory for plot data")
    p.add_argument("--card", type=Path, required=True, help="model card path (writes .json, .md)")
    p.add_argument("--lock", default="dvc.lock", help="dvc.lock to verify the bundle against")
    return run(_body, p, argv)


if __name__ == "__main__":
    entry(main)
