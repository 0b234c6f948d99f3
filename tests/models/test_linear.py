"""Numpy models against independent references: lstsq, Ridge, scikit-learn's LogisticRegression."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, make_classification, make_regression
from sklearn.linear_model import LogisticRegression as SkLogistic
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler

from modelops.errors import ModelopsError
from modelops.models.gd import GDConfig
from modelops.models.linear import LinearRegression, LogisticRegression


@pytest.fixture(scope="module")
def reg():
    X, y = make_regression(300, 6, noise=5.0, random_state=1)
    return StandardScaler().fit_transform(X), y + 7.0


@pytest.fixture(scope="module")
def clf():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def test_closed_form_matches_lstsq(reg):
    X, y = reg
    m = LinearRegression(solver="closed_form").fit(X, y)
    Xa = np.hstack([X, np.ones((len(X), 1))])
    ref = np.linalg.lstsq(Xa, y, rcond=None)[0]
    np.testing.assert_allclose(m.coef_, ref[:-1], rtol=1e-10)
    assert m.intercept_ == pytest.approx(ref[-1], rel=1e-10)


def test_closed_form_l2_matches_ridge(reg):
    X, y = reg
    l2 = 0.05
    m = LinearRegression(solver="closed_form", gd=GDConfig(l2=l2)).fit(X, y)
    ref = Ridge(alpha=l2 * len(X)).fit(X, y)
    np.testing.assert_allclose(m.coef_, ref.coef_, rtol=1e-8)
    assert m.intercept_ == pytest.approx(ref.intercept_, rel=1e-8)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gradient_descent_reaches_the_closed_form(reg, dtype):
    X, y = reg
    gd = GDConfig(l2=0.01, epochs=5000, tol=0.0, n_iter_no_change=50, dtype=dtype)
    m = LinearRegression(solver="gd", gd=gd).fit(X, y)
    ref = Ridge(alpha=0.01 * len(X)).fit(X, y)
    np.testing.assert_allclose(m.coef_, ref.coef_, rtol=1e-6, atol=1e-6)
    assert m.intercept_ == pytest.approx(ref.intercept_, rel=1e-6)
    assert m.loss_curve_[0] > m.loss_curve_[-1]


def test_minibatch_gradient_descent_gets_close(reg):
    X, y = reg
    gd = GDConfig(lr=0.05, momentum=0.0, batch_size=32, epochs=300, tol=0.0, n_iter_no_change=300)
    m = LinearRegression(solver="gd", gd=gd).fit(X, y)
    ref = Ridge(alpha=1e-9).fit(X, y)
    np.testing.assert_allclose(m.predict(X), ref.predict(X), rtol=0.02, atol=1.0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_binary_logistic_matches_sklearn(clf, dtype):
    X, y = clf
    l2 = 0.01
    gd = GDConfig(l2=l2, epochs=20000, tol=0.0, n_iter_no_change=100, dtype=dtype)
    m = LogisticRegression(gd=gd).fit(X, y)
    ref = SkLogistic(C=1.0 / (l2 * len(X)), tol=1e-12, max_iter=10000).fit(X, y)
    np.testing.assert_allclose(m.coef_, ref.coef_[0], atol=1e-4)
    assert m.intercept_ == pytest.approx(ref.intercept_[0], abs=1e-4)
    np.testing.assert_allclose(m.predict_proba(X), ref.predict_proba(X), atol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_multinomial_logistic_matches_sklearn(dtype):
    X, y = make_classification(400, 5, n_informative=4, n_redundant=0, n_classes=3, random_state=0)
    X = StandardScaler().fit_transform(X)
    l2 = 0.02
    gd = GDConfig(l2=l2, epochs=20000, tol=0.0, n_iter_no_change=100, dtype=dtype)
    m = LogisticRegression(gd=gd)
    m.fit(X, y)
    ref = SkLogistic(C=1.0 / (l2 * len(X)), tol=1e-12, max_iter=10000).fit(X, y)
    np.testing.assert_allclose(m.predict_proba(X), ref.predict_proba(X), atol=1e-5)
    np.testing.assert_allclose(m.coef_.T, ref.coef_, atol=1e-4)


def test_fit_twice_same_model(clf):
    X, y = clf
    gd = GDConfig(l2=0.01, batch_size=64, epochs=20, early_stopping=True)
    a = LogisticRegression(gd=gd).fit(X, y)
    b = LogisticRegression(gd=gd).fit(X, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert a.loss_curve_ == b.loss_curve_


def test_early_stopping_records_validation_loss_and_stops(clf):
    X, y = clf
    gd = GDConfig(l2=0.0, epochs=5000, early_stopping=True, n_iter_no_change=5, tol=1e-4)
    m = LogisticRegression(gd=gd).fit(X, y)
    assert len(m.validation_loss_curve_) == len(m.loss_curve_) == m.epochs_run_
    assert m.epochs_run_ < 5000


def test_divergence_is_a_clear_error(reg):
    X, y = reg
    with pytest.raises(ModelopsError, match=r"train.lr: gradient descent diverged"):
        LinearRegression(solver="gd", gd=GDConfig(lr=100.0, epochs=200)).fit(X, y * 1e30)


def test_logistic_loss_survives_extreme_margins():
    """Separable data pushes s·z far below −745 (float64) where expit underflows to 0;
    the loss must stay finite (log q = s·z there) instead of reading as divergence."""
    from modelops.models.linear import _binary_logistic

    X = np.array([[1.0], [-1.0]])
    s = np.array([-1.0, 1.0])  # both rows on the wrong side of a huge weight
    w = np.array([1000.0, 0.0])
    loss, grad = _binary_logistic(0.0)(X, s, w)
    assert loss == pytest.approx(1000.0)
    p, y = np.array([1.0, 0.0]), np.array([0.0, 1.0])  # expit(z), labels from s
    np.testing.assert_allclose(grad, [X[:, 0] @ (p - y) / 2, (p - y).mean()])
