"""Tables to files: `write_report` writes report.{md,csv,tex}, paired.csv, leakage.csv and the plots
(PNG) of the records of results folders into the first; `main` is `python -m ccup.report`."""
import argparse
import re
import sys
from pathlib import Path

import pandas as pd

from ccup import plots
from ccup.errors import UserError
from ccup.report.records import (
    ANCHOR,
    GAP,
    HEADLINE,
    NO_ORACLE,
    ORACLE,
    declared_columns,
    load_records,
)
from ccup.report.statistics import (
    CONFIDENCE,
    PER_MODEL,
    POOLED,
    leakage,
    metric_columns,
    paired,
    per_forget_set,
    summarize,
)
from ccup.report.tables import (
    DEFINITIONS,
    agreement,
    fmt,
    headline,
    latex,
    overview,
    paired_table,
    render,
    settings_shown,
    time_spent,
    with_full_settings,
    with_intervals,
)


def dirty_warning(records: pd.DataFrame) -> str:
    """A warning naming the records computed by code that differed from its commit (`git_dirty`), if
    any."""
    # None: no git, neither clean nor dirty
    dirty = records.loc[records["dirty"] == True, "id"]  # noqa: E712
    if dirty.empty:
        return ""
    return (f"**Warning: {len(dirty)} of {len(records)} records come from a tree with uncommitted "
            "changes**, so no commit reproduces them: rerun them from a commit "
            f"({', '.join(sorted(dirty)[:5])}{', …' if len(dirty) > 5 else ''}).\n\n")


def write_plots(summary: pd.DataFrame, out: Path,
                tasks: dict[str, str] | None = None) -> list[Path]:
    """Each plot kind of plots.KINDS for each (model, dataset) and task:
    `<kind>_<model>_<dataset>.png`, with the task's label (`tasks`: task_id -> `task_labels`' words,
    else the start of its hash) in the name and title where the (model, dataset) has several. A plot
    never mixes rows that the tables keep apart on their task: its reference lines, before
    forgetting and the oracle, are one task's (two folder datasets are two tasks of `folder`)."""
    paths = []
    for (model, dataset), rows in summary.groupby(["model", "dataset"]):
        several = rows["task_id"].nunique() > 1
        for task_id, group in rows.groupby("task_id"):
            task = ((tasks or {}).get(task_id) or f"#{task_id[:6]}") if several else ""
            for kind, plot in plots.KINDS.items():
                name = f"{kind}_{model}_{dataset}" + (f"_{task}" if task else "")
                path = out / (re.sub(r"[^\w.-]+", "_", name).strip("_") + ".png")
                if plot(group.assign(task=task), path) is not False:  # False: it drew nothing
                    paths.append(path)
    return paths


