"""Tables from result records: `python -m ccup.report [results_dir]` writes report.csv and report.md beside them."""
import json
import sys
from pathlib import Path

import pandas as pd

COLUMNS = ["forget/acc", "forget/acc_before", "retain/acc", "retain/acc_before", "all/acc", "time/unlearn_s"]


def load_records(results_dir: Path) -> pd.DataFrame:
    """One row per complete record: its sweep axes and metrics."""
    rows = []
    for path in sorted((results_dir / "records").glob("*.json")):
        record = json.loads(path.read_text())
        if record["status"] != "complete":
            continue
        config = record["config"]
        rows.append({"model": record["choices"]["model"], "dataset": config["dataset"]["name"],
                     "method": record["choices"]["method"], "forget": "+".join(config["forget"]["classes"]),
                     "alpha": config["alpha"], "seed": config["seed"], **record["metrics"]})
    return pd.DataFrame(rows)


def summary(records: pd.DataFrame) -> pd.DataFrame:
    """Mean of the headline metrics per (model, dataset, method, forget set, alpha), over seeds."""
    keys = ["model", "dataset", "method", "forget", "alpha"]
    table = records.groupby(keys)[COLUMNS].mean().round(2)
    return table.join(records.groupby(keys).size().rename("runs"))


def main(results_dir: str = "results") -> None:
    results = Path(results_dir)
    records = load_records(results)
    if records.empty:
        sys.exit(f"error: no complete records in {results / 'records'}: run `make run` first")
    table = summary(records)
    table.to_csv(results / "report.csv")
    markdown = table.reset_index().to_markdown(index=False)
    (results / "report.md").write_text(markdown + "\n")
    print(markdown)


if __name__ == "__main__":
    main(*sys.argv[1:])
