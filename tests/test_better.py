"""``params.better``: the one answer to "is this value of a metric at least as good?"."""

from __future__ import annotations

import pytest

from modelops.params import LOWER_IS_BETTER, GateParams, better, higher_is_better


@pytest.mark.parametrize(
    ("metric", "new", "old", "tolerance", "expected"),
    [
        ("f1", 0.95, 0.90, 0.0, True),
        ("f1", 0.90, 0.90, 0.0, True),  # a tie passes: the gate asks "no worse?"
        ("f1", 0.89, 0.90, 0.0, False),
        ("f1", 0.89, 0.90, 0.02, True),
        ("f1", 0.87, 0.90, 0.02, False),
        ("rmse", 1.0, 2.0, 0.0, True),  # lower is better for errors and losses
        ("rmse", 2.5, 2.0, 0.0, False),
        ("rmse", 2.5, 2.0, 0.6, True),
        ("log_loss", 0.143, 0.089, 0.1, True),
        ("mae", 0.2, 0.1, 0.05, False),
        ("r2", 0.5, 0.7, 0.1, False),
    ],
)
def test_better_by_metric_direction(metric, new, old, tolerance, expected):
    assert better(metric, new, old, tolerance) is expected


def test_direction_can_be_forced():
    assert better("rmse", 3.0, 2.0, direction="higher")
    assert not better("f1", 0.9, 0.8, direction="lower")
    assert higher_is_better("custom_score") and not higher_is_better("custom_score", "lower")
    assert [m for m in ("f1", "rmse", "mae", "log_loss", "r2") if not higher_is_better(m)] == list(
        LOWER_IS_BETTER
    )


def test_the_gate_params_use_the_same_rule():
    mae = GateParams(metric="mae")
    assert not higher_is_better(mae.metric_for("regression"), mae.direction)
    forced = GateParams(metric="mae", direction="higher")
    assert higher_is_better(forced.metric_for("regression"), forced.direction)
    assert GateParams().metric_for("regression") == "r2"  # auto
    assert GateParams().metric_for("classification") == "f1"
