"""A row's setting and task in words: the config choices and overrides that tell the rows of a
report apart, long values shortened readably (the full text stays in report.csv)."""
import json

import pandas as pd

from ccup import storage
from ccup.record import AXES, METHOD_KEYS, NOT_IDENTITY

FULL = "setting in full"  # report.csv's setting cell with every value as it is, none shortened

# Config choices never shown as a row's setting (the row's own columns, and what changes no number),
# and the roots of overridden keys never shown (a method's own keys are: method.lr=0.1; a folder's
# are: dataset.root=...).
UNSHOWN = ("model", "dataset", "method", "forget", "experiment", "logger", "hydra", *AXES,
           *NOT_IDENTITY)
UNSHOWN_KEYS = ("forget", "experiment", "logger", "hydra", *AXES, *NOT_IDENTITY)


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
    clash = table.assign(label=labels).groupby(
        ["model", "dataset", "method", "label"])["setting_id"].transform("nunique") > 1
    return [(f"{label} #{sid[:6]}".strip() if c else label)
            for label, sid, c in zip(labels, table["setting_id"], clash, strict=True)]


def setting_values(records: list[dict], index: pd.Index) -> pd.DataFrame:
    """Per record, the value of each config choice and overridden key that may name a setting."""
    groups = sorted({g for r in records for g in r["choices"] if "@" not in g and "/" not in g}
                    - set(UNSHOWN))
    keys = sorted({k for r in records for k in override_keys(r.get("overrides", []))
                   if k.split(".")[0] not in UNSHOWN_KEYS})
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
    """The dotted keys a job's overrides set (`+method.x=1` sets method.x); group choices are in its
    choices."""
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
