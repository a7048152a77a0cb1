"""Sweep: N configurations (alphas x forget sets) evaluated the naive way, re-encoding the test
images for every configuration, against the cached way, one encoding pass and a matrix product per
configuration. The naive way is timed on 2 configurations and scaled to N, since each costs the same
full pass; the cached sweep starts from an empty cache every round, its first configuration filling
it."""
import statistics
import tempfile

import pandas as pd
import torch
from hydra.utils import instantiate
from torch.utils.data import DataLoader
from torchvision.datasets import FakeData

from benchmarks.common import evaluator, ratio, rounds, task
from ccup.configs import compose
from ccup.evaluator import scores
from ccup.features import encode
from ccup.method import CCUP
from ccup.models import load_clip

ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
FORGET = (["sandal"], ["bag"], ["coat"], ["trouser"])
NAIVE_MEASURED = 2


def run(name: str, clip, dataset, data) -> list[dict]:
    configs = [(alpha, forget) for forget in FORGET for alpha in ALPHAS]  # N = 20
    tasks = {tuple(f): task(clip, data, f) for f in FORGET}
    trainer = evaluator("unused").trainer

    def one_pass():
        encode(trainer(), clip.model, DataLoader(dataset, batch_size=256))

    def cached_sweep():
        with tempfile.TemporaryDirectory() as cache_dir:
            ev = evaluator(cache_dir)
            for alpha, forget in configs:
                job = tasks[tuple(forget)]
                ev(clip.model, CCUP(alpha, 1000.0, 1.0)(clip.model, job), job, dataset)

    def naive():
        for alpha, forget in configs[:NAIVE_MEASURED]:
            unlearned = CCUP(alpha, 1000.0, 1.0)(clip.model, tasks[tuple(forget)])
            features, labels = encode(trainer(), unlearned, DataLoader(dataset, batch_size=256))
            scores(unlearned, features, labels, tasks[tuple(forget)])

    times = rounds({"one pass": one_pass, "cached sweep": cached_sweep, "naive": naive})
    times["naive"] = [t * len(configs) / NAIVE_MEASURED for t in times["naive"]]
    case = {"case": name, "images": len(dataset), "configs": len(configs),
            **{f"{side} s": statistics.median(t) for side, t in times.items()}}
    return [{**case, "compared": "naive / cached sweep",
             **ratio(times["naive"], times["cached sweep"])},
            {**case, "compared": "cached sweep / one pass",
             **ratio(times["cached sweep"], times["one pass"])}]


def main() -> pd.DataFrame:
    cfg = compose()
    data, tiny = instantiate(cfg.dataset), instantiate(cfg.model)
    rows = run("tiny (Fashion-MNIST test)", tiny,
               data.load(split="test", transform=tiny.preprocess), data)
    torch.manual_seed(0)
    vit = load_clip("ViT-B-32")  # random weights: speed does not need trained ones
    images = FakeData(size=64, image_size=(3, 224, 224), num_classes=10, transform=vit.preprocess)
    rows += run("ViT-B-32 (64 images, 224 px)", vit, images, data)
    return pd.DataFrame(rows)
