"""Tables and plots from result records: `python -m ccup.report [results_dir ...]` reads `<dir>/records/*.json`
and writes report.{md,csv,tex} and the plots (PNG) into the first results_dir."""
import argparse
import json
import re
import sys
from pathlib import Path

import pandas as pd

from ccup import plots
from ccup.errors import UserError

# The report's metric columns, in this order; a metric no record has is left out, so a new metric is one entry here.
METRICS = ["forget/acc", "forget/acc_before", "retain/acc", "retain/acc_before", "all/acc",
           "forget/acc_heldout_prompts", "leak/probe_auroc", "relearn/steps_to_half", "time/unlearn_s"]
# The leakage table: per method at the sweep's largest alpha, forget accuracy beside what the evaluations of
# conf/eval/{probe,prompts,relearn,mia}.yaml find left of the class; shown when a record has one of them. Its first
# row is the original model: each metric's `_before`.
LEAKAGE = ["forget/acc", "leak/probe_auroc", "leak/probe_acc", "retain/probe_acc", "forget/acc_heldout_templates",
           "forget/acc_heldout_prompts", "relearn/steps_to_half", "relearn/reached", "mia/forget_auroc"]
ORIGINAL = "before forgetting"  # the method cell of the original model's row
ORACLE = plots.ORACLE  # its records at alpha = 1 are the gold standard every other method is read against
# Metrics read as a gap to the oracle, |method - retrain| on the same model, dataset, forget set and seed; `gap/avg`
# is the mean gap over the accuracies (SalUn's "Avg. Gap": forget, retain, test and cross-dataset accuracy).
GAPPED = ["forget/acc", "retain/acc", "all/acc", "leak/probe_auroc", "forget/acc_heldout_prompts",
          "relearn/steps_to_half", "mia/forget_auroc"]
AVERAGED = ["forget/acc", "retain/acc", "all/acc"]
ORACLE_KEY = ["model", "dataset", "forget", "seed"]
CROSS = re.compile(r"cross/.+/acc(_before)?")  # zero-shot accuracy on other datasets, after and before: all shown
SETTING = ["model", "dataset", "method", "params", "alpha"]
SPREADS = {"std_forget_sets": "forget sets", "std_seeds": "seeds"}  # column suffix: what the std runs over
MEDIAN = re.compile(r"time/.+")  # central value of these is the median: shared cores give a job the odd slow run

DEFINITIONS = """Each cell is the mean over forget sets of each forget set's mean over seeds. Its spread is reported
twice, separately:

- **± over forget sets**: the sample standard deviation (n − 1) across forget sets of the per-forget-set means over
  seeds: how much the result depends on which classes are forgotten.
- **± over seeds**: the sample standard deviation across seeds of each seed's mean over forget sets: how much the
  headline number moves when the whole benchmark is rerun with another seed (every seed should run the same
  forget sets).

No ± is shown (an empty std in report.csv) where a setting has a single forget set or a single seed; a
deterministic method run with several seeds shows ± 0.00. Times (`time/*`) are medians in place of both means: on
shared cores a few slow runs would move a mean far from the typical cost.

`gap/<metric>` is |method − retrain| per forget set and seed, where a `retrain` record at alpha = 1 (the model
retrained without the forget classes, the gold standard) has the same model, dataset, forget set and seed;
`gap/avg` is the mean of the accuracy gaps (forget, retain, all and cross-dataset). Without such a record the gap
columns are absent."""


def load_records(*results_dirs: Path) -> pd.DataFrame:
    """One row per complete record: its sweep axes, the method's own settings, and its metrics. A record found in
    several folders (same id) counts once."""
    rows = []
    for results_dir in results_dirs:
        for path in sorted((results_dir / "records").glob("*.json")):
            record = json.loads(path.read_text())
            if record["status"] != "complete":
                continue
            config = record["config"]
            rows.append({"id": record["id"], "model": record["choices"]["model"],
                         "dataset": config["dataset"]["name"], "method": record["choices"]["method"],
                         "params": settings(config["method"]), "forget": "+".join(config["forget"]["classes"]),
                         "alpha": config["alpha"], "seed": config["seed"], "dirty": record.get("git_dirty"),
                         **record["metrics"]})
    return with_gaps(pd.DataFrame(rows).drop_duplicates("id")) if rows else pd.DataFrame()


