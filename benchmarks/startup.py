"""Start-up: the CPU time from `python run.py <mistake>` to its `error:` line, against a bare
interpreter's (`python -c pass`). The command line's own checks (config groups and keys, the forget
set's class names) run before torch, Lightning and open_clip are imported, so a mistake is answered
in well under a second of CPU. CPU seconds (user + system of the child), not wall time: on shared
cores they are what the command itself costs."""
import resource
import subprocess
import sys
from pathlib import Path

import pandas as pd

from benchmarks.common import ROUNDS, ratio

ROOT = Path(__file__).parents[1]
MISTAKES = {
    "a key misspelt (metod=ccup)": ["run.py", "metod=ccup"],
    "an unknown class (forget.classes=[sandl])": ["run.py", "forget.classes=[sandl]"],
}
BARE = ["-c", "pass"]


def cpu_seconds(args: list[str]) -> float:
    """User + system CPU seconds of `python ARGS` run to its end in the checkout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> pd.DataFrame:
    rows = []
    for case, args in MISTAKES.items():
        times = {"mistake": [], "bare": []}
        cpu_seconds(args)  # warm-up: bytecode compiled, files in the page cache
        for turn in range(ROUNDS):
            for side in (["mistake", "bare"] if turn % 2 == 0 else ["bare", "mistake"]):
                times[side].append(cpu_seconds(args if side == "mistake" else BARE))
        rows.append({"case": case, "error line CPU s": sorted(times["mistake"])[ROUNDS // 2],
                     "bare python CPU s": sorted(times["bare"])[ROUNDS // 2],
                     "compared": "error line / python -c pass",
                     **ratio(times["mistake"], times["bare"])})
    return pd.DataFrame(rows)
