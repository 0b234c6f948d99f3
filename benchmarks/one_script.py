"""The baseline of benchmarks/pipeline.py: the one script a user would write by hand instead
of the pipeline (issue 8): pandas read_csv, train_test_split, LogisticRegression().fit,
predict, accuracy / F1 / ROC AUC. Usage: python one_script.py data.csv target"""

import sys

import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.model_selection import train_test_split

frame = pd.read_csv(sys.argv[1])
X, y = frame.drop(columns=sys.argv[2]), frame[sys.argv[2]]
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.2, random_state=42, stratify=y
)
model = LogisticRegression().fit(X_train, y_train)
pred = model.predict(X_test)
score = model.predict_proba(X_test)[:, 1]
print(
    f"accuracy {accuracy_score(y_test, pred):.4f} f1 {f1_score(y_test, pred):.4f} "
    f"roc_auc {roc_auc_score(y_test, score):.4f}"
)
