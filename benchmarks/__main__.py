"""`python -m benchmarks` (make bench): each benchmark measures its comparisons side by side, in
interleaved rounds (benchmarks/common.py); all of them go to results/benchmarks.md and
results/benchmarks.csv with the machine and library versions."""
import os
import platform
from pathlib import Path

import pandas as pd

from benchmarks import cost, feature_cache, overhead, solve, startup, throughput
from benchmarks.common import ROUNDS
from benchmarks.summary import render, summary
from ccup import quiet_lightning
from ccup.provenance import provenance

BENCHMARKS = {
    "start-up": startup,  # a command line's mistake answered, against a bare interpreter
    "feature cache": feature_cache,  # naive re-encoding against the cached sweep
    "evaluator throughput": throughput,  # the Lightning pass against a bare encode_image loop
    "job overhead": overhead,  # what a Hydra multirun job costs beyond unlearning and evaluating
    "unlearning cost": cost,  # each method's unlearning step against CCUP's
    "CCUP solve": solve,  # the low-rank closed form against the dense d x d solve
}


def main(results: Path = Path("results")) -> None:
    quiet_lightning()
    previous = (pd.read_csv(results / "benchmarks.csv") if (results / "benchmarks.csv").exists()
                else None)
    facts = provenance()
    heading = (f"# Benchmarks\n\nMachine: {platform.machine()}, {os.cpu_count()} CPU cores, "
               f"{platform.system()}; Python {facts['python']}; "
               + ", ".join(f"{k} {v}" for k, v in facts["versions"].items())
               + f"; commit {facts['git_sha']}"
               f"{' (uncommitted changes)' if facts['git_dirty'] else ''}.\n\n"
               f"Reproduce with `make bench`. Every comparison is measured in at least {ROUNDS} "
               "rounds (`rounds`), its sides taking turns within a round; `ratio` is the median "
               "over the rounds of the ratio within each, `spread` is (max - min) / median of "
               "those ratios: how far one measurement on this machine may stray; `change` is this "
               "ratio against the one the run before wrote (results/benchmarks.csv as it was): "
               "how far two runs agree. Times are of this machine and run; compare the ratios.\n")
    sections = []
    tables = []
    for title, module in BENCHMARKS.items():
        table = with_change(module.main().assign(benchmark=title), previous)
        print(f"\n## {title}\n\n{table.drop(columns='benchmark').to_markdown(index=False)}",
              flush=True)
        sections.append(f"## {title}\n\n{(module.__doc__ or '').strip()}\n\n"
                        f"{table.drop(columns='benchmark').to_markdown(index=False)}\n")
        tables.append(table)
        # Written after each benchmark: what finished is kept if a later one fails.
        everything = pd.concat(tables, ignore_index=True)
        results.mkdir(exist_ok=True)
        (results / "benchmarks.md").write_text("\n".join(
            [heading, "## Every ratio\n\n" + render(summary(everything)) + "\n", *sections]))
        everything.to_csv(results / "benchmarks.csv", index=False)


def with_change(table: pd.DataFrame, previous: pd.DataFrame | None) -> pd.DataFrame:
    """The table with `change`, each ratio against the same comparison's in `previous` (NaN where it
    has none)."""
    key = ["case", "compared"]  # one comparison of one case: unique across the benchmarks
    if previous is None or not set(key) <= set(previous):
        return table.assign(change=float("nan"))
    before = previous[[*key, "ratio"]].rename(columns={"ratio": "previous"})
    merged = table.merge(before, on=key, how="left")
    return merged.assign(change=merged["ratio"] / merged["previous"] - 1).drop(columns="previous")


if __name__ == "__main__":
    main()
