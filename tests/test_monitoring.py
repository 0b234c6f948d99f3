"""Drift statistics against independent computations, and monitor on a small model."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from modelops import bundle, monitoring, params
from modelops.errors import BatchError, UsageError
from modelops.monitoring import KSCounter, psi
from modelops.stages import prepare, train
from tests.helpers import ROOT, numbers


def test_psi_matches_a_hand_computation():
    # shares e = (.5, .3, .2), a = (.3, .3, .4):
    # (.3-.5)·ln(.3/.5) + 0 + (.4-.2)·ln(.4/.2) = .2·ln(5/3) + .2·ln 2
    assert psi([50, 30, 20], [30, 30, 40]) == pytest.approx(
        0.2 * math.log(5 / 3) + 0.2 * math.log(2)
    )
    assert psi([10, 10], [10, 10]) == 0.0
    assert math.isfinite(psi([10, 0], [0, 10]))  # empty bins are floored, not infinite


@pytest.mark.parametrize("shift", [0.0, 0.05, 0.5])
def test_streamed_ks_equals_scipy(shift):
    rng = np.random.default_rng(1)
    ref = np.sort(np.round(rng.normal(size=3000), 2))  # rounding makes ties
    batch = np.round(rng.normal(loc=shift, size=20_000), 2)
    counter = KSCounter(ref)
    for chunk in np.array_split(batch, 7):
        counter.add(chunk)
    stat, pvalue = counter.result()
    expected = ks_2samp(ref, batch, method="asymp")
    assert stat == pytest.approx(expected.statistic, abs=1e-12)
    assert pvalue == pytest.approx(expected.pvalue, rel=1e-6, abs=1e-300)


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> tuple[Path, bundle.Model, pd.DataFrame]:
    """A model trained by the real stages on data with numeric and categorical features."""
    tmp = tmp_path_factory.mktemp("shop")
    rng = np.random.default_rng(0)
    n = 3000
    frame = pd.DataFrame(
        {
            "basket": rng.gamma(2.0, 30.0, n).round(2),
            "visits": rng.poisson(5, n).astype(float),
            "channel": rng.choice(["web", "app", "store"], n, p=[0.5, 0.35, 0.15]),
        }
    )
    logit = (
        0.03 * (frame["basket"] - 60) + 0.2 * (frame["visits"] - 5) + (frame["channel"] == "app")
    )
    frame["bought"] = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    frame.to_csv(tmp / "shop.csv", index=False)
    text = (ROOT / "params.yaml").read_text()
    text = (
        text.replace("source: breast_cancer", "source: csv")
        .replace("path: null", "path: shop.csv")
        .replace("target: null", "target: bought")
        .replace("positive_class: null", 'positive_class: "yes"')
    )
    (tmp / "params.yaml").write_text(text)
    cwd = Path.cwd()
    import os

    os.chdir(tmp)
    try:
        assert prepare.main(["--out", "prep"]) == 0
        assert train.main(["--data", "prep", "--model", "m.npz", "--loss", "loss.json"]) == 0
    finally:
        os.chdir(cwd)
    data = pd.concat(
        [pd.read_feather(tmp / "prep/train.arrow"), pd.read_feather(tmp / "prep/test.arrow")],
        ignore_index=True,
    )
    return tmp, bundle.load(tmp / "m.npz"), data


def run(
    shop, shift, feature=None, strength=None, with_target=False, rows=4000, seed=5, reference=None
):
    tmp, model, data = shop
    batch = monitoring.make_batch(data, model, shift, feature, strength, rows, seed, with_target)
    path = tmp / f"batch-{shift}.csv"
    batch.to_csv(path, index=False)
    p = params.validate({}).monitor
    return monitoring.monitor(model, path, p, ["", "NA"], 1000, reference or {})


def test_profile_is_stored_in_the_bundle(shop):
    _, model, _ = shop
    assert set(model.profile["numeric"]) == {"basket", "visits"}
    assert set(model.profile["categorical"]["channel"]["freq"]) == {"web", "app", "store"}
    assert model.profile["prediction"]["kind"] == "score"
    assert len(model.profile_arrays["profile_sample_0"]) == model.profile["rows"]


def test_an_undrifted_sample_is_ok(shop):
    report = run(shop, "none")
    assert report["verdict"] == "ok", report["recommendation"]
    assert report["recommendation"].startswith("no action needed")


@pytest.mark.parametrize(
    ("shift", "feature"), [("mean", "basket"), ("scale", "visits"), ("category", "channel")]
)
def test_each_shift_alerts_on_its_feature(shop, shift, feature):
    report = run(shop, shift, feature)
    assert report["verdict"] == "alert"
    assert feature in report["causes"]
    status = {f["name"]: f["status"] for f in report["features"]}
    assert status[feature] == "alert"
    assert report["recommendation"].startswith("retrain:") and feature in report["recommendation"]


def test_label_shift_moves_predictions_and_labelled_batches_report_the_metric(shop):
    report = run(shop, "label", strength=0.95, with_target=True, reference={"f1": 0.99})
    assert report["prediction"]["status"] != "ok"  # the score distribution moved
    assert report["prediction"]["psi"] >= 0.1
    perf = report["performance"]
    assert perf["metric"] == "f1" and perf["reference"] == 0.99 and perf["status"] == "alert"
    assert 0 <= perf["batch"] < 0.99
    assert f"f1 fell from 0.99 to {perf['batch']:.2f}" in report["recommendation"]


def write(tmp: Path, text: str) -> Path:
    path = tmp / "bad.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("basket,visits\n1,2\n", "column 'channel' is missing"),
        ("basket,visits,channel\n1,2,web\nlots,3,app\n", "line 3: 'basket' = 'lots' is not a"),
        (
            "basket,visits,channel\n1,2,web\n1,-1e999,app\n",
            "line 3: 'visits' = -inf is not a finite",
        ),
        (
            "basket,visits,channel\n1,2,web\n3,4,web\n1e308,1e308,app\n",
            "line 4: 'basket' = 1e+308 is too far outside the training range to give an answer",
        ),
        ("", "empty file"),
        ("basket,visits,channel\n", "has a header but no rows"),
        ("basket,visits,channel\n1,,web\n2,,app\n", "column 'visits' has no values at all"),
        ("basket,visits,channel,bought\n1,2,web,maybe\n", "label 'maybe' (line 2)"),
    ],
)
def test_bad_batches_exit_2(shop, text, expected):
    tmp, model, _ = shop
    p = params.validate({}).monitor
    with pytest.raises(BatchError) as info:
        monitoring.monitor(model, write(tmp, text), p, ["", "NA"], 1000, {})
    assert expected in str(info.value) and info.value.exit_code == 4  # data, not an alert (1)


def test_columns_the_model_does_not_use_are_ignored_and_named(shop):
    """Item 18: production batches carry ids and timestamps; monitor refused them before."""
    tmp, model, data = shop
    batch = data.sample(500, random_state=1).drop(columns=["bought"])
    batch.insert(0, "order_id", range(len(batch)))
    batch["ts"] = "2026-11-28T08:00:00Z"
    path = tmp / "with-ids.csv"
    batch.to_csv(path, index=False)
    p = params.validate({}).monitor
    report = monitoring.monitor(model, path, p, ["", "NA"], 1000, {})
    plain = tmp / "plain.csv"
    batch.drop(columns=["order_id", "ts"]).to_csv(plain, index=False)
    same = monitoring.monitor(model, plain, p, ["", "NA"], 1000, {})
    assert report["ignored_columns"] == ["order_id", "ts"] and same["ignored_columns"] == []
    assert report["features"] == same["features"] and report["prediction"] == same["prediction"]
    assert "ignored columns the model does not use: order_id, ts" in monitoring.render(
        report, "text"
    )


def test_render_formats(shop):
    report = run(shop, "mean", "basket")
    assert monitoring.render(report, "text").startswith("Monitoring ")
    md = monitoring.render(report, "md")
    assert md.startswith("# Monitoring") and "| basket | alert |" in md
    import json

    assert json.loads(monitoring.render(report, "json"))["verdict"] == "alert"


def test_make_batch_refusals(shop):
    # command-line mistakes (--feature, --strength): usage errors, exit 2
    _, model, data = shop
    with pytest.raises(UsageError, match="not a numeric feature"):
        monitoring.make_batch(data, model, "mean", "channel", None, 10, 0, False)
    with pytest.raises(UsageError, match="positive share"):
        monitoring.make_batch(data, model, "label", None, 2.0, 10, 0, False)


def test_a_regression_model_is_monitored_on_r2_by_default(tmp_path, monkeypatch):
    # Issue 13, item 15: monitor.metric: auto is r2 for regression (f1 was not among the
    # batch's metrics, so the report silently fell back to mae).
    from sklearn.metrics import r2_score

    numbers(400, seed=4).to_csv(tmp_path / "d.csv", index=False)
    text = (ROOT / "params.yaml").read_text()
    text = text.replace("source: breast_cancer", "source: csv").replace("path: null", "path: d.csv")
    (tmp_path / "params.yaml").write_text(text.replace("target: null", "target: y"))
    monkeypatch.chdir(tmp_path)
    assert prepare.main(["--out", "prep"]) == 0
    assert train.main(["--data", "prep", "--model", "m.npz", "--loss", "loss.json"]) == 0
    model = bundle.load(tmp_path / "m.npz")
    assert model.estimator.kind == "linear_regression"
    batch = pd.read_feather(tmp_path / "prep/test.arrow")
    batch.to_csv(tmp_path / "batch.csv", index=False)
    p = params.load("params.yaml").monitor
    report = monitoring.monitor(model, tmp_path / "batch.csv", p, ["", "NA"], 1000, {"r2": 0.99})
    perf = report["performance"]
    expected = r2_score(batch["y"], model.predict(batch))
    assert perf["metric"] == "r2" and perf["batch"] == pytest.approx(expected, abs=1e-9)
    assert perf["drop"] == pytest.approx(0.99 - expected) and perf["status"] == "alert"
    # a label that is text or infinite is refused naming its line (it was dropped unsaid);
    # an empty one is a row without a label
    for bad, shown in [("abc", "'abc'"), ("inf", "'inf'")]:
        odd = batch.astype({"y": object})
        odd.loc[5, "y"], odd.loc[7, "y"] = bad, None
        odd.to_csv(tmp_path / "odd.csv", index=False)
        with pytest.raises(BatchError, match=rf"target 'y' = {shown} \(line 7\) is not a finite"):
            monitoring.monitor(model, tmp_path / "odd.csv", p, ["", "NA"], 1000, {"r2": 0.99})
    odd.loc[5, "y"] = batch.loc[5, "y"]
    odd.to_csv(tmp_path / "odd.csv", index=False)
    report = monitoring.monitor(model, tmp_path / "odd.csv", p, ["", "NA"], 1000, {"r2": 0.99})
    assert report["performance"]["labelled_rows"] == len(batch) - 1


def test_a_header_only_batch_is_refused_for_every_model_kind(shop):
    """scikit-learn estimators refuse zero rows: the empty chunk of a header-only CSV must
    not reach the model (it gave a ValueError traceback for random_forest)."""
    tmp, _, _ = shop
    text = (tmp / "params.yaml").read_text()
    forest = text.replace("model: logistic_regression", "model: random_forest")
    (tmp / "forest.yaml").write_text(forest.replace("n_estimators: 200", "n_estimators: 3"))
    cwd = Path.cwd()
    import os

    os.chdir(tmp)
    try:
        argv = ["--params", "forest.yaml", "--data", "prep", "--model", "rf.npz"]
        assert train.main([*argv, "--loss", "rf-loss.json"]) == 0
    finally:
        os.chdir(cwd)
    p = params.validate({}).monitor
    with pytest.raises(BatchError, match="has a header but no rows"):
        monitoring.monitor(
            bundle.load(tmp / "rf.npz"), write(tmp, "basket,visits,channel\n"), p, [""], 10, {}
        )