def write_report(*results_dirs: Path) -> str:
    """The report of every complete record in the folders' records/.

    Args:
        results_dirs: results folders (`results_dir` of the runs); the report goes into the first.

    Returns:
        The markdown of report.md, written beside report.csv (the summary, numbers), report.tex and
        the plots; paired.csv where methods pair with CCUP at alpha = 1, leakage.csv where an
        evaluation declares columns.

    Raises:
        UserError: no complete record in any folder.
    """
    out = results_dirs[0]
    records = load_records(*results_dirs)
    if records.empty:
        folders = ", ".join(str(folder / "records") for folder in results_dirs)
        raise UserError(f"no complete records in {folders}: run `make run` first")
    summary, per_set = summarize(records), per_forget_set(records)
    ci = f"mean [{CONFIDENCE:.0%} CI]"
    tables = {f"Headline: {ci} over forget sets, alpha = 1 first": headline(summary)}
    score = HEADLINE if HEADLINE in records else GAP
    pairs = paired(records, score)
    if pairs is not None:
        anchor = records.loc[records["role"] == ANCHOR, "method"].iloc[0]
        tables[f"Paired with {anchor} at alpha = 1: {score} difference, {ci}"] = paired_table(pairs)
        pairs.to_csv(out / "paired.csv", index=False)
        # several models or datasets: each row's forget sets over them all
        if records["task_id"].nunique() > 1:
            pooled = paired(records, score, POOLED)
            tables[f"Paired with {anchor} over every model and dataset: {score} difference, "
                   f"{ci}"] = paired_table(pooled)
            pooled.to_csv(out / "paired_pooled.csv", index=False)
        # several models: each row's forget sets over one model's datasets (the first table's rows
        # where each model has one), and on which models each verdict is resolved
        if records["model"].nunique() > 1:
            per_model = paired(records, score, PER_MODEL)
            if records.groupby("model")["dataset"].nunique().max() > 1:
                tables[f"Paired with {anchor} on each model, over its datasets: {score} "
                       f"difference, {ci}"] = paired_table(per_model)
            tables["Resolved on which models: every model, some only, or none"] = (
                agreement(per_model))
            per_model.to_csv(out / "paired_per_model.csv", index=False)
    tables["What each method learnt from, beside the class names"] = (
        records[[c for c in settings_shown(summary) if c not in ("alpha", "classes")] + ["data"]]
        .drop_duplicates().reset_index(drop=True))
    tables[f"Every metric, {ci}"] = with_intervals(summary)
    if (spent := time_spent(records)) is not None:
        tables["Where the time went: minutes summed over each method's jobs"] = spent
    with_full_settings(summary, records).to_csv(out / "report.csv", index=False)
    leaks = leakage(records)
    if leaks is not None:
        title = f"Leakage at alpha = {leaks['alpha'].max():g} (first: the original model), {ci}"
        tables[title] = with_intervals(leaks)
        leaks.to_csv(out / "leakage.csv", index=False)
    per_set[metric_columns(records)] = per_set[metric_columns(records)].map(fmt)
    # and the leakage metrics with their before, for the leakage plot
    plotted = metric_columns(records)
    declared_here = set(declared_columns(records))
    plotted += [c for c in records.columns
                if c.removesuffix("_before") in declared_here and c not in plotted]
    tasks = dict(zip(records["task_id"], records["task"], strict=True))
    pngs = write_plots(summarize(records, plotted), out, tasks)
    sections = [f"{DEFINITIONS}\n"] + [f"## {title}\n\n{render(table)}\n"
                                       for title, table in tables.items()]
    sections += [f"## Per forget set (mean over seeds)\n\n{render(per_set)}\n",
                 "## Plots\n\n" + "\n".join(f"![{png.stem}]({png.name})" for png in pngs) + "\n"]
    splits = sorted(set(records["classes"].fillna("")) - {""})
    classes = f"Forget classes: {' and '.join(splits)} (`classes`).\n\n" if splits else ""
    classes += f"{NO_ORACLE}\n\n" if not (records["role"] == ORACLE).any() else ""
    heading = (f"# Report: {len(records)} records, {len(summary)} settings\n\n"
               f"{classes}{dirty_warning(records)}")
    markdown = heading + "\n".join(sections)
    (out / "report.md").write_text(markdown)
    (out / "report.tex").write_text("% needs \\usepackage{booktabs}\n"
                                    + "\n".join(latex(table, title)
                                                for title, table in tables.items()))
    return markdown


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ccup.report", description=__doc__)
    parser.add_argument("results_dirs", nargs="*", type=Path, default=[Path("results")],
                        metavar="results_dir",
                        help="folders with records/*.json (default: results); the report goes into "
                             "the first")
    args = parser.parse_args(argv)
    try:
        write_report(*args.results_dirs)
    except UserError as error:
        sys.exit(f"error: {error}")
    out = args.results_dirs[0]
    print(f"{render(overview(pd.read_csv(out / 'report.csv')))}\n\n"
          f"full report: {out / 'report.md'}")


if __name__ == "__main__":
    main()
