"""Linear and logistic regression in numpy, with an intercept and L2.

Linear:   y = β0 + Σ βi·xi + ε, fitted in closed form or by gradient descent on
          L = 1/(2n)·||y − Xβ − β0||² + (l2/2)·||β||².
Logistic: P(y=k|x) = softmax(β0 + Xβ)_k (the sigmoid 1/(1+e^−(β0+Σβi·xi)) for two
          classes), fitted by gradient descent on mean log loss + (l2/2)·||β||².
These match scikit-learn's objectives with the penalty carried over (the tests check it):
LogisticRegression(C) minimises C·Σᵢ ℓᵢ + ½·||β||² with the intercept unpenalised (its
multinomial loss is our softmax one, with ½·||B||² over all K columns, as ours); divided by
C·n, which moves no minimiser, that is mean ℓ + ||β||²/(2·C·n): ours with l2 = 1/(C·n), so
C = 1/(n·l2) (scikit-learn's own lbfgs path sets l2_reg_strength = 1/(C·n) for exactly this
form). Ridge(alpha) minimises ||r||² + alpha·||β||²; divided by 2n, alpha = n·l2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelops.errors import BundleError
from modelops.models.gd import GDConfig, minimize

if TYPE_CHECKING:
    import numpy as np


# The logistic function and softmax in numpy, written as scipy.special writes them (expit:
# 1/(1 + exp(−x)) in the input's precision, xsf/expit.h; softmax and log_softmax: shifted by
# the row maximum, scipy/special/_logsumexp.py), so that a stage need not import scipy. In a
# pinned process (modelops.numerics) the bits are scipy's: tests/models/test_linear.py.
def _expit(x: np.ndarray) -> np.ndarray:
    import numpy as np

    with np.errstate(over="ignore"):  # exp(−x) = inf for x < −88 (float32): the limit, 0
        return np.divide(1, 1 + np.exp(-x))


def _log_softmax(z: np.ndarray) -> np.ndarray:
    import numpy as np

    top = np.max(z, axis=1, keepdims=True)
    top[~np.isfinite(top)] = 0
    shifted = z - top
    with np.errstate(divide="ignore"):
        return shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))


def _softmax(z: np.ndarray) -> np.ndarray:
    import numpy as np

    e = np.exp(z - np.max(z, axis=1, keepdims=True))
    return e / np.sum(e, axis=1, keepdims=True)


def _squared(l2: float):
    def objective(
        X: np.ndarray, y: np.ndarray, w: np.ndarray, grad: bool = True
    ) -> tuple[float, np.ndarray | None]:
        import numpy as np

        r = X @ w[:-1].astype(X.dtype) + X.dtype.type(w[-1]) - y
        n = len(y)
        loss = 0.5 * float(r @ r) / n + 0.5 * l2 * float(w[:-1] @ w[:-1])
        if not grad:
            return loss, None
        g = np.empty_like(w)
        g[:-1] = X.T @ r / n + l2 * w[:-1]
        g[-1] = r.mean(dtype=np.float64)
        return loss, g

    return objective


def _binary_logistic(l2: float):
    """Mean log loss for labels ``s`` in {−1, +1}: with q = P(observed class) = expit(s·z) the
    loss is −log q and its derivative in z is s·(q − 1) = p − y: one expit and one log per
    row, where logaddexp for the loss would add a second exp and log."""

    def objective(
        X: np.ndarray, s: np.ndarray, w: np.ndarray, grad: bool = True
    ) -> tuple[float, np.ndarray | None]:
        import numpy as np

        sz = X @ w[:-1].astype(X.dtype)
        sz += X.dtype.type(w[-1])
        sz *= s
        q = _expit(sz)
        # q underflows to 0 only when s·z < −745 (float64); there log q = s·z to within 1e-300.
        logq = np.log(q, out=sz, where=q > 0)
        n = len(s)
        loss = -float(logq.sum(dtype=np.float64)) / n + 0.5 * l2 * float(w[:-1] @ w[:-1])
        if not grad:
            return loss, None
        q -= 1
        q *= s
        g = np.empty_like(w)
        g[:-1] = X.T @ q / n + l2 * w[:-1]
        g[-1] = q.sum(dtype=np.float64) / n
        return loss, g

    return objective


def _softmax_logistic(l2: float):
    def objective(
        X: np.ndarray, y: np.ndarray, W: np.ndarray, grad: bool = True
    ) -> tuple[float, np.ndarray | None]:
        import numpy as np

        n = len(y)
        Z = X @ W[:-1].astype(X.dtype) + W[-1].astype(X.dtype)
        logp = _log_softmax(Z)
        rows = np.arange(n)
        loss = -float(logp[rows, y].sum(dtype=np.float64)) / n
        loss += 0.5 * l2 * float(np.sum(W[:-1] ** 2))
        if not grad:
            return loss, None
        R = np.exp(logp)
        R[rows, y] -= 1.0
        g = np.empty_like(W)
        g[:-1] = X.T @ R / n + l2 * W[:-1]
        g[-1] = R.sum(axis=0, dtype=np.float64) / n
        return loss, g

    return objective


class _Linear:
    """Shared state handling: ``coef_``/``intercept_`` and the loss curves."""

    kind = ""

    def __init__(self, gd: GDConfig | None = None) -> None:
        self.gd = gd or GDConfig()
        self.loss_curve_: list[float] = []
        self.validation_loss_curve_: list[float] = []
        self.lr_: float | None = None
        self.epochs_run_: int = 0
        # The training objective at the weights kept (the best iterate, not the last epoch's).
        self.final_loss_: float | None = None

    def _unpack(self, w: np.ndarray) -> None:
        self.coef_ = w[:-1].copy()
        self.intercept_ = w[-1].copy() if w.ndim > 1 else float(w[-1])

    def _decision(self, X: np.ndarray) -> np.ndarray:
        """X·β + β0 in X's precision: a float32 matrix is not copied to float64 for it."""
        return X @ self.coef_.astype(X.dtype, copy=False) + self.intercept_

    def _run(self, objective, w0, X, y, curvature: float) -> None:
        res = minimize(objective, w0, X, y, self.gd, curvature)
        self._unpack(res.w)
        self.loss_curve_ = res.loss_curve
        self.validation_loss_curve_ = res.validation_loss_curve
        self.lr_ = res.lr
        self.epochs_run_ = res.epochs_run
        self.final_loss_ = res.loss

    def importance(self) -> np.ndarray:
        """|coefficient| per input column (inputs are standardised, so they compare)."""
        import numpy as np

        c = np.abs(self.coef_)
        return c if c.ndim == 1 else c.mean(axis=1)

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        import numpy as np

        meta = {"kind": self.kind, "lr": self.lr_, "epochs_run": self.epochs_run_}
        return meta, {"coef": self.coef_, "intercept": np.asarray(self.intercept_)}


