"""The baseline of benchmarks/training.py: the plain script a user would write to do the train
stage's job by hand on the same prepared data: read the training split, impute (median) and
standardise, fit LogisticRegression() or LinearRegression(), save the fitted pipeline. With
--no-impute it only standardises (what a user might write for data without missing values);
with --score it then prints the test split's accuracy (or R²) as JSON.
Usage: python sklearn_train.py PREPARED_DIR MODEL_FILE classification|regression
       [--no-impute] [--score]"""

import json
import sys
from pathlib import Path

import joblib
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

prepared, model_file, task = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
train = pd.read_feather(prepared / "train.arrow")
X, y = train.drop(columns="target"), train["target"]
estimator = LogisticRegression() if task == "classification" else LinearRegression()
steps = [] if "--no-impute" in sys.argv else [SimpleImputer(strategy="median")]
model = make_pipeline(*steps, StandardScaler(), estimator).fit(X, y)
joblib.dump(model, model_file)
if "--score" in sys.argv:
    test = pd.read_feather(prepared / "test.arrow")
    pred = model.predict(test.drop(columns="target"))
    if task == "classification":
        print(json.dumps({"accuracy": accuracy_score(test["target"], pred)}))
    else:
        print(json.dumps({"r2": r2_score(test["target"], pred)}))
