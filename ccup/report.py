"""Tables and plots from result records: `python -m ccup.report [results_dir ...]` reads `<dir>/records/*.json`
and writes report.{md,csv,tex} and the plots (PNG) into the first results_dir."""
import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from hydra.utils import get_class
from scipy import stats

from ccup import plots, storage
from ccup.errors import UserError
from ccup.record import AXES, METHOD_KEYS, NOT_IDENTITY
from ccup.roles import record_role

# The evaluator's own metric columns, first in every table; each evaluation's follow, as it declares them
# (ccup.evals.Evaluation.columns, read from the records' configs), then the cost.
SCORES = ["forget/acc", "forget/acc_before", "retain/acc", "retain/acc_before", "retain/acc_delta", "all/acc"]
COST = "time/unlearn_s"
ORIGINAL = "before forgetting"  # the method cell of the original model's row
# Roles a method's config declares (ccup.method.ROLES): the oracle's records at alpha = 1 are the truth every gap is
# measured against; the anchor's, what every other row is paired with.
ORACLE, ANCHOR = "oracle", "anchor"
# Metrics read as a gap to the oracle on the same task, forget set and seed: |method - retrain|, but for relearning,
# whose sign matters (SIGNED: method - retrain, positive where the class comes back slower than after retraining).
GAPPED = ["forget/acc", "retain/acc", "all/acc", "retrieval/forget_ap", "retrieval/retain_map", "leak/probe_auroc",
          "forget/acc_heldout_prompts", "relearn/steps_to_half", "mia/forget_auroc"]
SIGNED = ["relearn/steps_to_half"]
GAP = "gap/forget_retain_cross"  # the mean of the forget, retain and cross-dataset accuracy gaps, each once
# The headline: the mean gap over the accuracies and the evidence that the class is gone, in percentage points
# (docs/method.md#the-headline-score). Retrieval is what a blocklist cannot fake: without it there is no headline.
HEADLINE = "gap/headline"
NO_ORACLE = ("No oracle among these records: the model retrained without the forget classes needs the recipe the suite "
             "trained the model with (model=tiny alone has one), so each row is read by its change from the original "
             "model (`*_delta`, `*_before`), not by its gap to retraining.")
EVIDENCE = ["retrieval/forget_ap", "retrieval/retain_map", "forget/acc_heldout_prompts"]
CROSS = re.compile(r"cross/.+/acc(_before)?")  # zero-shot accuracy on other datasets, after and before: all shown
# A row: its setting is everything else that differs; `classes` says whether its forget classes are the dataset's
# validation ones (what searches tune on) or its test ones (what a benchmark reports), never both in one row.
SETTING = ["model", "dataset", "method", "role", "setting", "classes", "alpha"]
ROW = [*SETTING, "task_id"]  # and the task it shares with its oracle, which the setting determines
MEDIAN = re.compile(r"time/.+")  # central value of these is the median: shared cores give a job the odd slow run
CONFIDENCE = 0.95
FULL = "setting in full"  # report.csv's setting cell with every value as it is, none shortened
# Choices and overrides never shown as a row's setting: the row's other columns, and what changes no number.
UNSHOWN = ("method", "forget", "experiment", "logger", "hydra", *AXES, *NOT_IDENTITY)

DEFINITIONS = f"""A row is one setting: every key of the resolved config but the seed, the forget set's classes (their
number counts), alpha and where results go. Its `setting` cell names the choices and overrides that differ between
the rows of the report (a method's own keys between that method's rows); runs that differ anywhere else carry a
`#` and the first characters of their setting's hash.

Each cell is the mean over forget sets of each forget set's mean over seeds (times: the median, as one slow run on
shared cores would move a mean), with its {CONFIDENCE:.0%} confidence interval in brackets: a percentile bootstrap
(scipy.stats.bootstrap, 9,999 resamples, seed 0) over the forget sets, the units that vary independently (a
deterministic method repeats one number over seeds); over the seeds where a row has one forget set. No interval
where a row has one record.

`role` is what a method's config declares it to be: the `oracle` (the model retrained without the forget classes),
a `reference` (a second oracle, another oracle definition, the blocklist), the `anchor` (the method every other row
is paired with), or a `method`.

`gap/<metric>` compares a record with the oracle's record at alpha = 1 of the same task (model, data, prompts),
forget set and seed: |method − oracle|, except `gap/relearn/steps_to_half`, method − oracle, positive where the
class comes back more slowly than after retraining. `{GAP}` is the mean of the forget, retain and cross-dataset
accuracy gaps, each once (several other datasets: their mean gap). `{HEADLINE}`, the headline, is the mean of those
three and of the gaps of the evidence that the class is gone: the forget classes' and the retained classes' retrieval
average precision and the forget accuracy with held-out prompts, each in percentage points, each once (those the
records have; none without retrieval, which a blocklist cannot fake). `*_delta` is after − before forgetting.
Without an oracle record the gap columns are absent.

The paired table compares each row's headline (`{GAP}` where there is none) with the anchor's at alpha = 1 on the
same task, forget set by forget set (their means over seeds): the mean difference with its bootstrap interval, and
the Wilcoxon signed-rank p. A difference is resolved where the interval leaves out 0."""


