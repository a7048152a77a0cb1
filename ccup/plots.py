"""Plots of a report summary (one row per setting, ccup.report.summarize), one function per kind,
each writing a PNG. Every mean is drawn with its confidence interval (`<metric> ci_low`, `<metric>
ci_high`); accuracy axes span 0-100 % and AUROC axes 0-1, so that no axis magnifies a change the
tables call unresolved.

Figures are made with matplotlib's object API, never pyplot: a bare `Figure` renders with the Agg
backend, needs no display and keeps no global state between plots."""
import textwrap
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.figure import Figure

ACCURACIES = ["forget/acc", "retain/acc"]
COLUMNS = ["method", "role", "setting", "alpha", *ACCURACIES, "forget/acc_before",
           "retain/acc_before", "time/unlearn_s", "leak/probe_auroc", "leak/probe_auroc_before"]
PERCENT = (-2, 102)  # accuracy axes: the whole range, a margin for markers at 0 and 100
UNIT = (0, 1)  # AUROC axes
BEFORE = {"color": "grey", "linestyle": "--", "linewidth": 1, "label": "before forgetting"}
# the role whose alpha = 1 is the gold standard: the model retrained without the forget classes
ORACLE = "oracle"
RETRAINED = {"color": "black", "linestyle": ":", "linewidth": 1.2,
             "label": "retrained without the forget classes"}


def pareto_front(points: pd.DataFrame) -> pd.Series:
    """True for the points no other point dominates: none has retain accuracy as high and forget
    accuracy as low, and is better in one of them. Points with a missing accuracy are never on the
    front."""
    # (n,)
    retain, forget = points["retain/acc"].to_numpy(float), points["forget/acc"].to_numpy(float)
    r, f = retain[:, None], forget[:, None]  # (n, 1): row i is point i, column j another point j
    dominated = ((retain >= r) & (forget <= f) & ((retain > r) | (forget < f))).any(axis=1)
    return pd.Series(~dominated & ~np.isnan(retain) & ~np.isnan(forget), index=points.index)


def prepare(summary: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The summary with every plotted column (NaN where the records lack a metric) and a `label` per
    method and settings, and one colour per label, the same in every plot. A label names the
    settings only of a method run with several (an ablation), wrapped: one method's dozen settings
    in full would crowd the axes out of the figure."""
    columns = [*COLUMNS, *(f"{c} {b}" for c in COLUMNS[4:] for b in ("ci_low", "ci_high"))]
    summary = summary.reindex(columns=[*summary.columns, *(c for c in columns if c not in summary)])
    setting = summary["setting"].fillna("")
    several = summary.groupby("method")["setting"].transform("nunique") > 1
    named = (summary["method"] + " " + setting.where(several, "")).str.strip()
    # validation and test rows: one line each
    if "classes" in summary and summary["classes"].nunique() > 1:
        named = named + " (" + summary["classes"].fillna("other").replace("", "other") + ")"
    summary["label"] = named.map(lambda label: textwrap.fill(label, 40, subsequent_indent="  "))
    labels = sorted(summary["label"].unique())
    # 40 distinct colours before one repeats
    names = ["tab10"] if len(labels) <= 10 else ["tab20", "tab20b"]
    palette = [color for name in names for color in matplotlib.colormaps[name].colors]
    return summary, {label: palette[i % len(palette)] for i, label in enumerate(labels)}


def reference(draw, summary: pd.DataFrame, metric: str) -> None:
    """The references of a metric, where the records have them: a dashed line at its mean before
    forgetting, a dotted one at the oracle's (the `oracle` role at alpha = 1)."""
    if pd.notna(value := summary[f"{metric}_before"].mean()):
        draw(value, **BEFORE)
    if pd.notna(value := summary.loc[(summary["role"] == ORACLE) & (summary["alpha"] == 1),
                                     metric].mean()):
        draw(value, **RETRAINED)


def title(summary: pd.DataFrame) -> str:
    """What a plot shows: the model, the dataset, and its task where its dataset has several
    (`task`, from ccup.report.write_plots)."""
    task = summary["task"].iloc[0] if "task" in summary else ""
    shown = f"{summary['model'].iloc[0]} on {summary['dataset'].iloc[0]}"
    return f"{shown} ({task})" if task else shown


def error(points: pd.DataFrame, metric: str) -> np.ndarray | None:
    """The (2, n) distances from each mean to its interval's ends, for matplotlib's errorbar; None
    without any."""
    low, high = (points[f"{metric} ci_low"].to_numpy(float),
                 points[f"{metric} ci_high"].to_numpy(float))
    if np.isnan(low).all():
        return None
    mean = points[metric].to_numpy(float)
    # an end at the mean, less round-off
    return np.nan_to_num(np.stack([mean - low, high - mean])).clip(min=0)


def log_scale(ax, seconds: pd.Series) -> None:
    """A log x axis spanning whole decades, labelled at each decade: a narrow range has no decade
    tick inside it."""
    seconds = seconds[seconds > 0]
    if seconds.empty:
        return
    ax.set_xscale("log")
    ax.set_xlim(10 ** np.floor(np.log10(seconds.min())),
                10 ** (np.floor(np.log10(seconds.max())) + 1))
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda x, _: f"{x:g}"))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())


