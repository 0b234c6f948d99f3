"""The serving baseline: a minimal FastAPI endpoint calling the equivalent fitted
scikit-learn pipeline's predict_proba, with no validation at all."""

from __future__ import annotations

import json
import sys

import pandas as pd
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def build(train_file: str, target: str, l2: float):
    frame = pd.read_feather(train_file)
    y = frame.pop(target)
    # the same objective as modelops' logistic regression: C = 1 / (n * l2)
    pipe = make_pipeline(
        StandardScaler(), LogisticRegression(C=1.0 / (l2 * len(frame)), max_iter=5000)
    )
    return pipe.fit(frame, y), list(frame.columns)


def main() -> None:
    train, target, l2, port = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    pipe, columns = build(train, target, l2)
    app = FastAPI()

    @app.post("/v1/predict")
    async def predict(request: Request):
        records = await request.json()
        proba = pipe.predict_proba(pd.DataFrame(records, columns=columns))
        return Response(
            json.dumps({"probabilities": proba.tolist()}), media_type="application/json"
        )

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
