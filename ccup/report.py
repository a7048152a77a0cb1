"""Tables from result records: `python -m ccup.report [results_dir]` writes report.{md,csv} into results_dir."""
import json
import sys
from pathlib import Path

import pandas as pd

METRICS = ["forget/acc", "forget/acc_before", "retain/acc", "retain/acc_before", "all/acc", "time/unlearn_s"]
SETTING = ["model", "dataset", "method", "params", "alpha"]


def load_records(results_dir: Path) -> pd.DataFrame:
    """One row per complete record: its sweep axes, the method's own settings, and its metrics."""
    rows = []
    for path in sorted((results_dir / "records").glob("*.json")):
        record = json.loads(path.read_text())
        if record["status"] != "complete":
            continue
        config = record["config"]
        rows.append({"model": record["choices"]["model"], "dataset": config["dataset"]["name"],
                     "method": record["choices"]["method"], "params": settings(config["method"]),
                     "forget": "+".join(config["forget"]["classes"]), "alpha": config["alpha"], "seed": config["seed"],
                     **record["metrics"]})
    return pd.DataFrame(rows)


def settings(method: dict) -> str:
    """A method's own settings as `key=value` words (nested keys dotted, the data regime by its class), leaving
    out what every method shares: alpha, seed, paths, the trainer."""
    flat = pd.json_normalize(method, sep=".").iloc[0].to_dict()
    shared = ("alpha", "seed", "cache_dir", "trainer.", "_partial_", "module._target_", "loss._target_")
    words = [f"{key.removeprefix('module.')}={value}" for key, value in flat.items()
             if key != "_target_" and not any(part in key for part in shared)]
    return " ".join(word.replace("samples._target_=baselines.samples.", "data=") for word in words)


def per_forget_set(records: pd.DataFrame) -> pd.DataFrame:
    """Headline metrics per setting and forget set, averaged over seeds."""
    groups = records.groupby([*SETTING, "forget"])
    return groups[METRICS].mean().round(2).join(groups.size().rename("runs")).reset_index()


def over_forget_sets(records: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std over forget sets of the per-forget-set means, per setting."""
    table = per_forget_set(records).groupby(SETTING)[METRICS[:-1]]
    mean, std = table.mean(), table.std().fillna(0)
    cells = mean.round(2).astype(str) + " ± " + std.round(2).astype(str)
    return cells.join(per_forget_set(records).groupby(SETTING).size().rename("forget sets")).reset_index()


def main(results_dir: str = "results") -> None:
    results = Path(results_dir)
    records = load_records(results)
    if records.empty:
        sys.exit(f"error: no complete records in {results / 'records'}: run `make run` first")
    per_set, summary = per_forget_set(records), over_forget_sets(records)
    per_set.to_csv(results / "report.csv", index=False)
    markdown = (f"## Mean ± std over forget sets\n\n{summary.to_markdown(index=False)}\n\n"
                f"## Per forget set (mean over seeds)\n\n{per_set.to_markdown(index=False)}\n")
    (results / "report.md").write_text(markdown)
    print(markdown)


if __name__ == "__main__":
    main(*sys.argv[1:])
