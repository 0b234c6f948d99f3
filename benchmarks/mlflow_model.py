"""Run inside the MLflow environment that serving.py builds: fit the baseline's scikit-learn
pipeline (baseline_server.build: StandardScaler + LogisticRegression, the same objective as
modelops' model) and save it with `mlflow.sklearn.save_model` in skops format, for
`mlflow models serve`."""

from __future__ import annotations

import sys

import mlflow.sklearn
import skops.io
from baseline_server import build


def main() -> None:
    train, target, l2, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    pipe, _ = build(train, target, l2)
    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(pipe))
    mlflow.sklearn.save_model(pipe, out, serialization_format="skops", skops_trusted_types=trusted)


if __name__ == "__main__":
    main()
