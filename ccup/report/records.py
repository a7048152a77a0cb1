"""Records to rows: the complete records of a results folder as one table, a row per record with its
setting, task, role, forget set and seed, its metrics and their gaps to the oracle of its task,
forget set and seed."""
import json
import re
from pathlib import Path

import pandas as pd
from hydra.utils import get_class

from ccup import storage
from ccup.errors import UserError
from ccup.record import AXES, METHOD_KEYS, NOT_IDENTITY
from ccup.report.labels import FULL, setting_labels, task_labels
from ccup.roles import record_role

ORIGINAL = "before forgetting"  # the method cell of the original model's row
# Roles a method's config declares (ccup.method.ROLES): the oracle's records at alpha = 1 are the
# truth every gap is measured against; the anchor's, what every other row is paired with.
ORACLE, ANCHOR = "oracle", "anchor"

# Metrics read as a gap to the oracle on the same task, forget set and seed: |method - retrain|, but
# for relearning, whose sign matters (SIGNED: method - retrain, positive where the class comes back
# slower than after retraining).
GAPPED = ["forget/acc", "retain/acc", "all/acc", "retrieval/forget_ap", "retrieval/retain_map",
          "leak/probe_auroc", "forget/acc_heldout_prompts", "relearn/steps_to_half",
          "mia/forget_auroc"]

SIGNED = ["relearn/steps_to_half"]

# the mean of the forget, retain and cross-dataset accuracy gaps, each once
GAP = "gap/forget_retain_cross"

# The headline: the mean gap over the accuracies and the evidence that the class is gone, in
# percentage points (docs/method.md#the-headline-score). Retrieval is what a blocklist cannot fake:
# without it there is no headline.
HEADLINE = "gap/headline"

NO_ORACLE = ("No oracle among these records: the model retrained without the forget classes needs "
             "the recipe the suite trained the model with (model=tiny alone has one), so each row "
             "is read by its change from the original model (`*_delta`, `*_before`), not by its "
             "gap to retraining.")

EVIDENCE = ["retrieval/forget_ap", "retrieval/retain_map", "forget/acc_heldout_prompts"]

# zero-shot accuracy on other datasets, after and before: all shown
CROSS = re.compile(r"cross/.+/acc(_before)?")

# A row: its setting is everything else that differs; `classes` says whether its forget classes are
# the dataset's validation ones (what searches tune on) or its test ones (what a benchmark reports),
# never both in one row.
SETTING = ["model", "dataset", "method", "role", "setting", "classes", "alpha"]

ROW = [*SETTING, "task_id"]  # and the task it shares with its oracle, which the setting determines


def load_records(*results_dirs: Path) -> pd.DataFrame:
    """`records_table` of the complete records in each folder's records/."""
    paths = [path for results_dir in results_dirs
             for path in sorted((results_dir / "records").glob("*.json"))]
    return records_table([json.loads(path.read_text()) for path in paths])