def load_records(*results_dirs: Path) -> pd.DataFrame:
    """`records_table` of the complete records in each folder's records/."""
    paths = [path for results_dir in results_dirs for path in sorted((results_dir / "records").glob("*.json"))]
    return records_table([json.loads(path.read_text()) for path in paths])


def records_table(records: list[dict]) -> pd.DataFrame:
    """One row per complete record: its setting (SETTING, with the hashes of its setting and task), its forget set,
    seed and metrics, after − before where both are measured, and its gaps to the oracle. A record given twice (the
    same id, found in several folders) counts once."""
    records = list({record["id"]: record for record in records if record["status"] == "complete"}.values())
    if not records:
        return pd.DataFrame()
    rows = [{"id": record["id"], "model": record["choices"]["model"], "dataset": record["config"]["dataset"]["name"],
             "method": record["choices"]["method"], "role": record_role(record),
             **setting_ids_of(record),
             "forget": "+".join(record["config"]["forget"]["classes"]), "classes": split_of(record["config"]),
             "alpha": record["config"]["alpha"],
             "seed": record["config"]["seed"], "dirty": record.get("git_dirty"),
             "data": learnt_from(record["config"]), "flagged": bool(record.get("warnings")),
             "declared": evaluation_columns(record["config"]), **record["metrics"]}
            for record in records]
    table = pd.DataFrame(rows)
    table.insert(5, "setting", setting_labels(table, records))
    table.insert(6, FULL, setting_labels(table, records, full=True))
    table["task"] = task_labels(table, records)
    for metric in ["retain/acc", *cross_accuracies(table)]:
        if f"{metric}_before" in table and not metric.endswith("_before"):
            table[f"{metric}_delta"] = table[metric] - table[f"{metric}_before"]
    return with_gaps(table)


def evaluation_columns(config: dict) -> tuple[str, ...]:
    """The metric columns a record's evaluations declare (`columns`), in its config's order; none of an evaluation
    whose code this interpreter cannot import (its metrics stay in report.csv)."""
    columns = []
    for node in config.get("eval", {}).values():
        try:
            columns += get_class(node["_target_"]).columns
        except (ImportError, ValueError, AttributeError):
            continue
    return tuple(columns)


def declared_columns(records: pd.DataFrame) -> list[str]:
    """The columns the records' evaluations declare that some record has, each once, in order."""
    columns = dict.fromkeys(column for row in records.get("declared", []) for column in row)
    return [column for column in columns if column in records]


def learnt_from(config: dict) -> str:
    """What a method learnt from, beside the class names every method gets: the oracle's recipe's train splits, a
    fine-tuning baseline's (or LEACE's) samples, or nothing more."""
    method = config["method"]
    if "recipe" in method:
        datasets = ", ".join(sorted(method["recipe"].get("train_data", {})))
        return f"all train images of {datasets} but the forget classes'"
    samples = method.get("samples")
    if not isinstance(samples, dict):
        return "class names only"
    kind = "synthetic" if samples.get("_target_", "").endswith("SyntheticSamples") else "train"
    return f"up to {samples['per_class']} {kind} images per class of {config['dataset']['name']}"