def with_gaps(records: pd.DataFrame) -> pd.DataFrame:
    """The records with `gap/<metric>` and `gap/avg` (DEFINITIONS) where an oracle record matches; unchanged when the
    records hold no oracle. Raises UserError when two oracle settings match one record: which one is the truth?"""
    oracle = records[(records["method"] == ORACLE) & (records["alpha"] == 1)]
    if oracle.empty:
        return records
    if oracle.duplicated(ORACLE_KEY).any():
        raise UserError(f"several {ORACLE} settings for one forget set and seed ({sorted(oracle['params'].unique())}): "
                        "report each from its own results folder")
    metrics = [m for m in GAPPED if m in records] + [c for c in cross_accuracies(records) if not c.endswith("_before")]
    truth = records[ORACLE_KEY].merge(oracle[[*ORACLE_KEY, *metrics]], on=ORACLE_KEY, how="left")
    gaps = (records[metrics].reset_index(drop=True) - truth[metrics]).abs().add_prefix("gap/")
    averaged = [f"gap/{m}" for m in metrics if m in AVERAGED or m.startswith("cross/")]
    gaps.insert(0, "gap/avg", gaps[averaged].mean(axis=1, skipna=False))
    return pd.concat([records.reset_index(drop=True), gaps], axis=1)


def cross_accuracies(records: pd.DataFrame) -> list[str]:
    """The cross-dataset accuracy columns, each after unlearning and then its `_before`, sorted by dataset."""
    return sorted(c for c in records.columns if CROSS.fullmatch(c))


def settings(method: dict) -> str:
    """A method's own settings as `key=value` words (nested keys dotted, the data regime by its class), leaving
    out what every method shares: alpha, seed, paths, the trainer."""
    flat = pd.json_normalize(method, sep=".").iloc[0].to_dict()
    shared = ("alpha", "seed", "cache_dir", "trainer.", "_partial_", "module._target_", "loss._target_")
    words = [f"{key.removeprefix('module.')}={value}" for key, value in flat.items()
             if key != "_target_" and not any(part in key for part in shared)]
    return " ".join(word.replace("samples._target_=baselines.samples.", "samples=") for word in words)


def metric_columns(records: pd.DataFrame) -> list[str]:
    """The metrics of METRICS that the records have, every cross-dataset accuracy, each beside its before, then the
    gaps to the oracle."""
    return ([m for m in METRICS if m in records] + cross_accuracies(records)
            + sorted((c for c in records.columns if c.startswith("gap/")), key=lambda c: c != "gap/avg"))