class LinearRegression(_Linear):
    """Least squares with optional L2; ``solver`` is "closed_form" or "gd"."""

    kind = "linear_regression"

    def __init__(self, solver: str = "closed_form", gd: GDConfig | None = None) -> None:
        super().__init__(gd)
        self.solver = solver

    def fit(self, X: np.ndarray, y: np.ndarray) -> LinearRegression:
        import numpy as np

        y = np.asarray(y, dtype=np.float64)
        if self.solver == "closed_form":
            # Centre so the intercept is not penalised, then solve the normal equations
            # (lstsq when unregularised, so rank-deficient X still gets the minimum-norm fit).
            x_mean, y_mean = X.mean(axis=0), y.mean()
            Xc = X - x_mean
            yc = y - y_mean
            n, d = X.shape
            if self.gd.l2 > 0:
                coef = np.linalg.solve(Xc.T @ Xc / n + self.gd.l2 * np.eye(d), Xc.T @ yc / n)
            else:
                coef = np.linalg.lstsq(Xc, yc, rcond=None)[0]
            self.coef_ = coef
            self.intercept_ = float(y_mean - x_mean @ coef)
            r = X @ coef + self.intercept_ - y
            loss = 0.5 * float(r @ r) / n + 0.5 * self.gd.l2 * float(coef @ coef)
            self.loss_curve_ = [loss]
            self.final_loss_ = loss
            return self
        w0 = np.zeros(X.shape[1] + 1)
        w0[-1] = y.mean()
        with np.errstate(over="ignore"):  # a target beyond float32 diverges with a clear error
            yt = y.astype(self.gd.dtype)
        self._run(_squared(self.gd.l2), w0, X, yt, curvature=1.0)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self._decision(X)

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> LinearRegression:
        m = cls()
        m.coef_, m.intercept_ = _coef_intercept(cls.kind, arrays, multiclass=False)
        m.lr_, m.epochs_run_ = meta.get("lr"), meta.get("epochs_run", 0)
        return m


