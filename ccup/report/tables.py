"""Statistics to tables: the cells (a mean with its interval), the headline, the paired table and
the console's overview, as markdown and LaTeX."""
import pandas as pd

from ccup.report.labels import FULL
from ccup.report.records import CROSS, GAP, HEADLINE, ORACLE, ROW, SETTING
from ccup.report.statistics import CONFIDENCE, POOLED, SIGNIFICANCE

DEFINITIONS = f"""A row is one setting: every key of the resolved config but the seed, the forget
set's classes (their number counts), alpha and where results go. Its `setting` cell names the
choices and overrides that differ between the rows of the report (a method's own keys between that
method's rows); runs that differ anywhere else carry a `#` and the first characters of their
setting's hash.

Each cell is the mean over forget sets of each forget set's mean over seeds (times: the median, as
one slow run on shared cores would move a mean), with its {CONFIDENCE:.0%} confidence interval in
brackets: a bias-corrected and accelerated bootstrap (BCa; scipy.stats.bootstrap, 9,999 resamples,
seed 0) over the forget sets, the units that vary independently (seeds are averaged within them);
over the seeds where a row has one forget set. No interval where a row has one record.

`role` is what a method's config declares it to be: the `oracle` (the model retrained without the
forget classes), a `reference` (a second oracle, another oracle definition, the blocklist), the
`anchor` (the method every other row is paired with), or a `method`.

`gap/<metric>` compares a record with the oracle's record at alpha = 1 of the same task (model,
data, prompts), forget set and seed: |method − oracle|, except `gap/relearn/steps_to_half`, method −
oracle, positive where the class comes back more slowly than after retraining. `{GAP}` is the mean
of the forget, retain and cross-dataset accuracy gaps, each once (several other datasets: their mean
gap). `{HEADLINE}`, the headline, is the mean of those three and of the gaps of the evidence that
the class is gone: the forget classes' and the retained classes' retrieval average precision and the
forget accuracy with held-out prompts, each in percentage points, each once (those the records have;
none without retrieval, which a blocklist cannot fake). `*_delta` is after − before forgetting.
Without an oracle record the gap columns are absent.

The paired table compares each row's headline (`{GAP}` where there is none) with the anchor's at
alpha = 1 on the same task, forget set by forget set (their means over seeds): the mean difference
with its bootstrap interval, the Wilcoxon signed-rank p, and `holm`, that p adjusted by Holm's
method over every row of the table, since the comparisons are many. A difference is resolved where
its Holm-adjusted p is below {SIGNIFICANCE}. Where the records hold several models or datasets, a
second table pools each setting over them (its units: every task's forget sets); where they hold
several models, a third pools it over each model's datasets (each table its own Holm family), and
a fourth says on which models each verdict is resolved."""


def fmt(value: float, decimals: int = 2) -> str:
    """Two decimals (accuracies are in percent); two significant digits below 0.1 (seconds); empty
    for NaN. Values below 1e-9 are float round-off (the std of equal numbers), written as 0."""
    if pd.isna(value):
        return ""
    return f"{value:.{decimals}f}" if abs(value) < 1e-9 or abs(value) >= 0.1 else f"{value:.2g}"


def decimals(metric: str) -> int:
    """Three decimals for AUROCs, which live in [0.5, 1] and differ in the third; two for everything
    else."""
    return 3 if "auroc" in metric else 2


def cell(mean: float, low: float, high: float, digits: int = 2, sign: str = "") -> str:
    """`mean [low, high]`; the mean alone where there is no interval."""
    def word(value: float) -> str:
        if abs(value) < 1e-9:
            return f"{0:.{digits}f}"
        return f"{value:{sign}.{digits}f}" if abs(value) >= 0.1 else f"{value:{sign}.2g}"
    if pd.isna(mean):
        return ""
    return word(mean) + ("" if pd.isna(low) else f" [{word(low)}, {word(high)}]")