def save(fig: Figure, axes, path: Path) -> None:
    """The PNG, with one legend beside the axes: one entry per label (reference lines drawn twice
    share one)."""
    handles, labels = axes[0].get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    fig.legend(unique.values(), unique.keys(), loc="outside right upper", fontsize="small")
    fig.savefig(path, dpi=120)


def alpha_curve(line: pd.DataFrame, metric: str) -> tuple[list, list]:
    """A method's (alpha, metric) points, sorted, from alpha = 0 at its before-forgetting value when
    the sweep did not run alpha = 0: every method's alpha = 0 is the original model (W_0 = I,
    theta_0 the original weights)."""
    line = line.sort_values("alpha")
    alphas, values = line["alpha"].tolist(), line[metric].tolist()
    if 0 not in alphas and pd.notna(before := line[f"{metric}_before"].mean()):
        alphas, values = [0.0, *alphas], [before, *values]
    return alphas, values


def plot_alpha(summary: pd.DataFrame, path: Path) -> None:
    """Forget and retain accuracy against alpha, one line per method and settings (means over forget
    sets and seeds) starting at the original model, dashed at the accuracies before forgetting."""
    summary, colors = prepare(summary)
    fig = Figure(figsize=(11, 4), layout="constrained")
    axes = fig.subplots(1, 2, sharex=True)
    for ax, metric in zip(axes, ACCURACIES, strict=True):
        for label, line in summary.groupby("label"):
            ax.plot(*alpha_curve(line, metric), marker="o", color=colors[label], label=label)
            line = line.sort_values("alpha")
            ax.errorbar(line["alpha"], line[metric], yerr=error(line, metric), fmt="none",
                        color=colors[label], capsize=2)
        reference(ax.axhline, summary, metric)
        ax.set(xlabel="alpha", ylabel=f"{metric} (%)", title=f"{metric} against alpha",
               xlim=(-0.05, 1.05), ylim=PERCENT)
    fig.suptitle(title(summary))
    save(fig, axes, path)


