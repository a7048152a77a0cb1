"""Cost of unlearning: CCUP's unlearning step against each method's, same forget set, on the embedded model with
real data; every method computes from scratch (fresh cache)."""
import tempfile
import time
from functools import partial

import pandas as pd
from hydra.utils import instantiate

from benchmarks.common import CONF, config, task


def main() -> pd.DataFrame:
    rows = []
    with tempfile.TemporaryDirectory() as cache_dir:
        cfg = config()
        clip, data = instantiate(cfg.model), instantiate(cfg.dataset)
        train = partial(data.load, split="train", transform=clip.preprocess)
        job = task(clip, data, list(cfg.forget.classes), train)
        for name in sorted(path.stem for path in (CONF / "method").glob("*.yaml")):
            method = instantiate(config(f"method={name}", f"cache_dir={cache_dir}",
                                        "+trainer.enable_progress_bar=false").method)
            start = time.perf_counter()
            method(clip.model, job)
            rows.append({"method": name, "unlearn s": time.perf_counter() - start})
    table = pd.DataFrame(rows)
    table["vs ccup"] = table["unlearn s"] / table.set_index("method").loc["ccup", "unlearn s"]
    return table.round(4)