def setting_ids_of(record: dict) -> dict[str, str]:
    """A record's setting and task hashes (ccup.record.setting_ids); for a record written before records carried
    them, from its resolved config: without the axes and paths, and without every `seed` and `alpha` below the top
    but the model's, which is its recipe's own."""
    if "setting_id" in record:
        return {"setting_id": record["setting_id"], "task_id": record["task_id"]}
    config = record["config"]
    paths = {str(config[key]): f"<{key}>" for key in NOT_IDENTITY if isinstance(config.get(key), str)}

    def clean(node, top: str):
        if isinstance(node, dict):
            return {k: clean(v, top) for k, v in node.items() if top == "model" or k not in ("seed", "alpha")}
        if isinstance(node, list):
            return [clean(v, top) for v in node]
        for path, placeholder in paths.items():
            if isinstance(node, str) and node.startswith(path):
                return placeholder + node[len(path):]
        return node

    setting = {key: clean(value, key) for key, value in config.items() if key not in (*NOT_IDENTITY, *AXES)}
    setting["forget"] = f"{len(config['forget']['classes'])} classes"
    return {"setting_id": storage.digest(setting),
            "task_id": storage.digest({k: v for k, v in setting.items() if k not in METHOD_KEYS})}


def split_of(config: dict) -> str:
    """`validation` or `test` where a record's forget classes all lie in its dataset's validation_forget or
    test_forget list; empty for others (a forget set across both, a dataset config without the lists)."""
    classes = set(config["forget"]["classes"])
    for split in ("validation", "test"):
        if classes <= set(config["dataset"].get(f"{split}_forget", [])):
            return split
    return ""


def setting_labels(table: pd.DataFrame, records: list[dict], full: bool = False) -> list[str]:
    """Each record's `setting` cell (DEFINITIONS): the config choices and overrides (as
    `key=value`, by the value in its resolved config) whose values differ across the records, a
    method's own keys across that method's records; long values shortened (`words`), or with `full`
    as they are (report.csv's FULL)."""
    frame = setting_values(records, table.index)
    texts = frame.map(text)
    shown = {c: (texts.groupby(table["method"])[c].nunique() > 1 if c.startswith("method.")
                 else pd.Series(texts[c].nunique() > 1, index=table["method"].unique()))
             for c in texts.columns}
    cells = texts if full else in_words(frame)
    labels = [" ".join(f"{c}={row[c]}" for c in shown if shown[c][method])
              for method, (_, row) in zip(table["method"], cells.iterrows(), strict=True)]
    labels = pd.Series(labels, index=table.index)
    clash = table.assign(label=labels).groupby(["method", "label"])["setting_id"].transform(
        "nunique") > 1
    return [(f"{label} #{sid[:6]}".strip() if c else label)
            for label, sid, c in zip(labels, table["setting_id"], clash, strict=True)]


def setting_values(records: list[dict], index: pd.Index) -> pd.DataFrame:
    """Per record, the value of each config choice and overridden key that may name a setting."""
    groups = sorted({g for r in records for g in r["choices"] if "@" not in g and "/" not in g}
                    - set(UNSHOWN))
    keys = sorted({k for r in records for k in override_keys(r.get("overrides", []))
                   if k.split(".")[0] not in UNSHOWN[1:]})
    values = [[r["choices"].get(g) for g in groups] + [lookup(r["config"], k) for k in keys]
              for r in records]
    return pd.DataFrame(values, index=index, columns=[*groups, *keys], dtype=object)  # None: null


def task_labels(table: pd.DataFrame, records: list[dict]) -> list[str]:
    """Each record's task in words, for the plots drawn per task: the settings of its `setting`
    cell that its oracle shares (all but METHOD_KEYS; model and dataset are named apart), and its
    forget set's size, where they differ across the records; empty where all records share one
    task. Two tasks no setting tells apart are told by the start of their hash."""
    frame = setting_values(records, table.index)
    frame = frame[[c for c in frame.columns
                   if c not in ("model", "dataset") and c.split(".")[0] not in METHOD_KEYS]]
    sizes = table["forget"].str.count(r"\+").add(1)
    cells = in_words(frame.assign(forget=sizes.map(lambda n: f"{n} classes")))
    shown = [c for c in cells.columns if cells[c].nunique() > 1]
    labels = pd.Series([" ".join(f"{c}={row[c]}" for c in shown) for _, row in cells.iterrows()],
                       index=table.index)
    clash = table.assign(label=labels).groupby("label")["task_id"].transform("nunique") > 1
    return [(f"{label} #{tid[:6]}".strip() if c else label)
            for label, tid, c in zip(labels, table["task_id"], clash, strict=True)]


def override_keys(overrides: list[str]) -> list[str]:
    """The dotted keys a job's overrides set (`+method.x=1` sets method.x); group choices are in its choices."""
    keys = [override.split("=", 1)[0].lstrip("+~") for override in overrides]
    return [key for key in keys if "." in key and "@" not in key]


