"""Our numpy trainers on 10^6 x 20 against scikit-learn in the same run (issue 8's first two
rows): logistic regression (Nesterov GD) vs LogisticRegression() (lbfgs), and linear
regression (closed form) vs LinearRegression(). Alternating runs, medians."""

from __future__ import annotations

import dataclasses
import datetime as dt
import statistics
import time

from common import machine, record
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LinearRegression as SkLinear
from sklearn.linear_model import LogisticRegression as SkLogistic
from sklearn.metrics import accuracy_score, r2_score

from modelops.models.gd import GDConfig
from modelops.models.linear import LinearRegression, LogisticRegression

ROWS, FEATURES, ROUNDS = 1_000_000, 20, 3


def timed(fit):
    t = time.perf_counter()
    model = fit()
    return time.perf_counter() - t, model


def main() -> None:
    X, y = make_classification(ROWS, FEATURES, n_informative=10, n_redundant=0, random_state=0)
    X = (X - X.mean(0)) / X.std(0)  # the pipeline standardises too
    cut = int(0.8 * ROWS)
    Xtr, Xte, ytr, yte = X[:cut], X[cut:], y[:cut], y[cut:]
    # the params.yaml defaults for logistic_regression (dtype float32), and float64
    cfg = GDConfig(lr="auto", epochs=2000, momentum="auto", l2=0.001, tol=1e-6, n_iter_no_change=10)
    cfg64 = dataclasses.replace(cfg, dtype="float64")
    ours_t, o64_t, sk_t = [], [], []
    for _ in range(ROUNDS):
        t, ours = timed(lambda: LogisticRegression(gd=cfg).fit(Xtr, ytr))
        ours_t.append(t)
        t, sk = timed(lambda: SkLogistic().fit(Xtr, ytr))
        sk_t.append(t)
        t, o64m = timed(lambda: LogisticRegression(gd=cfg64).fit(Xtr, ytr))
        o64_t.append(t)
    acc_ours = accuracy_score(yte, ours.predict(Xte))
    acc_64 = accuracy_score(yte, o64m.predict(Xte))
    acc_sk = accuracy_score(yte, sk.predict(Xte))
    o, s, o64 = statistics.median(ours_t), statistics.median(sk_t), statistics.median(o64_t)

    Xr, yr = make_regression(ROWS, FEATURES, n_informative=10, noise=5.0, random_state=0)
    lin_t, skl_t = [], []
    for _ in range(ROUNDS):
        t, lin = timed(lambda: LinearRegression(solver="closed_form").fit(Xr, yr))
        lin_t.append(t)
        t, skl = timed(lambda: SkLinear().fit(Xr, yr))
        skl_t.append(t)
    r2_ours, r2_sk = r2_score(yr, lin.predict(Xr)), r2_score(yr, skl.predict(Xr))
    lo, ls = statistics.median(lin_t), statistics.median(skl_t)

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    rows = [
        [
            "logistic (`dtype: float32`, default): fit on 8·10^5 rows",
            f"{o:.2f} s ({ours.epochs_run_} epochs, {o / ours.epochs_run_ * 1000:.1f} ms/epoch)",
            f"{s:.2f} s (`LogisticRegression()`, lbfgs)",
            f"**{o / s:.2f}**",
            f"≤ 1.0 {verdict(o / s <= 1)}",
        ],
        [
            "logistic: test accuracy",
            f"{acc_ours:.4f}",
            f"{acc_sk:.4f}",
            f"Δ {100 * (acc_ours - acc_sk):+.2f} points",
            f"within 0.2 points {verdict(abs(acc_ours - acc_sk) <= 0.002)}",
        ],
        [
            "logistic (`dtype: float64`): fit, test accuracy",
            f"{o64:.2f} s ({o64m.epochs_run_} epochs, "
            f"{o64 / o64m.epochs_run_ * 1000:.1f} ms/epoch), {acc_64:.4f}",
            f"{s:.2f} s, {acc_sk:.4f}",
            f"**{o64 / s:.2f}**",
            f"≤ 1.0 {verdict(o64 / s <= 1)}",
        ],
        [
            "linear: closed-form fit",
            f"{lo:.2f} s",
            f"{ls:.2f} s (`LinearRegression()`)",
            f"**{lo / ls:.2f}**",
            f"≤ 1.0 {verdict(lo / ls <= 1)}",
        ],
        [
            "linear: R²",
            f"{r2_ours:.9f}",
            f"{r2_sk:.9f}",
            f"Δ {abs(r2_ours - r2_sk):.1e}",
            f"≤ 1e-6 {verdict(abs(r2_ours - r2_sk) <= 1e-6)}",
        ],
    ]
    table = "\n".join("| " + " | ".join(r) + " |" for r in rows)
    record(
        "Training: numpy trainers vs scikit-learn on 10^6 x 20",
        f"""
make_classification / make_regression, {ROWS:,} x {FEATURES}, float64, standardised;
medians of {ROUNDS} alternating fits (the float32 copy is made inside each timed fit; ms/epoch
is the whole fit divided by the epochs); {dt.date.today()}, {machine()}.

| measure | ours | scikit-learn (baseline) | ratio | target |
|---|---|---|---|---|
{table}
""",
    )


if __name__ == "__main__":
    main()