def with_intervals(summary: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame:
    """The summary's settings as `settings_shown` says, its metrics (by default all) as `mean [low,
    high]` cells, and its counts."""
    metrics = ([c for c in summary.columns if f"{c} ci_low" in summary] if metrics is None
               else metrics)
    cells = {m: [cell(*values, digits=decimals(m), sign="+" if m.endswith("_delta") else "")
                 for values in zip(summary[m], summary[f"{m} ci_low"], summary[f"{m} ci_high"],
                                   strict=True)]
             for m in metrics}
    counts = {"forget sets × seeds": pooled(summary)}
    if summary["flagged"].any():
        counts["flagged"] = summary["flagged"].map(lambda n: f"⚠ {n}" if n else "").tolist()
    # a cell read back from a CSV is NaN where the table had none (the original model's role)
    return pd.concat([summary[settings_shown(summary)].fillna(""),
                      pd.DataFrame({**cells, **counts}, index=summary.index)], axis=1)


def pooled(summary: pd.DataFrame) -> list[str]:
    """What each row averages: `forget sets × seeds`."""
    return [f"{f} × {n}" for f, n in zip(summary["forget sets"], summary["seeds"], strict=True)]


def render(table: pd.DataFrame, tablefmt: str = "pipe") -> str:
    """A table of formatted cells as tabulate writes it: names left-aligned, numbers
    right-aligned."""
    names = ("model", "dataset", "method", "setting", "classes", "forget", "resolved", "data")
    align = ["left" if c in names else "right" for c in table.columns]
    return table.to_markdown(index=False, tablefmt=tablefmt, disable_numparse=True, colalign=align)


def latex(table: pd.DataFrame, caption: str) -> str:
    """A booktabs table (tabulate escapes LaTeX's special characters; Δ and ⚠ are plain UTF-8)."""
    tabular = render(table, "latex_booktabs")
    return f"\\begin{{table}}\n\\centering\n\\caption{{{caption}}}\n{tabular}\n\\end{{table}}\n"


def headline(summary: pd.DataFrame) -> pd.DataFrame:
    """The table README quotes: forget accuracy, the change of retain and cross-dataset accuracy
    from before forgetting, the gaps to the oracle, the median cost, each with its interval; full
    strength first, each alpha's rows in the summary's order (the oracle first)."""
    summary = summary.sort_values("alpha", ascending=False, kind="stable").reset_index(drop=True)
    crosses = [f"{c}_delta" for c in summary.columns
               if CROSS.fullmatch(c) and not c.endswith("_before")]
    shown = ["forget/acc", "retain/acc_delta", *crosses, "retrieval/forget_ap", HEADLINE, GAP,
             "gap/forget/acc", "gap/retrieval/forget_ap", "time/unlearn_s"]
    table = with_intervals(summary, [m for m in shown if m in summary])
    return table.rename(columns={m: m.replace("_delta", " Δ") for m in shown}
                        | {"time/unlearn_s": "time/unlearn_s (median)"})


def time_spent(records: pd.DataFrame) -> pd.DataFrame | None:
    """Where the time went: each method's jobs and their minutes, wall-clock and CPU, summed over
    its records, with its share of the total, the costliest first, then the total. A job that read
    cached weights (an oracle trained before) counts the reading only. CPU time grows far less than
    wall time when other work shares the cores, so the share and the order are of CPU minutes where
    every record has them, of wall minutes otherwise; a method with a record without (one written
    before jobs counted CPU) has no CPU minutes. None where no record has a time."""
    names = {"time/job_s": "wall min", "time/job_cpu_s": "CPU min"}
    times = [c for c in names if c in records]
    if not times:
        return None
    by_method = records.groupby("method")[times]
    # a method's total only where each of its records has the time: NaN otherwise
    minutes = by_method.sum().where(by_method.count().eq(by_method.size(), axis=0)) / 60
    basis = times[-1] if minutes[times[-1]].notna().all() else times[0]
    minutes = minutes.sort_values(basis, ascending=False, kind="stable")
    share = minutes[basis] / minutes[basis].sum() * 100
    table = pd.DataFrame({"method": minutes.index,
                          "jobs": by_method.size().loc[minutes.index].values})
    total = pd.DataFrame({"method": ["total"], "jobs": [len(records)]})
    for column in times:
        table[names[column]] = minutes[column].map(fmt).values
        total[names[column]] = fmt(minutes[column].sum()) if minutes[column].notna().all() else ""
    table[f"share of {names[basis]}"] = share.map(percent).values
    total[f"share of {names[basis]}"] = "100 %"
    return pd.concat([table, total], ignore_index=True)


def percent(share: float) -> str:
    """A share in whole percent; `<1 %` for one that is not none."""
    return "" if pd.isna(share) else "<1 %" if 0 < share < 0.5 else f"{share:.0f} %"


def paired_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """The paired differences as cells, full strength first."""
    pairs = pairs.sort_values("alpha", ascending=False, kind="stable").reset_index(drop=True)
    cells = {"pairs": pairs["pairs"].astype(str),
             "difference": [cell(*v, sign="+")
                            for v in zip(pairs["difference"], pairs["ci_low"], pairs["ci_high"],
                                         strict=True)],
             "wilcoxon p": pairs["wilcoxon p"].map(lambda p: "" if pd.isna(p) else f"{p:.3f}"),
             "holm": pairs["holm"].map(lambda p: "" if pd.isna(p) else f"{p:.3f}"),
             "resolved": pairs["resolved"]}
    return pd.concat([pairs[settings_shown(pairs)], pd.DataFrame(cells, index=pairs.index)], axis=1)


def agreement(per_model: pd.DataFrame) -> pd.DataFrame:
    """Each setting's verdicts on each model side by side (a paired table by PER_MODEL, its rows
    one Holm family), full strength first, and on which models a verdict is resolved: `every
    model` where each resolves it alike; `<model> only` where some do and the others leave it not
    resolved (or were not tested: named in brackets), which says no more than that, not that the
    models differ; `disagree` where two resolve it opposite ways; `none`."""
    verdicts = per_model.pivot(index=POOLED, columns="model", values="resolved")

    def resolved_on(row: pd.Series) -> str:
        tested = row[row.notna() & (row != "")]
        resolved = tested[tested != "not resolved"]
        if resolved.nunique() > 1:
            return "disagree"
        if resolved.empty:
            return "none"
        if len(resolved) == len(row):
            return "every model"
        untested = [model for model in row.index if model not in tested.index]
        return (" and ".join(resolved.index) + " only"
                + (f" ({' and '.join(untested)} not tested)" if untested else ""))

    table = (verdicts.assign(**{"resolved on": verdicts.apply(resolved_on, axis=1)})
             .reset_index().sort_values("alpha", ascending=False, kind="stable"))
    return table[[*settings_shown(table), *verdicts.columns, "resolved on"]].fillna("")


def settings_shown(summary: pd.DataFrame) -> list[str]:
    """The setting columns worth a column, of those the table has: method and alpha; model, dataset,
    setting and classes where they vary; role where an oracle or a reference row stands among the
    methods."""
    varying = {c: summary[c].nunique(dropna=False) > 1
               for c in ("model", "dataset", "setting", "classes") if c in summary}
    varying["role"] = summary.get("role", pd.Series(dtype=str)).isin([ORACLE, "reference"]).any()
    return [c for c in SETTING if c in summary and varying.get(c, True)]


def overview(summary: pd.DataFrame) -> pd.DataFrame:
    """The few columns a console shows (what `make run` prints): accuracies after and before
    forgetting, on other datasets too, and the mean gap to the oracle where there is one; a method's
    settings only where it has several; and what each row averages where a row averages several
    records (a `forget=bag` run left beside `make run`'s sandal is a second forget set of its rows,
    not a row of its own)."""
    shown = [c for c in ["forget/acc", "forget/acc_before", "retain/acc", "retain/acc_before"]
             if c in summary]
    shown += ([c for c in summary.columns if CROSS.fullmatch(c)]
              + [c for c in [HEADLINE, GAP] if c in summary])
    table = pd.concat([summary[settings_shown(summary)], summary[shown].map(fmt)], axis=1)
    if (summary["forget sets"] * summary["seeds"] > 1).any():
        table["forget sets × seeds"] = pooled(summary)
    return table


def with_full_settings(summary: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """The summary with each row's setting in full (FULL) after its `setting` cell."""
    full = records.drop_duplicates(ROW)[[*ROW, FULL]]
    merged = summary.merge(full, on=ROW, how="left")
    return merged[[*summary.columns[:summary.columns.get_loc("setting") + 1], FULL,
                   *summary.columns[summary.columns.get_loc("setting") + 1:]]]
