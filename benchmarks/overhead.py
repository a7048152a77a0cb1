"""Framework overhead: what a Hydra multirun job costs beyond unlearning and evaluating (config
composition, logging, the record, the W&B offline run), with W&B offline and without a logger. Each
round is a sweep of 6 jobs for each logger in turn; a job's wall time is the time from its start to
the next job's (Hydra writes each job's .hydra folder as it starts), its compute is its record's
`time/unlearn_s + time/eval_s`."""
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from benchmarks.common import ROUNDS, ratio
from ccup.sweep import job_dirs

ROOT = Path(__file__).parents[1]
ALPHAS = "0,0.2,0.4,0.6,0.8,1"


def sweep(logger: str, folder: Path) -> tuple[float, float]:
    """(median wall seconds of a job, median compute seconds) of one sweep of 6 CCUP jobs."""
    subprocess.run([sys.executable, "run.py", "-m", f"alpha={ALPHAS}", f"logger={logger}",
                    f"results_dir={folder}", f"hydra.sweep.dir={folder}/multirun",
                    f"sweep={folder.name}", "hydra.callbacks.sweep.report=false"],
                   cwd=ROOT, check=True, capture_output=True)
    jobs = job_dirs(folder / "multirun")
    starts = [(job / ".hydra").stat().st_mtime for job in jobs]
    # the last job has no next start
    walls = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    metrics = [json.loads((job / "record.json").read_text())["metrics"] for job in jobs[:-1]]
    return statistics.median(walls), statistics.median(m["time/unlearn_s"] + m["time/eval_s"]
                                                       for m in metrics)


def main() -> pd.DataFrame:
    samples = {"wandb": [], "none": []}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(ROUNDS):
            for logger in samples:
                samples[logger].append(sweep(logger, Path(tmp) / f"{logger}-{round_}"))
    rows = []
    for logger, runs in samples.items():
        walls, overheads = [wall for wall, _ in runs], [wall - compute for wall, compute in runs]
        rows.append({"case": f"logger={logger}", "job s": statistics.median(walls),
                     "compute s": statistics.median(c for _, c in runs),
                     "overhead s": statistics.median(overheads), "compared": "overhead / job",
                     **ratio(overheads, walls)})
    return pd.DataFrame(rows)