def plot_pareto(summary: pd.DataFrame, path: Path) -> None:
    """Forget against retain accuracy, one marker per (method and settings, alpha), the alpha beside
    it, and the Pareto front of the settings no other beats (high retain, low forget accuracy)."""
    summary, colors = prepare(summary)
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.subplots()
    for label, points in summary.groupby("label"):
        ax.scatter(points["retain/acc"], points["forget/acc"], color=colors[label], label=label,
                   zorder=2)
        ax.errorbar(points["retain/acc"], points["forget/acc"], xerr=error(points, "retain/acc"),
                    yerr=error(points, "forget/acc"), fmt="none", color=colors[label], capsize=2,
                    zorder=2)
        for _, point in points.iterrows() if summary["alpha"].nunique() > 1 else ():
            ax.annotate(f"{point['alpha']:g}", (point["retain/acc"], point["forget/acc"]),
                        fontsize="x-small", xytext=(3, 3), textcoords="offset points")
    front = summary[pareto_front(summary)].sort_values("retain/acc")
    ax.plot(front["retain/acc"], front["forget/acc"], color="black", linewidth=1, zorder=1,
            label="Pareto front")
    reference(ax.axvline, summary, "retain/acc")
    reference(ax.axhline, summary, "forget/acc")
    ax.set(xlabel="retain/acc (%), higher is better", ylabel="forget/acc (%), lower is better",
           xlim=PERCENT, ylim=PERCENT,
           title=f"{title(summary)}: forget against retain, by alpha")
    save(fig, [ax], path)


def plot_cost(summary: pd.DataFrame, path: Path) -> None:
    """Forget and retain accuracy against the cost of unlearning (`time/unlearn_s`, log scale), one
    marker per method and settings at the largest alpha of the sweep."""
    summary, colors = prepare(summary)
    alpha = summary["alpha"].max()
    top = summary[summary["alpha"] == alpha]
    fig = Figure(figsize=(11, 4), layout="constrained")
    axes = fig.subplots(1, 2, sharex=True)
    for ax, metric in zip(axes, ACCURACIES, strict=True):
        for label, points in top.groupby("label"):
            ax.scatter(points["time/unlearn_s"], points[metric], color=colors[label], label=label)
            ax.errorbar(points["time/unlearn_s"], points[metric], yerr=error(points, metric),
                        fmt="none", color=colors[label], capsize=2)
        reference(ax.axhline, summary, metric)
        log_scale(ax, top["time/unlearn_s"])
        ax.set(xlabel="time/unlearn_s (s, median)", ylabel=f"{metric} (%)",
               title=f"{metric} against cost", ylim=PERCENT)
    fig.suptitle(f"{title(summary)}, alpha = {alpha:g}")
    save(fig, axes, path)


def plot_leakage(summary: pd.DataFrame, path: Path) -> bool:
    """Forget accuracy against the linear probe's AUROC (`leak/probe_auroc`), one marker per method
    and settings at the largest alpha of the sweep, read against the retrained model (dotted, where
    its records are there): a model that never saw the class may still separate it, so the oracle,
    not 0.5, is where a method that erased the class lands. Returns False, drawing nothing, when no
    record has a probe AUROC."""
    summary, colors = prepare(summary)
    alpha = summary["alpha"].max()
    top = summary[(summary["alpha"] == alpha) & summary["leak/probe_auroc"].notna()]
    if top.empty:
        return False
    fig = Figure(figsize=(8, 5), layout="constrained")
    ax = fig.subplots()
    for label, points in top.groupby("label"):
        ax.scatter(points["leak/probe_auroc"], points["forget/acc"], color=colors[label],
                   label=label, zorder=2)
        ax.errorbar(points["leak/probe_auroc"], points["forget/acc"],
                    xerr=error(points, "leak/probe_auroc"), yerr=error(points, "forget/acc"),
                    fmt="none", color=colors[label], capsize=2, zorder=2)
    reference(ax.axvline, top, "leak/probe_auroc")
    reference(ax.axhline, top, "forget/acc")
    ax.set(xlabel="leak/probe_auroc", ylabel="forget/acc (%), lower is better", xlim=UNIT,
           ylim=PERCENT, title=f"{title(summary)}: leakage, alpha = {alpha:g}")
    save(fig, [ax], path)
    return True


# prefix: plot
KINDS = {"alpha": plot_alpha, "pareto": plot_pareto, "cost": plot_cost, "leakage": plot_leakage}
