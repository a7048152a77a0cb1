"""Framework overhead: what a Hydra multirun job costs beyond unlearning and evaluating, with W&B offline and
without a logger. The marginal wall time of a job is measured from sweeps of 1 and 6 jobs run side by side."""
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).parents[1]
ALPHAS = "0,0.2,0.4,0.6,0.8,1"


def sweep(logger: str, alphas: str, folder: Path) -> tuple[float, list[dict]]:
    start = time.perf_counter()
    subprocess.run([sys.executable, "run.py", "-m", f"alpha={alphas}", f"logger={logger}", f"results_dir={folder}",
                    f"hydra.sweep.dir={folder}/multirun", f"sweep={folder.name}"], cwd=ROOT, check=True,
                   capture_output=True)
    wall = time.perf_counter() - start
    return wall, [json.loads(p.read_text())["metrics"] for p in (folder / "records").glob("*.json")]


def main() -> pd.DataFrame:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for logger in ("wandb", "none"):
            one, _ = sweep(logger, "1", Path(tmp) / f"{logger}-one")
            six, records = sweep(logger, ALPHAS, Path(tmp) / f"{logger}-six")
            per_job = (six - one) / 5
            compute = sum(r["time/unlearn_s"] + r["time/eval_s"] for r in records) / len(records)
            rows.append({"logger": logger, "job s": per_job, "compute s": compute, "overhead s": per_job - compute,
                         "overhead fraction": (per_job - compute) / per_job})
    return pd.DataFrame(rows).round(3)