class LogisticRegression(_Linear):
    """Binary (sigmoid) or multinomial (softmax) logistic regression by gradient descent."""

    kind = "logistic_regression"

    def fit(self, X: np.ndarray, y: np.ndarray) -> LogisticRegression:
        """``y`` holds class indices 0..K-1."""
        import numpy as np

        y = np.asarray(y, dtype=np.int64)
        k = int(y.max()) + 1
        d = X.shape[1]
        if k <= 2:
            # Hessian of the mean log loss ≤ ¼·XᵀX/n; Böhning's bound ½·XᵀX/n for softmax.
            signs = (2 * y - 1).astype(self.gd.dtype)
            self._run(_binary_logistic(self.gd.l2), np.zeros(d + 1), X, signs, 0.25)
        else:
            self._run(_softmax_logistic(self.gd.l2), np.zeros((d + 1, k)), X, y, 0.5)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        import numpy as np

        z = self._decision(X)
        if z.ndim == 1:
            p = _expit(z)
            return np.column_stack([1.0 - p, p])
        return _softmax(z)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.predict_proba(X).argmax(axis=1)

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> LogisticRegression:
        m = cls()
        m.coef_, m.intercept_ = _coef_intercept(cls.kind, arrays, multiclass=True)
        m.lr_, m.epochs_run_ = meta.get("lr"), meta.get("epochs_run", 0)
        return m


def _coef_intercept(
    kind: str, arrays: dict[str, np.ndarray], multiclass: bool
) -> tuple[np.ndarray, float | np.ndarray]:
    """The saved ``coef`` and ``intercept``, refused unless their shapes are the ones ``state``
    writes: coef (d,) with a scalar intercept, or (a multiclass model) coef (d, k) with
    intercept (k,), k ≥ 3. Bundles written before the writer kept 0-d arrays
    stored the scalar intercept as shape (1,); that one legacy shape is read as the scalar."""
    try:
        coef, intercept = arrays["coef"], arrays["intercept"]
    except KeyError as exc:
        raise BundleError(f"bundle: the {kind} model has no {exc.args[0]!r} array") from None
    shapes = f"coef {coef.shape}, intercept {intercept.shape}"
    if coef.dtype.kind != "f" or intercept.dtype.kind != "f":
        raise BundleError(
            f"bundle: the {kind} model's arrays are not floats ({coef.dtype}, "
            f"{intercept.dtype}); retrain it with `dvc repro`"
        )
    if coef.ndim == 1 and intercept.shape in ((), (1,)):
        return coef, float(intercept.reshape(()))
    if multiclass and coef.ndim == 2 and coef.shape[1] >= 3 and intercept.shape == coef.shape[1:]:
        return coef, intercept
    raise BundleError(
        f"bundle: the {kind} model's arrays have shapes {shapes}, which this version of "
        f"modelops did not write; retrain it with `dvc repro`"
    )
