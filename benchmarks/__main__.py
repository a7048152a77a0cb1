"""`python -m benchmarks` (make bench): each benchmark prints ratios measured side by side in one run; all of them
go to results/benchmarks.md and results/benchmarks.csv with the machine and library versions."""
import os
import platform
from pathlib import Path

import pandas as pd

from benchmarks import cost, feature_cache, overhead, solve, throughput
from ccup.record import provenance

BENCHMARKS = {
    "Sweep: naive re-encoding against the feature cache": feature_cache,
    "Evaluator efficiency: Lightning pass against a bare encode_image loop": throughput,
    "Framework overhead per Hydra job": overhead,
    "Cost of unlearning": cost,
    "Scaling: CCUP solve time": solve,
}


def main(results: Path = Path("results")) -> None:
    facts = provenance()
    lines = [f"# Benchmarks\n\nMachine: {platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()}; "
             f"Python {facts['python']}; " + ", ".join(f"{k} {v}" for k, v in facts["versions"].items())
             + f"; commit {facts['git_sha']}.\n\nReproduce with `make bench`. Times are of this machine and run; "
             "compare the ratios, which are measured side by side.\n"]
    tables = []
    for title, module in BENCHMARKS.items():
        table = module.main()
        print(f"\n## {title}\n\n{table.to_markdown(index=False)}", flush=True)
        lines.append(f"## {title}\n\n{(module.__doc__ or '').strip()}\n\n{table.to_markdown(index=False)}\n")
        tables.append(table.assign(benchmark=title))
        # Written after each benchmark: what finished is kept if a later one fails.
        results.mkdir(exist_ok=True)
        (results / "benchmarks.md").write_text("\n".join(lines))
        pd.concat(tables).to_csv(results / "benchmarks.csv", index=False)


if __name__ == "__main__":
    main()