def lookup(config: dict, dotted: str):
    """The value at a dotted key of a resolved config; None where it has none."""
    node = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def text(value) -> str:
    """A setting's value as text: a string as it is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def in_words(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame of setting values as words, column by column (`words`)."""
    return pd.DataFrame({c: words(frame[c].tolist()) for c in frame.columns}, index=frame.index)


def words(values: list, width: int = 24) -> list[str]:
    """One column's setting values as words for a table cell: each whose text (`text`) has up to
    `width` characters as it is; a longer path by its last parts (`…/pets/images`: the last two, or
    as many as tell the column's paths apart); any other long value (a list of templates) by the
    start of its hash, having no shorter readable form."""
    texts = [text(value) for value in values]
    paths = {t for t in texts if len(t) > width and is_path(t)}
    parts = 2
    while len({tail(t, parts) for t in paths}) < len(paths):
        parts += 1
    return [t if len(t) <= width else tail(t, parts) if t in paths else f"#{storage.digest(v)[:6]}"
            for t, v in zip(texts, values, strict=True)]


def is_path(value: str) -> bool:
    """Whether a setting's value reads as a file path: it has a slash, and no line break or `{}`
    (a template)."""
    return "/" in value and "\n" not in value and "{}" not in value


def tail(path: str, parts: int) -> str:
    """A path's last `parts` parts after `…/`; the whole path where it has no more."""
    names = path.rstrip("/").split("/")
    return path if len(names) <= parts else "…/" + "/".join(names[-parts:])


def with_gaps(records: pd.DataFrame) -> pd.DataFrame:
    """The records with `gap/<metric>` and GAP (DEFINITIONS) where an oracle record matches; unchanged when the
    records hold no oracle. Raises UserError when two oracle settings match one record: which one is the truth?"""
    key = ["task_id", "forget", "seed"]
    oracle = records[(records["role"] == ORACLE) & (records["alpha"] == 1)]
    if oracle.empty:
        return records
    if oracle.duplicated(key).any():
        settings = sorted((oracle["method"] + " " + oracle["setting"]).str.strip().unique())
        raise UserError(f"several oracle settings for one forget set and seed ({settings}): report each from its own "
                        "results folder")
    crosses = [c for c in cross_accuracies(records) if not c.endswith("_before")]
    metrics = [m for m in GAPPED if m in records] + crosses
    truth = records[key].merge(oracle[[*key, *metrics]], on=key, how="left")
    gaps = records[metrics].reset_index(drop=True) - truth[metrics]
    unsigned = [m for m in metrics if m not in SIGNED]
    gaps[unsigned] = gaps[unsigned].abs()
    gaps = gaps.add_prefix("gap/")
    terms = [gaps[f"gap/{m}"] for m in ("forget/acc", "retain/acc") if m in metrics]
    terms += [gaps[[f"gap/{c}" for c in crosses]].mean(axis=1)] if crosses else []
    gaps.insert(0, GAP, mean_gap(terms))
    if "retrieval/forget_ap" in metrics:
        gaps.insert(0, HEADLINE, mean_gap(terms + [gaps[f"gap/{m}"] for m in EVIDENCE if m in metrics]))
    return pd.concat([records.reset_index(drop=True), gaps], axis=1)


def mean_gap(terms: list[pd.Series]) -> pd.Series:
    """The mean of gap terms, each once; NaN for a record that lacks one: never a mean over fewer terms than its row's
    other records have."""
    return pd.concat(terms, axis=1).mean(axis=1, skipna=False)


def cross_accuracies(records: pd.DataFrame) -> list[str]:
    """The cross-dataset accuracy columns, each after unlearning and then its `_before`, sorted by dataset."""
    return sorted(c for c in records.columns if CROSS.fullmatch(c))


def metric_columns(records: pd.DataFrame) -> list[str]:
    """The evaluator's SCORES, the columns the evaluations declare, the COST, every cross-dataset accuracy beside its
    before and its change, then the gaps to the oracle: those the records have."""
    crosses = [c for m in cross_accuracies(records) for c in (m, f"{m}_delta") if c in records]
    return ([m for m in SCORES if m in records] + declared_columns(records) + [m for m in [COST] if m in records]
            + crosses
            + sorted((c for c in records.columns if c.startswith("gap/")), key=lambda c: (c != HEADLINE, c != GAP)))


