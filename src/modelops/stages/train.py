"""Stage train: fit preprocessing and the model on the training split, write the bundle."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from modelops.stages import entry, parser, run, writing


def final_loss(model, X, y, task: str) -> float:
    """Training loss of a fitted model without epochs: log loss, or half the MSE."""
    import numpy as np

    from modelops.metrics import log_loss

    if task == "classification":
        return log_loss(y, model.predict_proba(X))
    return float(0.5 * np.mean((model.predict(X) - y) ** 2))


def _body(args: argparse.Namespace) -> None:
    import json
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from modelops import bundle, models, params
    from modelops.data import SCHEMA_FILE, TRAIN_FILE, Schema, read_prepared
    from modelops.errors import ParamsError
    from modelops.features import Preprocessor
    from modelops.files import md5_file, write_json
    from modelops.profile import build_profile

    p = params.load(args.params)
    schema = Schema.from_dict(json.loads((args.data / SCHEMA_FILE).read_bytes()))
    # train.model: auto becomes the task's model here, before any work, and the bundle
    # records the real kind. A task set in params (data.task, a bundled or synthetic
    # source) was checked against the model when params.yaml was validated, so a
    # mismatch here is with the task prepare inferred from the CSV's target.
    how = f" (inferred from data.target {schema.target!r}; set data.task if that is wrong)"
    try:
        train = p.train.for_task(schema.task, how)
    except ParamsError as exc:
        raise ParamsError(f"{args.params}: {exc}") from None
    # hashlib releases the GIL: the split's md5 (for the bundle's record) is taken beside the
    # fit rather than after it.
    hashing = ThreadPoolExecutor(1)
    train_md5 = hashing.submit(md5_file, args.data / TRAIN_FILE)
    hashing.shutdown(wait=False)
    frame = read_prepared(args.data / TRAIN_FILE)
    pre = Preprocessor(
        schema.numeric, schema.categorical, p.features.impute_numeric, p.features.scale
    ).fit(frame)
    # A matrix too large to hold well is a mapped scratch file beside the bundle (unlinked
    # already: nothing is left behind).
    X = pre.transform(frame, dtype=models.input_dtype(train), scratch=args.model.parent)
    if schema.task == "classification":
        y = schema.encode_labels(frame[schema.target])
    else:
        y = frame[schema.target].to_numpy(dtype=np.float64)
    est = models.build(train, schema.task).fit(X, y)
    curve = est.loss_curve_ or [final_loss(est, X, y, schema.task)]
    # Gradient descent keeps its best iterate, whose loss need not be the last epoch's.
    fitted_loss = getattr(est, "final_loss_", None)
    fitted_loss = curve[-1] if fitted_loss is None else fitted_loss
    val_curve = est.validation_loss_curve_
    profile, profile_arrays = build_profile(
        pre, frame, X, est, schema.task, schema.classes, train.seed
    )
    model = bundle.Model(
        schema=schema,
        preprocessor=pre,
        estimator=est,
        info={
            "params": {"train": train.used(), "features": p.features.model_dump()},
            "train_md5": train_md5.result(),
            "fit": {
                "epochs_run": len(est.loss_curve_),
                "lr": getattr(est, "lr_", None),
                "final_loss": fitted_loss,
            },
            "versions": bundle.library_versions(),
        },
        profile=profile,
        profile_arrays=profile_arrays,
    )
    loss = [
        {"epoch": i + 1, "loss": v, **({"val_loss": val_curve[i]} if val_curve else {})}
        for i, v in enumerate(curve)
    ]
    with writing("train"):
        bundle.save(args.model, model)
        write_json(args.loss, loss)
        print(
            f"train: {train.model} on {X.shape[0]} rows x {X.shape[1]} columns, "
            f"{len(est.loss_curve_)} epochs, final loss {fitted_loss:.6g}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    p = parser("train", __doc__)
    p.add_argument("--data", type=Path, required=True, help="prepared data directory")
    p.add_argument("--model", type=Path, required=True, help="model bundle to write (.npz)")
    p.add_argument("--loss", type=Path, required=True, help="loss-per-epoch plot file to write")
    return run(_body, p, argv)


if __name__ == "__main__":
    entry(main)
