"""The drift report as text, Markdown or JSON."""

from __future__ import annotations

from typing import Any


def render(report: dict[str, Any], fmt: str) -> str:
    """The report in ``fmt``: "text" (aligned columns), "md" (a Markdown table) or "json"."""
    import json

    if fmt == "json":
        return json.dumps(_no_nan(report), indent=2, default=float, allow_nan=False) + "\n"
    md = fmt == "md"
    lines = [
        f"{'# ' if md else ''}Monitoring {report['batch']} ({report['rows']:,} rows): "
        f"{report['verdict'].upper()}",
        "",
        report["recommendation"],
        "",
    ]
    if report.get("ignored_columns"):
        shown = report["ignored_columns"][:10]
        more = len(report["ignored_columns"]) - len(shown)
        lines += [
            f"ignored columns the model does not use: {', '.join(shown)}"
            + (f" (and {more} more)" if more else ""),
            "",
        ]
    head = ["feature", "status", "PSI", "KS", "KS p", "missing", "train missing", "notes"]
    rows = []
    for f in report["features"]:
        rows.append(
            [
                f["name"],
                f["status"],
                f"{f['psi']:.3f}",
                "" if f["ks_statistic"] is None else f"{f['ks_statistic']:.3f}",
                "" if f["ks_pvalue"] is None else f"{f['ks_pvalue']:.2g}",
                f"{f['missing_rate']:.1%}",
                f"{f['reference_missing_rate']:.1%}",
                "; ".join(f["why"]),
            ]
        )
    pred = report["prediction"]
    rows.append(
        [f"prediction ({pred['kind']})", pred["status"], f"{pred['psi']:.3f}", "", "", "", "", ""]
    )
    if md:
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
    else:
        widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
        lines += ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip()]
        lines += [
            "  ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=True)).rstrip()
            for r in rows
        ]
    perf = report["performance"]
    if perf:
        ref = "n/a" if perf["reference"] is None else f"{perf['reference']:.4f}"
        lines += [
            "",
            f"Performance on {perf['labelled_rows']:,} labelled rows: {perf['metric']} "
            f"{'not defined' if perf['batch'] is None else format(perf['batch'], '.4f')} "
            f"(test split: {ref}) -> {perf['status']}",
        ]
    return "\n".join(lines) + "\n"


def _no_nan(value):
    """JSON has no NaN: a number that is not finite is written as null."""
    import math

    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_no_nan(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        return _no_nan(value.item())
    return value
