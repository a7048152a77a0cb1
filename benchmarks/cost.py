"""Cost of unlearning: each method's unlearning step against CCUP's, same forget set, on the
embedded model with real data; every fine-tuning method trains from scratch in every round (an empty
cache), a projection's step (CCUP's, the nullspace projection's, LEACE's) is the best of 20 calls.
The oracles (retrain, retrain_reseeded) are left out: each trains the whole embedded model again,
minutes a round; their cost is in the embedded benchmark's records (`time/unlearn_s` of
method=retrain)."""
import statistics
import tempfile
from functools import partial
from pathlib import Path

import pandas as pd
from hydra.utils import instantiate

from benchmarks.common import ratio, rounds, task
from ccup.configs import CONF, compose
from ccup.method import Projection, build


def unlearn(method, clip, job, cache_root: Path) -> None:
    """One unlearning step from scratch: a fine-tuning method gets an empty cache folder, so it
    trains."""
    if hasattr(method, "cache_dir"):
        method.cache_dir = Path(tempfile.mkdtemp(dir=cache_root))
    method(clip.model, job)


def main() -> pd.DataFrame:
    cfg = compose()
    clip, data = instantiate(cfg.model), instantiate(cfg.dataset)
    job = task(clip, data, list(cfg.forget.classes),
               partial(data.load, split="train", transform=clip.preprocess))
    names = sorted(path.stem for path in (CONF / "method").glob("*.yaml")
                   if compose(f"method={path.stem}").method._target_ != "baselines.retrain.Retrain")
    with tempfile.TemporaryDirectory() as cache_root:
        methods = {name: build(compose(f"method={name}").method) for name in names}
        sides = {name: partial(unlearn, method, clip, job, Path(cache_root))
                 for name, method in methods.items()}
        sides["ccup"]()  # warm-up; the fine-tuning methods cost the same from the first call
        closed_forms = {name: 20 for name, method in methods.items()
                        if isinstance(method, Projection)}
        # a closed form's time: the best of 20 calls
        times = rounds(sides, repeat=closed_forms, warm_up=False)
    return pd.DataFrame([{"case": name, "unlearn s": statistics.median(times[name]),
                          "ccup s": statistics.median(times["ccup"]), "compared": f"{name} / ccup",
                          **ratio(times[name], times["ccup"])} for name in names if name != "ccup"])