def per_forget_set(records: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame:
    """Metrics (by default `metric_columns(records)`) per setting and forget set, averaged over seeds."""
    metrics = metric_columns(records) if metrics is None else metrics
    groups = records.groupby([*ROW, "forget"], dropna=False)
    return central(groups, metrics).join(groups.size().rename("seeds")).reset_index()


def central(groups, metrics: list[str]) -> pd.DataFrame:
    """Each metric's mean per group, the median for times (MEDIAN)."""
    return pd.concat([groups[[m]].median() if MEDIAN.fullmatch(m) else groups[[m]].mean() for m in metrics], axis=1)


def interval(values, statistic=np.mean) -> tuple[float, float]:
    """The CONFIDENCE percentile-bootstrap interval of `statistic` over `values` (NaN left out); NaN with fewer than
    two values, the value itself where all are equal (nothing to resample)."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if len(values) < 2:
        return float("nan"), float("nan")
    if np.all(values == values[0]):
        return float(values[0]), float(values[0])
    ci = stats.bootstrap((values,), statistic, confidence_level=CONFIDENCE, n_resamples=9999, method="percentile",
                         random_state=0).confidence_interval
    return float(ci.low), float(ci.high)


def units(records: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """What a row's interval resamples: its forget sets (each one's mean over seeds), or its records where it has a
    single forget set."""
    per_set = per_forget_set(records, metrics)
    single = per_set.groupby(ROW, dropna=False)["forget"].transform("size") == 1
    single_rows = per_set.loc[single, ROW].drop_duplicates()
    own = records.merge(single_rows, on=ROW)[[*ROW, "forget", *metrics]]
    return pd.concat([per_set.loc[~single, [*ROW, "forget", *metrics]], own], ignore_index=True)


def summarize(records: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame:
    """One row per setting: each metric's central value (mean, median for times) with its interval (`<metric>
    ci_low`, `<metric> ci_high`; DEFINITIONS), the number of forget sets and seeds, and of flagged records."""
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
        **{"forget sets": ("forget", "nunique"), "seeds": ("seed", "nunique"), "flagged": ("flagged", "sum")})
    return reference_first(pd.DataFrame(columns).join(counts).reset_index())


def reference_first(summary: pd.DataFrame) -> pd.DataFrame:
    """The rows of the original model, then of the oracle, then of the references, above every method's, the rest in
    their order."""
    rank = summary["method"].map({ORIGINAL: 0}).fillna(summary["role"].map({ORACLE: 1, "reference": 2})).fillna(3)
    return summary.iloc[rank.argsort(kind="stable")].reset_index(drop=True)


def paired(records: pd.DataFrame, metric: str) -> pd.DataFrame | None:
    """Each row's `metric` against the anchor's at alpha = 1 on the same task (DEFINITIONS): pairs, mean difference
    (row − anchor) with its interval, the Wilcoxon p and what the data resolve. None without the metric or the anchor,
    or with several anchor settings on one task (an ablation: which one is the method?)."""
    if metric not in records:
        return None
    per_set = per_forget_set(records, [metric])
    anchor = per_set[(per_set["role"] == ANCHOR) & (per_set["alpha"] == 1)]
    if anchor.empty or (anchor.groupby("task_id")["setting"].nunique() > 1).any():
        return None
    name = anchor["method"].iloc[0]
    others = per_set[~per_set["role"].isin([ANCHOR, ORACLE])]
    pairs = others.merge(anchor[["task_id", "forget", metric]], on=["task_id", "forget"], suffixes=("", " ref"))
    rows = []
    for key, group in pairs.groupby(ROW, dropna=False, sort=False):
        diffs = (group[metric] - group[f"{metric} ref"]).dropna().to_numpy()
        low, high = interval(diffs)
        rows.append({**dict(zip(ROW, key, strict=True)), "pairs": len(diffs), "difference": diffs.mean(),
                     "ci_low": low, "ci_high": high, "wilcoxon p": wilcoxon_p(diffs),
                     "resolved": verdict(low, high, name)})
    return pd.DataFrame(rows) if rows else None


def wilcoxon_p(diffs: np.ndarray) -> float:
    """The two-sided Wilcoxon signed-rank p of differences; NaN where there are none but zeros."""
    return float(stats.wilcoxon(diffs).pvalue) if np.count_nonzero(diffs) else float("nan")


def verdict(low: float, high: float, anchor: str) -> str:
    """What an interval of row − anchor gap differences resolves."""
    if low > 0:
        return f"{anchor} closer to the oracle"
    if high < 0:
        return f"closer to the oracle than {anchor}"
    return "not resolved" if not np.isnan(low) else ""


def leakage(records: pd.DataFrame) -> pd.DataFrame | None:
    """Forget accuracy beside what the evaluations declare (`declared_columns`), summarised per setting over the records
    at the largest alpha that have one of them, under one row per model and dataset for the original model (method
    ORIGINAL, alpha 0: the `_before` metrics of the same records); None when no record has one."""
    leaks = declared_columns(records)
    if not leaks:
        return None
    shown = ["forget/acc", *leaks]
    measured = records[records[leaks].notna().any(axis=1)]
    top = measured[measured["alpha"] == measured["alpha"].max()]
    metrics = [m for m in shown if m in top] + [f"gap/{m}" for m in shown if f"gap/{m}" in top]
    before = {f"{m}_before": m for m in metrics if f"{m}_before" in top}
    original = top.drop(columns=metrics).rename(columns=before).assign(method=ORIGINAL, role="", setting="", alpha=0.0)
    original = original.drop_duplicates(["task_id", "forget", "seed"])  # one original per task, not per method
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
    """The summary's settings as `settings_shown` says, its metrics (by default all) as `mean [low, high]` cells,
    and its counts."""
    metrics = [c for c in summary.columns if f"{c} ci_low" in summary] if metrics is None else metrics
    cells = {m: [cell(*values, digits=decimals(m), sign="+" if m.endswith("_delta") else "")
                 for values in zip(summary[m], summary[f"{m} ci_low"], summary[f"{m} ci_high"], strict=True)]
             for m in metrics}
    counts = {"forget sets × seeds": pooled(summary)}
    if summary["flagged"].any():
        counts["flagged"] = summary["flagged"].map(lambda n: f"⚠ {n}" if n else "").tolist()
    return pd.concat([summary[settings_shown(summary)], pd.DataFrame({**cells, **counts}, index=summary.index)],
                     axis=1)


def pooled(summary: pd.DataFrame) -> list[str]:
    """What each row averages: `forget sets × seeds`."""
    return [f"{f} × {n}" for f, n in zip(summary["forget sets"], summary["seeds"], strict=True)]


def render(table: pd.DataFrame, tablefmt: str = "pipe") -> str:
    """A table of formatted cells as tabulate writes it: names left-aligned, numbers right-aligned."""
    names = ("model", "dataset", "method", "setting", "classes", "forget", "resolved", "data")
    align = ["left" if c in names else "right" for c in table.columns]
    return table.to_markdown(index=False, tablefmt=tablefmt, disable_numparse=True, colalign=align)


def latex(table: pd.DataFrame, caption: str) -> str:
    """A booktabs table (tabulate escapes LaTeX's special characters; Δ and ⚠ are plain UTF-8)."""
    tabular = render(table, "latex_booktabs")
    return f"\\begin{{table}}\n\\centering\n\\caption{{{caption}}}\n{tabular}\n\\end{{table}}\n"


def dirty_warning(records: pd.DataFrame) -> str:
    """A warning naming the records computed by code that differed from its commit (`git_dirty`), if any."""
    dirty = records.loc[records["dirty"] == True, "id"]  # noqa: E712 (None: no git, neither clean nor dirty)
    if dirty.empty:
        return ""
    return (f"**Warning: {len(dirty)} of {len(records)} records come from a tree with uncommitted changes**, so no "
            f"commit reproduces them: rerun them from a commit ({', '.join(sorted(dirty)[:5])}"
            f"{', …' if len(dirty) > 5 else ''}).\n\n")


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
        The markdown of report.md, written beside report.csv (the summary, numbers), report.tex and the plots;
        paired.csv where methods pair with CCUP at alpha = 1, leakage.csv where an evaluation declares columns.

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
    tables["What each method learnt from, beside the class names"] = (
        records[[c for c in settings_shown(summary) if c not in ("alpha", "classes")] + ["data"]]
        .drop_duplicates().reset_index(drop=True))
    tables[f"Every metric, {ci}"] = with_intervals(summary)
    with_full_settings(summary, records).to_csv(out / "report.csv", index=False)
    leaks = leakage(records)
    if leaks is not None:
        title = f"Leakage at alpha = {leaks['alpha'].max():g} (first: the original model), {ci}"
        tables[title] = with_intervals(leaks)
        leaks.to_csv(out / "leakage.csv", index=False)
    per_set[metric_columns(records)] = per_set[metric_columns(records)].map(fmt)
    plotted = metric_columns(records)  # and the leakage metrics with their before, for the leakage plot
    declared_here = set(declared_columns(records))
    plotted += [c for c in records.columns if c.removesuffix("_before") in declared_here and c not in plotted]
    tasks = dict(zip(records["task_id"], records["task"], strict=True))
    pngs = write_plots(summarize(records, plotted), out, tasks)
    sections = [f"{DEFINITIONS}\n"] + [f"## {title}\n\n{render(table)}\n" for title, table in tables.items()]
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
                                    + "\n".join(latex(table, title) for title, table in tables.items()))
    return markdown


def with_full_settings(summary: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """The summary with each row's setting in full (FULL) after its `setting` cell."""
    full = records.drop_duplicates(ROW)[[*ROW, FULL]]
    merged = summary.merge(full, on=ROW, how="left")
    return merged[[*summary.columns[:summary.columns.get_loc("setting") + 1], FULL,
                   *summary.columns[summary.columns.get_loc("setting") + 1:]]]


def headline(summary: pd.DataFrame) -> pd.DataFrame:
    """The table README quotes: forget accuracy, the change of retain and cross-dataset accuracy from before
    forgetting, the gaps to the oracle, the median cost, each with its interval; full strength first, each alpha's
    rows in the summary's order (the oracle first)."""
    summary = summary.sort_values("alpha", ascending=False, kind="stable").reset_index(drop=True)
    crosses = [f"{c}_delta" for c in summary.columns if CROSS.fullmatch(c) and not c.endswith("_before")]
    shown = ["forget/acc", "retain/acc_delta", *crosses, "retrieval/forget_ap", HEADLINE, GAP, "gap/forget/acc",
             "gap/retrieval/forget_ap", "time/unlearn_s"]
    table = with_intervals(summary, [m for m in shown if m in summary])
    return table.rename(columns={m: m.replace("_delta", " Δ") for m in shown} | {"time/unlearn_s": "time/unlearn_s "
                                                                                  "(median)"})


def paired_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """The paired differences as cells, full strength first."""
    pairs = pairs.sort_values("alpha", ascending=False, kind="stable").reset_index(drop=True)
    cells = {"pairs": pairs["pairs"].astype(str),
             "difference": [cell(*v, sign="+") for v in zip(pairs["difference"], pairs["ci_low"], pairs["ci_high"],
                                                            strict=True)],
             "wilcoxon p": pairs["wilcoxon p"].map(lambda p: "" if pd.isna(p) else f"{p:.3f}"),
             "resolved": pairs["resolved"]}
    return pd.concat([pairs[settings_shown(pairs)], pd.DataFrame(cells, index=pairs.index)], axis=1)


def settings_shown(summary: pd.DataFrame) -> list[str]:
    """The setting columns worth a column: method and alpha; model, dataset, setting and classes where they vary; role
    where an oracle or a reference row stands among the methods."""
    varying = {c: summary[c].nunique(dropna=False) > 1 for c in ("model", "dataset", "setting", "classes")}
    varying["role"] = summary.get("role", pd.Series(dtype=str)).isin([ORACLE, "reference"]).any()
    return [c for c in SETTING if varying.get(c, True)]


def overview(summary: pd.DataFrame) -> pd.DataFrame:
    """The few columns a console shows (what `make run` prints): accuracies after and before forgetting, on other
    datasets too, and the mean gap to the oracle where there is one; a method's settings only where it has several;
    and what each row averages where a row averages several records (a `forget=bag` run left beside `make run`'s
    sandal is a second forget set of its rows, not a row of its own)."""
    shown = [c for c in ["forget/acc", "forget/acc_before", "retain/acc", "retain/acc_before"] if c in summary]
    shown += [c for c in summary.columns if CROSS.fullmatch(c)] + [c for c in [HEADLINE, GAP] if c in summary]
    table = pd.concat([summary[settings_shown(summary)], summary[shown].map(fmt)], axis=1)
    if (summary["forget sets"] * summary["seeds"] > 1).any():
        table["forget sets × seeds"] = pooled(summary)
    return table


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
