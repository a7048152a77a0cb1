"""Rows to statistics: each setting's central values with their intervals over its units (forget
sets, each one's mean over seeds), and each row paired with the anchor, forget set by forget set."""
import re
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from ccup.report.records import (
    ANCHOR,
    GAP,
    HEADLINE,
    ORACLE,
    ORIGINAL,
    ROW,
    cross_accuracies,
    declared_columns,
)

# The evaluator's own metric columns, first in every table; each evaluation's follow, as it declares
# them (ccup.evals.Evaluation.columns, read from the records' configs), then the cost.
SCORES = ["forget/acc", "forget/acc_before", "retain/acc", "retain/acc_before", "retain/acc_delta",
          "all/acc"]

COST = "time/unlearn_s"

# central value of these is the median: shared cores give a job the odd slow run
MEDIAN = re.compile(r"time/.+")

CONFIDENCE = 0.95
SIGNIFICANCE = 0.05  # the family-wise error rate the paired verdicts keep (Holm)


def metric_columns(records: pd.DataFrame) -> list[str]:
    """The evaluator's SCORES, the columns the evaluations declare, the COST, every cross-dataset
    accuracy beside its before and its change, then the gaps to the oracle: those the records
    have."""
    crosses = [c for m in cross_accuracies(records) for c in (m, f"{m}_delta") if c in records]
    return ([m for m in SCORES if m in records] + declared_columns(records)
            + [m for m in [COST] if m in records]
            + crosses
            + sorted((c for c in records.columns if c.startswith("gap/")),
                     key=lambda c: (c != HEADLINE, c != GAP)))


def per_forget_set(records: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame:
    """Metrics (by default `metric_columns(records)`) per setting and forget set, averaged over
    seeds."""
    metrics = metric_columns(records) if metrics is None else metrics
    groups = records.groupby([*ROW, "forget"], dropna=False)
    return central(groups, metrics).join(groups.size().rename("seeds")).reset_index()


def central(groups, metrics: list[str]) -> pd.DataFrame:
    """Each metric's mean per group, the median for times (MEDIAN)."""
    return pd.concat([groups[[m]].median() if MEDIAN.fullmatch(m) else groups[[m]].mean()
                      for m in metrics], axis=1)


def interval(values, statistic=np.mean) -> tuple[float, float]:
    """The CONFIDENCE bias-corrected and accelerated (BCa) bootstrap interval of `statistic` over
    `values` (NaN left out); NaN with fewer than two values, the value itself where all are equal
    (nothing to resample). BCa, not the percentile bootstrap, which under-covers at the 7 to 28
    units a row has (it ignores the skew of a mean of bounded values near a bound, a forget accuracy
    near 0); not Student's t, which can reach past the bound (a gap below 0). Where BCa cannot
    estimate its acceleration (too few distinct values), the percentile interval."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) < 2:
        return float("nan"), float("nan")
    if np.all(values == values[0]):
        return float(values[0]), float(values[0])
    with warnings.catch_warnings():  # a degenerate jackknife is read off the NaN it leaves
        warnings.simplefilter("ignore")
        for method in ("BCa", "percentile"):
            ci = stats.bootstrap((values,), statistic, confidence_level=CONFIDENCE,
                                 n_resamples=9999, method=method,
                                 random_state=0).confidence_interval
            if not (np.isnan(ci.low) or np.isnan(ci.high)):
                break
    return float(ci.low), float(ci.high)


def units(records: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """What a row's interval resamples: its forget sets (each one's mean over seeds), or its records
    where it has a single forget set."""
    per_set = per_forget_set(records, metrics)
    single = per_set.groupby(ROW, dropna=False)["forget"].transform("size") == 1
    single_rows = per_set.loc[single, ROW].drop_duplicates()
    own = records.merge(single_rows, on=ROW)[[*ROW, "forget", *metrics]]
    return pd.concat([per_set.loc[~single, [*ROW, "forget", *metrics]], own], ignore_index=True)


def summarize(records: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame:
    """One row per setting: each metric's central value (mean, median for times) with its interval
    (`<metric> ci_low`, `<metric> ci_high`; DEFINITIONS), the number of forget sets and seeds, and
    of flagged records."""
    metrics = metric_columns(records) if metrics is None else metrics
    by_forget = per_forget_set(records, metrics).groupby(ROW, dropna=False)
    by_unit = units(records, metrics).groupby(ROW, dropna=False)
    columns = {}
    for metric in metrics:
        statistic = np.median if MEDIAN.fullmatch(metric) else np.mean
        bounds = by_unit[metric].apply(lambda v, f=statistic: interval(v, f))
        columns[metric] = central(by_forget, [metric])[metric]
        columns[f"{metric} ci_low"] = bounds.map(lambda b: b[0])
        columns[f"{metric} ci_high"] = bounds.map(lambda b: b[1])
    flags = records["flagged"] if "flagged" in records else pd.Series(False, index=records.index)
    counts = records.assign(flagged=flags).groupby(ROW, dropna=False).agg(
        **{"forget sets": ("forget", "nunique"), "seeds": ("seed", "nunique"),
           "flagged": ("flagged", "sum")})
    return reference_first(pd.DataFrame(columns).join(counts).reset_index())


def reference_first(summary: pd.DataFrame) -> pd.DataFrame:
    """The rows of the original model, then of the oracle, then of the references, above every
    method's, the rest in their order."""
    rank = (summary["method"].map({ORIGINAL: 0})
            .fillna(summary["role"].map({ORACLE: 1, "reference": 2})).fillna(3))
    return summary.iloc[rank.argsort(kind="stable")].reset_index(drop=True)


