"""Gradient descent shared by the numpy models: Nesterov momentum, mini-batches, early stopping.

Parameters are one array ``w`` whose last row is the intercept; an objective
returns (loss, gradient) of the mean loss plus ``l2/2 * ||w[:-1]||²`` (the
intercept is not penalised), i.e. the update is β ← β − α·∂L/∂β.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelops.errors import ModelopsError

if TYPE_CHECKING:
    import numpy as np

Objective = Callable[["np.ndarray", "np.ndarray", "np.ndarray"], tuple[float, "np.ndarray"]]


@dataclass
class GDConfig:
    lr: float | str = "auto"
    epochs: int = 500
    batch_size: int | None = None
    momentum: float = 0.9
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
    X = X.astype(cfg.dtype, copy=False)
    n = len(X)
    if cfg.early_stopping:
        perm = rng.permutation(n)
        n_val = max(1, int(np.ceil(cfg.validation_fraction * n)))
        val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        Xv, yv, Xt, yt = X[val_idx], y[val_idx], X[train_idx], y[train_idx]
    else:
        Xt, yt, Xv, yv = X, y, None, None
    n_train = len(Xt)
    if cfg.lr == "auto":
        lr = 1.0 / (curvature * largest_eigenvalue(Xt) + cfg.l2)
    else:
        lr = float(cfg.lr)
    full_batch = cfg.batch_size is None or cfg.batch_size >= n_train

    w = w0.copy()
    v = np.zeros_like(w)
    best, best_w, stale = np.inf, w.copy(), 0
    result = GDResult(w=w, lr=lr, epochs_run=0)
    # Overflow is caught below as divergence and reported; numpy need not warn too.
    with np.errstate(over="ignore", invalid="ignore"):
        for epoch in range(cfg.epochs):
            if full_batch:
                look = w + cfg.momentum * v
                epoch_loss, g = objective(Xt, yt, look)
                v = cfg.momentum * v - lr * g
                w = w + v
            else:
                total = 0.0
                order = rng.permutation(n_train)
                for start in range(0, n_train, cfg.batch_size):
                    idx = order[start : start + cfg.batch_size]
                    look = w + cfg.momentum * v
                    loss, g = objective(Xt[idx], yt[idx], look)
                    v = cfg.momentum * v - lr * g
                    w = w + v
                    total += loss * len(idx)
                epoch_loss = total / n_train
            if not np.isfinite(epoch_loss) or not np.all(np.isfinite(w)):
                raise ModelopsError(
                    f"train.lr: gradient descent diverged at epoch {epoch + 1} (loss {epoch_loss}) "
                    f"with lr {lr:g}; lower train.lr or set it to auto"
                )
            result.loss_curve.append(float(epoch_loss))
            monitored = epoch_loss
            if Xv is not None:
                monitored = float(objective(Xv, yv, w)[0])
                result.validation_loss_curve.append(monitored)
            # scikit-learn's SGD rule: no improvement by more than tol for n_iter_no_change epochs.
            stale = stale + 1 if monitored > best - cfg.tol else 0
            if monitored < best:
                best, best_w = monitored, w.copy()
            result.epochs_run = epoch + 1
            if stale >= cfg.n_iter_no_change:
                break
    # With a validation split keep the weights that generalised best; otherwise the last.
    result.w = best_w if Xv is not None else w
    return result