def records_table(records: list[dict]) -> pd.DataFrame:
    """One row per complete record: its setting (SETTING, with the hashes of its setting and task),
    its forget set, seed and metrics, after − before where both are measured, and its gaps to the
    oracle. A record given twice (the same id, found in several folders) counts once."""
    records = list({record["id"]: record for record in records
                    if record["status"] == "complete"}.values())
    if not records:
        return pd.DataFrame()
    rows = [{"id": record["id"], "model": record["choices"]["model"],
             "dataset": record["config"]["dataset"]["name"],
             "method": record["choices"]["method"], "role": record_role(record),
             **setting_ids_of(record),
             "forget": "+".join(record["config"]["forget"]["classes"]),
             "classes": split_of(record["config"]),
             "alpha": record["config"]["alpha"],
             "seed": record["config"]["seed"], "dirty": record.get("git_dirty"),
             "data": learnt_from(record["config"]), "flagged": bool(record.get("warnings")),
             "evaluation_columns": evaluation_columns(record["config"]), **record["metrics"]}
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
    """The metric columns a record's evaluations declare (`columns`), in its config's order; none of
    an evaluation whose code this interpreter cannot import (its metrics stay in report.csv)."""
    columns = []
    for node in config.get("eval", {}).values():
        try:
            columns += get_class(node["_target_"]).columns
        except (ImportError, ValueError, AttributeError):
            continue
    return tuple(columns)


def declared_columns(records: pd.DataFrame) -> list[str]:
    """The columns the records' evaluations declare that some record has, each once, in order."""
    columns = dict.fromkeys(column for row in records.get("evaluation_columns", [])
                            for column in row)
    return [column for column in columns if column in records]


def learnt_from(config: dict) -> str:
    """What a method learnt from, beside the class names every method gets: the oracle's recipe's
    train splits, a fine-tuning baseline's (or LEACE's) samples, as their config's `source` calls
    them (a record written before samples configs declared it: train images), or nothing more."""
    method = config["method"]
    if "recipe" in method:
        datasets = ", ".join(sorted(method["recipe"].get("train_data", {})))
        return f"all train images of {datasets} but the forget classes'"
    samples = method.get("samples")
    if not isinstance(samples, dict):
        return "class names only"
    source = samples.get("source", "train")
    return f"up to {samples['per_class']} {source} images per class of {config['dataset']['name']}"


def setting_ids_of(record: dict) -> dict[str, str]:
    """A record's setting and task hashes (ccup.record.setting_ids); for a record written before
    records carried them, from its resolved config: without the axes and paths, and without every
    `seed` and `alpha` below the top but the model's, which is its recipe's own."""
    if "setting_id" in record:
        return {"setting_id": record["setting_id"], "task_id": record["task_id"]}
    config = record["config"]
    paths = {str(config[key]): f"<{key}>" for key in NOT_IDENTITY
             if isinstance(config.get(key), str)}

    def clean(node, top: str):
        if isinstance(node, dict):
            return {k: clean(v, top) for k, v in node.items()
                    if top == "model" or k not in ("seed", "alpha")}
        if isinstance(node, list):
            return [clean(v, top) for v in node]
        for path, placeholder in paths.items():
            if isinstance(node, str) and node.startswith(path):
                return placeholder + node[len(path):]
        return node

    setting = {key: clean(value, key) for key, value in config.items()
               if key not in (*NOT_IDENTITY, *AXES)}
    setting["forget"] = f"{len(config['forget']['classes'])} classes"
    return {"setting_id": storage.digest(setting),
            "task_id": storage.digest({k: v for k, v in setting.items() if k not in METHOD_KEYS})}


def split_of(config: dict) -> str:
    """`validation` or `test` where a record's forget classes all lie in its dataset's
    validation_forget or test_forget list; empty for others (a forget set across both, a dataset
    config without the lists)."""
    classes = set(config["forget"]["classes"])
    for split in ("validation", "test"):
        if classes <= set(config["dataset"].get(f"{split}_forget", [])):
            return split
    return ""


def with_gaps(records: pd.DataFrame) -> pd.DataFrame:
    """The records with `gap/<metric>` and GAP (DEFINITIONS) where an oracle record matches;
    unchanged when the records hold no oracle. Raises UserError when two oracle settings match one
    record: which one is the truth?"""
    key = ["task_id", "forget", "seed"]
    oracle = records[(records["role"] == ORACLE) & (records["alpha"] == 1)]
    if oracle.empty:
        return records
    if oracle.duplicated(key).any():
        settings = sorted((oracle["method"] + " " + oracle["setting"]).str.strip().unique())
        raise UserError(f"several oracle settings for one forget set and seed ({settings}): report "
                        "each from its own results folder")
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
        gaps.insert(0, HEADLINE,
                    mean_gap(terms + [gaps[f"gap/{m}"] for m in EVIDENCE if m in metrics]))
    return pd.concat([records.reset_index(drop=True), gaps], axis=1)


def mean_gap(terms: list[pd.Series]) -> pd.Series:
    """The mean of gap terms, each once; NaN for a record that lacks one: never a mean over fewer
    terms than its row's other records have."""
    return pd.concat(terms, axis=1).mean(axis=1, skipna=False)


def cross_accuracies(records: pd.DataFrame) -> list[str]:
    """The cross-dataset accuracy columns, each after unlearning and then its `_before`, sorted by
    dataset."""
    return sorted(c for c in records.columns if CROSS.fullmatch(c))
