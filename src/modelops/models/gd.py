"""Gradient descent shared by the numpy models: Nesterov momentum, mini-batches, early stopping.

Parameters are one array ``w`` whose last row is the intercept; an objective
``(X, y, w, grad=True)`` returns (loss, gradient, or None when ``grad`` is false) of the mean
loss plus ``l2/2 * ||w[:-1]||²`` (the intercept is not penalised), i.e. the update is
β ← β − α·∂L/∂β.

Full batch, momentum is restarted whenever it carries the step uphill, and training stops when
the gradient says the loss is within ``tol`` of its minimum; the weights returned are the best
seen (lowest training loss, or validation loss with ``early_stopping``), never merely the last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelops.errors import ParamsError

if TYPE_CHECKING:
    import numpy as np

Objective = Callable[..., tuple[float, Any]]


# momentum: auto with mini-batches (the value the full batch used before it had a schedule).
MINIBATCH_MOMENTUM = 0.9


@dataclass
class GDConfig:
    lr: float | str = "auto"
    epochs: int = 2000
    batch_size: int | None = None
    momentum: float | str = "auto"
    l2: float = 0.0
    tol: float = 1e-6
    early_stopping: bool = False
    validation_fraction: float = 0.1
    n_iter_no_change: int = 10
    random_state: int = 0
    # The matrix passes dominate an epoch; float32 halves the bytes they read. Parameters,
    # losses and gradient sums stay float64.
    dtype: str = "float32"


@dataclass
class GDResult:
    w: Any
    lr: float
    epochs_run: int
    loss_curve: list[float] = field(default_factory=list)
    validation_loss_curve: list[float] = field(default_factory=list)
    loss: float = float("nan")  # the training objective at ``w``


def largest_eigenvalue(X: np.ndarray) -> float:
    """Largest eigenvalue of [X 1]ᵀ[X 1]/n: the curvature bound that sets the step size."""
    import numpy as np

    n, d = X.shape
    if d <= 2000:
        # The blocks of [X 1]ᵀ[X 1] without building [X 1], which would copy X.
        G = np.empty((d + 1, d + 1))
        G[:d, :d] = X.T @ X
        G[:d, d] = G[d, :d] = X.sum(axis=0, dtype=np.float64)
        G[d, d] = n
        return float(np.linalg.eigvalsh(G / n)[-1])
    rng = np.random.default_rng(0)
    v = rng.standard_normal(d + 1)
    lam = 0.0
    for _ in range(100):
        u = X.T @ (X @ v[:-1] + v[-1]) / n
        u = np.append(u, (X @ v[:-1] + v[-1]).mean())
        lam = float(np.linalg.norm(u))
        v = u / lam
    return lam


def _split(X: np.ndarray, y: np.ndarray, cfg: GDConfig, rng) -> tuple:
    """(X_train, y_train, X_val, y_val): a seeded validation split with early stopping."""
    import numpy as np

    if not cfg.early_stopping:
        return X, y, None, None
    perm = rng.permutation(len(X))
    n_val = max(1, int(np.ceil(cfg.validation_fraction * len(X))))
    val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    return X[train_idx], y[train_idx], X[val_idx], y[val_idx]


def _full_batch_step(objective: Objective, X, y, w, v, k: int, lr: float, momentum):
    """One Nesterov step on the whole set: (w, v, k, look-ahead point, its loss, gradient)."""
    import numpy as np

    mu = k / (k + 3) if momentum == "auto" else momentum
    k += 1
    point = w + mu * v
    loss, g = objective(X, y, point)
    v = mu * v - lr * g
    w = w + v
    # Adaptive restart (O'Donoghue & Candès 2015, gradient scheme): when the step runs uphill
    # (the gradient at the look-ahead has a positive component along it), momentum is
    # overshooting the valley: drop it. The loss then falls (nearly) monotonically instead of
    # rippling, which is what kept the no-improvement rule from firing on a climb back.
    if float(np.vdot(g, v)) > 0:
        v = np.zeros_like(v)
        k = 0
    return w, v, k, point, loss, g


def _minibatch_epoch(objective: Objective, X, y, w, v, lr: float, cfg: GDConfig, rng):
    """One pass over shuffled mini-batches: (w, v, last gradient)."""
    # Noisy gradients cannot tell overshoot from noise: constant momentum, no restart.
    mu = MINIBATCH_MOMENTUM if cfg.momentum == "auto" else cfg.momentum
    order = rng.permutation(len(X))
    g = None
    for start in range(0, len(X), cfg.batch_size):
        idx = order[start : start + cfg.batch_size]
        look = w + mu * v
        _, g = objective(X[idx], y[idx], look)
        v = mu * v - lr * g
        w = w + v
    return w, v, g


def minimize(
    objective: Objective,
    w0: np.ndarray,
    X: np.ndarray,
    y: np.ndarray,
    cfg: GDConfig,
    curvature: float,
) -> GDResult:
    """Minimise ``objective`` from ``w0``; ``curvature`` scales λmax into a Lipschitz bound."""
    import numpy as np

    rng = np.random.default_rng(cfg.random_state)
    Xt, yt, Xv, yv = _split(X.astype(cfg.dtype, copy=False), y, cfg, rng)
    n_train = len(Xt)
    if cfg.lr == "auto":
        lr = 1.0 / (curvature * largest_eigenvalue(Xt) + cfg.l2)
    else:
        lr = float(cfg.lr)
    full_batch = cfg.batch_size is None or cfg.batch_size >= n_train

    w = w0.copy()
    v = np.zeros_like(w)
    # The candidate kept is a point whose objective is known: full batch, the look-ahead
    # point the epoch's gradient was taken at (its loss is the epoch's loss, free);
    # mini-batch, the weights the epoch ends with (one extra loss-only pass).
    best, kept_w, kept_train, stale = np.inf, w.copy(), np.nan, 0
    k = 0
    # With l2 > 0 the objective is l2-strongly convex in the coefficients, so at any point
    # f − f* ≤ ‖∇f‖²/(2·l2): the gradient at the look-ahead point bounds how far its loss is
    # from the minimum (the unpenalised intercept makes it an estimate in that one direction).
    # Full batch without a validation split, training stops when that is below tol.
    certify = full_batch and Xv is None and cfg.l2 > 0
    result = GDResult(w=w, lr=lr, epochs_run=0)
    # Overflow is caught below as divergence and reported; numpy need not warn too.
    with np.errstate(over="ignore", invalid="ignore"):
        for epoch in range(cfg.epochs):
            if full_batch:
                w, v, k, point, epoch_loss, g = _full_batch_step(
                    objective, Xt, yt, w, v, k, lr, cfg.momentum
                )
            else:
                w, v, g = _minibatch_epoch(objective, Xt, yt, w, v, lr, cfg, rng)
                point = w
                epoch_loss = objective(Xt, yt, point, grad=False)[0]
            if not np.isfinite(epoch_loss) or not np.all(np.isfinite(w)):
                raise ParamsError(
                    f"train.lr: gradient descent diverged at epoch {epoch + 1} (loss {epoch_loss}) "
                    f"with lr {lr:g}; lower train.lr or set it to auto"
                )
            result.loss_curve.append(float(epoch_loss))
            monitored = epoch_loss
            if Xv is not None:
                point = w  # the validation loss is measured where the epoch ends
                monitored = float(objective(Xv, yv, w, grad=False)[0])
                result.validation_loss_curve.append(monitored)
            converged = certify and float(np.vdot(g, g)) <= 2 * cfg.l2 * cfg.tol
            # scikit-learn's SGD rule: no improvement by more than tol for n_iter_no_change
            # epochs. Where the gradient can tell how far the minimum is, it decides, and this
            # rule only ends a run whose loss no longer falls at all (float precision's floor).
            stale = stale + 1 if monitored > best - (0.0 if certify else cfg.tol) else 0
            best = min(best, monitored)
            # Symmetrically, a later iterate within tol of the lowest loss counts as good as it
            # and is kept: near the minimum, float32 rounding moves the loss more than the steps
            # do, while the later iterates' gradients keep improving.
            if monitored <= best + cfg.tol:
                kept_w, kept_train = point.copy(), float(epoch_loss)
            result.epochs_run = epoch + 1
            if converged:
                # The bound is surer than comparing losses that rounding blurs: keep this point.
                kept_w, kept_train = point.copy(), float(epoch_loss)
                break
            if stale >= cfg.n_iter_no_change:
                break
    # The best iterate, not the last: by validation loss with a split, else by training loss.
    result.w = kept_w
    if Xv is None:
        result.loss = kept_train
    else:
        result.loss = float(objective(Xt, yt, kept_w, grad=False)[0])
    return result