# What a row of the pooled paired table is: a method's setting across the models and datasets (its
# units are then each task's forget sets).
POOLED = ["method", "role", "setting", "classes", "alpha"]
# ... and on one model: its units each dataset's forget sets, so that what holds on one architecture
# is told from what holds on every one.
PER_MODEL = [*POOLED, "model"]


def paired(records: pd.DataFrame, metric: str, by: list[str] = ROW) -> pd.DataFrame | None:
    """Each row's `metric` against the anchor's at alpha = 1 on the same task (DEFINITIONS), forget
    set by forget set (each one's mean over seeds): pairs, mean difference (row − anchor) with its
    interval, the Wilcoxon signed-rank p, its Holm adjustment over every row of the table (`holm`:
    the comparisons are many) and what the adjusted test resolves. Rows are `by` (ROW: one per
    setting, model and dataset; POOLED: a setting over them all; PER_MODEL: over one model's
    datasets). None without the metric or the anchor, or with several anchor settings on one task
    (an ablation: which one is the method?)."""
    if metric not in records:
        return None
    per_set = per_forget_set(records, [metric])
    anchor = per_set[(per_set["role"] == ANCHOR) & (per_set["alpha"] == 1)]
    if anchor.empty or (anchor.groupby("task_id")["setting"].nunique() > 1).any():
        return None
    others = per_set[~per_set["role"].isin([ANCHOR, ORACLE])]
    pairs = others.merge(anchor[["task_id", "forget", metric]], on=["task_id", "forget"],
                         suffixes=("", " ref"))
    rows = []
    for key, group in pairs.groupby(by, dropna=False, sort=False):
        diffs = (group[metric] - group[f"{metric} ref"]).dropna().to_numpy()
        low, high = interval(diffs)
        rows.append({**dict(zip(by, key, strict=True)), "pairs": len(diffs),
                     "difference": diffs.mean(), "ci_low": low, "ci_high": high,
                     "wilcoxon p": wilcoxon_p(diffs)})
    if not rows:
        return None
    table = pd.DataFrame(rows).assign(holm=lambda t: holm(t["wilcoxon p"]))
    name = anchor["method"].iloc[0]
    return table.assign(resolved=[verdict(d, p, name)
                                  for d, p in zip(table["difference"], table["holm"], strict=True)])


def wilcoxon_p(diffs: np.ndarray) -> float:
    """The two-sided Wilcoxon signed-rank p of differences (exact below 50 pairs); NaN where there
    are none but zeros."""
    return float(stats.wilcoxon(diffs).pvalue) if np.count_nonzero(diffs) else float("nan")


def holm(p: pd.Series) -> np.ndarray:
    """Holm's step-down adjustment of p-values (statsmodels), controlling the chance of any false
    verdict among the comparisons at SIGNIFICANCE; NaN stays NaN and takes no part."""
    from statsmodels.stats.multitest import multipletests  # for the paired table alone

    adjusted = np.full(len(p), np.nan)
    tested = p.notna().to_numpy()
    if tested.any():
        adjusted[tested] = multipletests(p[tested], alpha=SIGNIFICANCE, method="holm")[1]
    return adjusted


def verdict(difference: float, adjusted_p: float, anchor: str) -> str:
    """What a row − anchor gap difference resolves, by its Holm-adjusted Wilcoxon p below
    SIGNIFICANCE."""
    if np.isnan(adjusted_p):
        return ""
    if adjusted_p >= SIGNIFICANCE:
        return "not resolved"
    return (f"{anchor} closer to the oracle" if difference > 0
            else f"closer to the oracle than {anchor}")


def leakage(records: pd.DataFrame) -> pd.DataFrame | None:
    """Forget accuracy beside what the evaluations declare (`declared_columns`), summarised per
    setting over the records at the largest alpha that have one of them, under one row per model and
    dataset for the original model (method ORIGINAL, alpha 0: the `_before` metrics of the same
    records); None when no record has one."""
    leaks = declared_columns(records)
    if not leaks:
        return None
    shown = ["forget/acc", *leaks]
    measured = records[records[leaks].notna().any(axis=1)]
    top = measured[measured["alpha"] == measured["alpha"].max()]
    metrics = [m for m in shown if m in top] + [f"gap/{m}" for m in shown if f"gap/{m}" in top]
    before = {f"{m}_before": m for m in metrics if f"{m}_before" in top}
    original = top.drop(columns=metrics).rename(columns=before).assign(method=ORIGINAL, role="",
                                                                       setting="", alpha=0.0)
    # one original per task, not per method
    original = original.drop_duplicates(["task_id", "forget", "seed"])
    methods = summarize(top, metrics)
    return pd.concat([summarize(original, list(before.values())), methods],
                     ignore_index=True)[methods.columns]
