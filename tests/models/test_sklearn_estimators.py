"""The scikit-learn allow-list: canonical skops bytes, trusted types fixed in code."""

from __future__ import annotations

import numpy as np
import pytest
import skops.io as sio
from sklearn.datasets import make_classification, make_regression

from modelops import params
from modelops.errors import BundleError
from modelops.models import sklearn_estimators as ske


@pytest.mark.parametrize(("name", "task"), [(n, t) for n, ts in ske.ESTIMATORS.items() for t in ts])
def test_every_allowed_estimator_round_trips_with_its_fixed_trust_list(name, task):
    if task == "classification":
        X, y = make_classification(120, 4, random_state=0)
    else:
        X, y = make_regression(120, 4, random_state=0)
    p = params.validate(
        {
            "train": {
                "model": name,
                "random_forest": {"n_estimators": 5},
                "hist_gradient_boosting": {"max_iter": 5},
            },
            "data": {"task": task},
        }
    )
    est = ske.build(name, task, p.train).fit(X, y)
    first = ske.dumps(est)
    assert first == ske.dumps(ske.build(name, task, p.train).fit(X, y))  # same fit, same bytes
    # the fixed list covers exactly what skops reports as untrusted
    assert sorted(sio.get_untrusted_types(data=first)) == sorted(ske.TRUSTED[name])
    again = ske.loads(name, first)
    np.testing.assert_allclose(again.predict(X), est.predict(X), rtol=1e-12)


def test_a_file_with_types_outside_the_list_is_refused():
    X, y = make_classification(60, 4, random_state=0)
    p = params.validate({"train": {"model": "random_forest", "random_forest": {"n_estimators": 2}}})
    blob = ske.dumps(ske.build("random_forest", "classification", p.train).fit(X, y))
    # a bundle claiming to be a logistic regression may not smuggle in tree types
    with pytest.raises(BundleError, match="cannot load the sklearn_logistic_regression estimator"):
        ske.loads("sklearn_logistic_regression", blob)
    with pytest.raises(BundleError, match="not on the allow-list"):
        ske.loads("gradient_boosting", blob)
