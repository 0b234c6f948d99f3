"""tune: hyper-parameter search with Optuna, every trial a DVC experiment."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from modelops.commands.options import Parents, command
from modelops.commands.output import emit, safe, table

LEADERBOARD = 10  # rows of the final table


def _params(params: dict[str, Any]) -> str:
    """For reading: floats to 4 significant digits (--json and the experiment hold them all)."""
    from modelops.tuning import show_value

    return " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={show_value(v)}"
        for k, v in params.items()
    )


class Live:
    """A progress bar on a terminal; one line per finished trial otherwise (logs, CI)."""

    def __init__(self, metric: str) -> None:
        self.metric = metric
        self.bar: Any = None
        self.tty = sys.stderr.isatty()

    def __call__(self, progress: Any) -> None:
        t, best = progress.trial, progress.best
        if t.state == "complete":
            what = f"{self.metric}={t.value:.6g}"
        else:
            what = f"failed: {t.error}"
        lead = f"trial {t.number} ({progress.done}/{progress.total})"
        line = safe(f"{lead}  {what}  {_params(t.params)}")
        if best is not None:
            line += f"  [best {self.metric}={best.value:.6g}, trial {best.number}]"
        if not self.tty:
            print(line, file=sys.stderr, flush=True)
            return
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=progress.total, file=sys.stderr, unit="trial", leave=True)
            self.bar.update(progress.done - 1)
        self.bar.write(line, file=sys.stderr)
        self.bar.update(1)
        if best is not None:
            self.bar.set_postfix_str(f"best {self.metric}={best.value:.6g} (trial {best.number})")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def cmd_tune(args: argparse.Namespace) -> int:
    from modelops import api

    live = Live(args.metric)
    try:
        result = api.tune(
            args.param,
            metric=args.metric,
            trials=args.trials,
            jobs=args.jobs,
            sampler=args.sampler,
            seed=args.seed,
            study=args.study,
            storage=args.storage,
            branch=args.branch,
            apply=args.apply,
            heard=live,
        )
    finally:
        live.close()
    sign = 1.0 if result.higher else -1.0
    done = sorted(
        (t for t in result.trials if t.state == "complete"),
        key=lambda t: (-sign * t.value, t.number),
    )
    failed = [t for t in result.trials if t.state == "failed"]
    data = {
        "study": result.study,
        "storage": str(result.storage),
        "metric": result.metric,
        "higher_is_better": result.higher,
        "resumed": result.resumed,
        "best": result.best.__dict__,
        "trials": [t.__dict__ for t in result.trials],
        "importances": result.importances,
        "notes": result.notes,
    }
    rows = [
        {
            "rank": i + 1,
            "trial": t.number,
            "experiment": t.experiment or "",
            result.metric: f"{t.value:.6g}",
            "params": _params(t.params),
        }
        for i, t in enumerate(done[:LEADERBOARD])
    ]
    lines = [
        f"study {result.study} ({result.storage}): {len(done)} finished, {len(failed)} failed; "
        f"by {result.metric} ({'higher' if result.higher else 'lower'} is better)",
        table(rows, ["rank", "trial", "experiment", result.metric, "params"]),
    ]
    if result.importances:
        lines.append("importance (Optuna, PED-ANOVA):")
        lines += [f"  {k}  {v:.3f}" for k, v in result.importances.items()]
    lines += [f"note: {n}" for n in result.notes]
    best = result.best
    if args.apply:
        lines.append(f"applied {best.experiment} to the workspace")
    elif args.branch:
        lines.append(f"created branch {args.branch} from {best.experiment}")
    else:
        lines.append(
            f"best: {best.experiment}; `dvc exp apply {best.experiment}` or "
            f"`modelops exp best --metric {result.metric} --branch NAME`"
        )
    emit(args, data, "\n".join(lines))
    return 0


def add_parsers(sub: argparse._SubParsersAction, shared: Parents) -> None:
    sp = command(
        sub,
        shared,
        "tune",
        cmd_tune,
        "Search hyper-parameters with Optuna, each trial a DVC experiment of HEAD",
        json=True,
    )
    sp.add_argument("--metric", required=True, help="the metric to optimise, e.g. f1 or rmse")
    sp.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=RANGE",
        help="a params.yaml key and its range: lo..hi, log:lo..hi, int:lo..hi, or a,b,c "
        "(repeat for each key)",
    )
    sp.add_argument(
        "--trials",
        type=int,
        default=20,
        help="finished trials the study should hold (a resumed study counts its own; default 20)",
    )
    sp.add_argument(
        "-j", "--jobs", type=int, default=1, help="trials run at once through DVC's queue"
    )
    sp.add_argument(
        "--sampler",
        default="tpe",
        help="tpe (default), random, or grid (choice lists and int ranges only)",
    )
    sp.add_argument("--seed", type=int, help="the sampler's seed (reproducible with -j 1)")
    sp.add_argument(
        "--study",
        help="the study's name; an existing study of that name resumes (default: METRIC-TIME)",
    )
    sp.add_argument(
        "--storage",
        metavar="FILE",
        help="the Optuna journal file (default: .modelops/studies/STUDY.journal)",
    )
    action = sp.add_mutually_exclusive_group()
    action.add_argument("--apply", action="store_true", help="dvc exp apply the best trial")
    action.add_argument("--branch", metavar="NAME", help="dvc exp branch the best into NAME")