def per_forget_set(records: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame:
    """Metrics (by default `metric_columns(records)`) per setting and forget set, averaged over seeds."""
    metrics = metric_columns(records) if metrics is None else metrics
    groups = records.groupby([*SETTING, "forget"], dropna=False)
    return central(groups, metrics).join(groups.size().rename("seeds")).reset_index()


def central(groups, metrics: list[str]) -> pd.DataFrame:
    """Each metric's mean per group, the median for times (MEDIAN)."""
    return pd.concat([groups[[m]].median() if MEDIAN.fullmatch(m) else groups[[m]].mean() for m in metrics], axis=1)


def summarize(records: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame:
    """One row per setting: each metric's mean and its two standard deviations (DEFINITIONS), with the number of
    forget sets and seeds it comes from; the metrics are `metrics`, by default `metric_columns(records)`."""
    metrics = metric_columns(records) if metrics is None else metrics
    by_forget = per_forget_set(records, metrics).groupby(SETTING, dropna=False)
    by_seed = central(records.groupby([*SETTING, "seed"], dropna=False), metrics).groupby(SETTING, dropna=False)
    stats = {"mean": central(by_forget, metrics), "std_forget_sets": by_forget[metrics].std(),
             "std_seeds": by_seed.std()}
    columns = {metric if name == "mean" else f"{metric} {name}": stat[metric]
               for metric in metrics for name, stat in stats.items()}
    counts = records.groupby(SETTING, dropna=False).agg(**{"forget sets": ("forget", "nunique"),
                                                           "seeds": ("seed", "nunique")})
    return reference_first(pd.DataFrame(columns).join(counts).reset_index())


def reference_first(summary: pd.DataFrame) -> pd.DataFrame:
    """The rows of the original model and of the oracle above every method's, the rest in their order."""
    rank = summary["method"].map({ORIGINAL: 0, ORACLE: 1}).fillna(2)
    return summary.iloc[rank.argsort(kind="stable")].reset_index(drop=True)


def leakage(records: pd.DataFrame) -> pd.DataFrame | None:
    """LEAKAGE summarised per setting over the records at the largest alpha that have a leakage metric, under one row
    per model and dataset for the original model (method ORIGINAL, alpha 0: the `_before` metrics of the same records);
    None when no record has a leakage metric."""
    leaks = [m for m in LEAKAGE[1:] if m in records]
    if not leaks:
        return None
    measured = records[records[leaks].notna().any(axis=1)]
    top = measured[measured["alpha"] == measured["alpha"].max()]
    metrics = [m for m in LEAKAGE if m in top] + [f"gap/{m}" for m in LEAKAGE if f"gap/{m}" in top]
    before = {f"{m}_before": m for m in metrics if f"{m}_before" in top}
    original = top.drop(columns=metrics).rename(columns=before).assign(method=ORIGINAL, params="", alpha=0.0)
    methods = summarize(top, metrics)
    return pd.concat([summarize(original, list(before.values())), methods], ignore_index=True)[methods.columns]


def fmt(value: float, decimals: int = 2) -> str:
    """Two decimals (accuracies are in percent); two significant digits below 0.1 (seconds); empty for NaN. Values
    below 1e-9 are float round-off (the std of equal numbers), written as 0."""
    if pd.isna(value):
        return ""
    return f"{value:.{decimals}f}" if abs(value) < 1e-9 or abs(value) >= 0.1 else f"{value:.2g}"


def decimals(metric: str) -> int:
    """Three decimals for AUROCs, which live in [0.5, 1] and differ in the third; two for everything else."""
    return 3 if "auroc" in metric else 2


def with_spread(summary: pd.DataFrame, spread: str) -> pd.DataFrame:
    """The summary as `mean ± std` cells, the std being `std_forget_sets` or `std_seeds`; no ± where it is NaN."""
    metrics = [c for c in summary.columns if f"{c} {spread}" in summary.columns]
    cells = {m: [fmt(mean, decimals(m)) + ("" if pd.isna(std) else f" ± {fmt(std, decimals(m))}")
                 for mean, std in zip(summary[m], summary[f"{m} {spread}"], strict=True)] for m in metrics}
    return pd.concat([summary[SETTING], pd.DataFrame(cells, index=summary.index),
                      summary[["forget sets", "seeds"]]], axis=1)


def render(table: pd.DataFrame, tablefmt: str = "pipe") -> str:
    """A table of formatted cells as tabulate writes it: names left-aligned, numbers right-aligned."""
    align = ["left" if c in ("model", "dataset", "method", "params", "forget") else "right" for c in table.columns]
    return table.to_markdown(index=False, tablefmt=tablefmt, disable_numparse=True, colalign=align)


def latex(table: pd.DataFrame, caption: str) -> str:
    """A booktabs table (tabulate escapes LaTeX's special characters; ± is plain UTF-8)."""
    tabular = render(table, "latex_booktabs")
    return f"\\begin{{table}}\n\\centering\n\\caption{{{caption}}}\n{tabular}\n\\end{{table}}\n"


def provenance(records: pd.DataFrame) -> str:
    """A warning naming the records computed by code that differed from its commit (`git_dirty`), if any."""
    dirty = records.loc[records["dirty"] == True, "id"]  # noqa: E712 (None: no git, neither clean nor dirty)
    if dirty.empty:
        return ""
    return (f"**Warning: {len(dirty)} of {len(records)} records come from a tree with uncommitted changes**, so no "
            f"commit reproduces them: rerun them from a commit ({', '.join(sorted(dirty)[:5])}"
            f"{', …' if len(dirty) > 5 else ''}).\n\n")


def write_plots(summary: pd.DataFrame, out: Path) -> list[Path]:
    """Each plot kind of plots.KINDS for each (model, dataset): `<kind>_<model>_<dataset>.png`."""
    paths = []
    for (model, dataset), group in summary.groupby(["model", "dataset"]):
        for kind, plot in plots.KINDS.items():
            path = out / re.sub(r"[^\w.-]+", "_", f"{kind}_{model}_{dataset}.png")
            if plot(group, path) is not False:  # False: the records have nothing this plot shows, and it drew nothing
                paths.append(path)
    return paths


def write_report(*results_dirs: Path) -> str:
    """Writes report.md, report.csv (the summary, numbers), report.tex and the plots into the first folder, and
    leakage.csv where records have leakage metrics; returns the markdown. Raises UserError when there is no complete
    record."""
    out = results_dirs[0]
    records = load_records(*results_dirs)
    if records.empty:
        folders = ", ".join(str(folder / "records") for folder in results_dirs)
        raise UserError(f"no complete records in {folders}: run `make run` first")
    summary, per_set = summarize(records), per_forget_set(records)
    tables = {"Headline: mean over forget sets and seeds, ± over forget sets, Δ against before forgetting":
              headline(summary)}
    tables |= {f"Mean ± std over {over}": with_spread(summary, spread) for spread, over in SPREADS.items()}
    summary.to_csv(out / "report.csv", index=False)
    leaks = leakage(records)
    if leaks is not None:
        title = f"Leakage at alpha = {leaks['alpha'].max():g} (first: the original model), mean ± std over forget sets"
        tables[title] = leakage_table(leaks)
        leaks.to_csv(out / "leakage.csv", index=False)
    per_set[metric_columns(records)] = per_set[metric_columns(records)].map(fmt)
    plotted = metric_columns(records)  # and the leakage metrics with their before, for the leakage plot
    plotted += [c for c in records.columns if c.removesuffix("_before") in LEAKAGE and c not in plotted]
    pngs = write_plots(summarize(records, plotted), out)
    sections = [f"{DEFINITIONS}\n"] + [f"## {title}\n\n{render(table)}\n" for title, table in tables.items()]
    sections += [f"## Per forget set (mean over seeds)\n\n{render(per_set)}\n",
                 "## Plots\n\n" + "\n".join(f"![{png.stem}]({png.name})" for png in pngs) + "\n"]
    heading = f"# Report: {len(records)} records, {len(summary)} settings\n\n{provenance(records)}"
    markdown = heading + "\n".join(sections)
    (out / "report.md").write_text(markdown)
    (out / "report.tex").write_text("% needs \\usepackage{booktabs}\n"
                                    + "\n".join(latex(table, title) for title, table in tables.items()))
    return markdown


def headline(summary: pd.DataFrame) -> pd.DataFrame:
    """The table README quotes: forget accuracy and the gaps to the oracle with their spread over forget sets,
    retain and cross-dataset accuracy with their change from before forgetting, the median cost, the counts; full
    strength first, each alpha's rows in the summary's order (the oracle first)."""
    summary = summary.sort_values("alpha", ascending=False, kind="stable").reset_index(drop=True)
    def spread(metric: str) -> list[str]:
        return with_spread(summary[[*SETTING, "forget sets", "seeds", metric, f"{metric} std_forget_sets"]],
                           "std_forget_sets")[metric].tolist()

    def delta(metric: str) -> list[str]:
        if f"{metric}_before" not in summary:
            return summary[metric].map(fmt).tolist()
        return [f"{fmt(after)} ({after - before:+.2f})"
                for after, before in zip(summary[metric], summary[f"{metric}_before"], strict=True)]

    crosses = [c for c in summary.columns if CROSS.fullmatch(c) and not c.endswith("_before")]
    cells = {m: spread(m) for m in ("forget/acc",) if m in summary}
    cells |= {f"{m} (Δ)": delta(m) for m in ("retain/acc", *crosses) if m in summary}
    cells |= {g: spread(g) for g in ("gap/avg", "gap/forget/acc") if g in summary}
    cells |= {f"{m} (median)": summary[m].map(fmt).tolist() for m in ("time/unlearn_s",) if m in summary}
    cells["forget sets × seeds"] = [f"{f} × {n}" for f, n in zip(summary["forget sets"], summary["seeds"], strict=True)]
    return pd.concat([summary[settings_shown(summary)], pd.DataFrame(cells, index=summary.index)], axis=1)


def leakage_table(leaks: pd.DataFrame) -> pd.DataFrame:
    """The leakage summary as mean ± std over forget sets, its settings as `settings_shown` says."""
    table = with_spread(leaks, "std_forget_sets")
    return table.drop(columns=[c for c in SETTING if c not in settings_shown(leaks)])


def settings_shown(summary: pd.DataFrame) -> list[str]:
    """The setting columns worth a column: method and alpha; model, dataset and the method's settings where they
    vary (several models, or an ablation of one method's settings)."""
    varying = {"model": summary["model"].nunique() > 1, "dataset": summary["dataset"].nunique() > 1,
               "params": summary.groupby("method")["params"].nunique().max() > 1}
    return [c for c in SETTING if varying.get(c, True)]


def overview(summary: pd.DataFrame) -> pd.DataFrame:
    """The few columns a console shows (what `make run` prints): accuracies after and before forgetting, on other
    datasets too, and the mean gap to the oracle where there is one; a method's settings only where it has several."""
    shown = [c for c in ["forget/acc", "forget/acc_before", "retain/acc", "retain/acc_before"] if c in summary]
    shown += [c for c in summary.columns if CROSS.fullmatch(c)] + [c for c in ["gap/avg"] if c in summary]
    return pd.concat([summary[settings_shown(summary)], summary[shown].map(fmt)], axis=1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ccup.report", description=__doc__)
    parser.add_argument("results_dirs", nargs="*", type=Path, default=[Path("results")], metavar="results_dir",
                        help="folders with records/*.json (default: results); the report goes into the first")
    args = parser.parse_args(argv)
    try:
        write_report(*args.results_dirs)
    except UserError as error:
        sys.exit(f"error: {error}")
    out = args.results_dirs[0]
    print(f"{render(overview(pd.read_csv(out / 'report.csv')))}\n\nfull report: {out / 'report.md'}")


if __name__ == "__main__":
    main()
