"""Sweep: N configurations (alphas x forget sets) evaluated the naive way, re-encoding the test images for every
configuration, against the cached way, one encoding pass and a matrix product per configuration."""
import tempfile
import time

import pandas as pd
import torch
from hydra.utils import instantiate
from torchvision.datasets import FakeData

from benchmarks.common import config, evaluator, task
from ccup.evaluator import scores
from ccup.features import encode
from ccup.method import CCUP
from ccup.models import load_clip

ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
FORGET = (["sandal"], ["bag"], ["coat"], ["trouser"])
NAIVE_MEASURED = 2  # naive configurations timed; each costs the same full pass, so N of them cost N times one


def run(name: str, clip, dataset, data) -> dict:
    configs = [(alpha, forget) for forget in FORGET for alpha in ALPHAS]  # N = 20
    tasks = {tuple(f): task(clip, data, f) for f in FORGET}
    with tempfile.TemporaryDirectory() as cache_dir:
        ev = evaluator(cache_dir)
        start = time.perf_counter()
        ev.features(clip.model).encode(clip.model, dataset)
        one_pass = time.perf_counter() - start
        start = time.perf_counter()
        for i, (alpha, forget) in enumerate(configs):
            job = tasks[tuple(forget)]
            ev(clip.model, CCUP(alpha, 1000.0, 1.0)(clip.model, job), job, dataset)
            if i == 0:
                first = time.perf_counter() - start  # the configuration that fills the cache
        cached = time.perf_counter() - start
        start = time.perf_counter()
        for alpha, forget in configs[:NAIVE_MEASURED]:
            unlearned = CCUP(alpha, 1000.0, 1.0)(clip.model, tasks[tuple(forget)])
            features, labels = encode(ev.trainer(), unlearned, torch.utils.data.DataLoader(dataset, batch_size=256))
            scores(unlearned, features, labels, tasks[tuple(forget)])
        naive = (time.perf_counter() - start) / NAIVE_MEASURED * len(configs)
    return {"model": name, "images": len(dataset), "configs": len(configs), "one encoding pass s": one_pass,
            "cached sweep s": cached, "cached / one pass": cached / one_pass, "naive sweep s": naive,
            "speed-up": naive / cached, "per extra config ms": 1e3 * (cached - first) / (len(configs) - 1)}


def main() -> pd.DataFrame:
    cfg = config()
    data, tiny = instantiate(cfg.dataset), instantiate(cfg.model)
    rows = [run("tiny (Fashion-MNIST test)", tiny, data.load(split="test", transform=tiny.preprocess), data)]
    torch.manual_seed(0)
    vit = load_clip("ViT-B-32")  # random weights: speed does not need trained ones
    images = FakeData(size=256, image_size=(3, 224, 224), num_classes=10, transform=vit.preprocess)
    rows.append(run("ViT-B-32 (256 images, 224 px)", vit, images, data))
    return pd.DataFrame(rows).round(3)

