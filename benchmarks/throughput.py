"""Evaluator efficiency: images per second of the evaluator's Lightning pass (`Trainer.predict`)
against a bare `encode_image` loop over the same preloaded tensors."""
import statistics

import pandas as pd
import torch
from hydra.utils import instantiate
from torch.utils.data import DataLoader, TensorDataset

from benchmarks.common import evaluator, ratio, rounds
from ccup.configs import compose
from ccup.datasets import materialize
from ccup.features import encode
from ccup.models import load_clip


@torch.inference_mode()
def bare_loop(model, loader):
    for images, _ in loader:
        model.encode_image(images)


def run(name: str, model, images: torch.Tensor) -> dict:
    loader = DataLoader(TensorDataset(images, torch.zeros(len(images), dtype=torch.long)),
                        batch_size=256)
    trainer = evaluator("unused").trainer
    times = rounds({"bare": lambda: bare_loop(model, loader),
                    "evaluator": lambda: encode(trainer(), model, loader)})
    return {"case": name, "images": len(images),
            "bare images/s": len(images) / statistics.median(times["bare"]),
            "evaluator images/s": len(images) / statistics.median(times["evaluator"]),
            "compared": "evaluator / bare throughput", **ratio(times["bare"], times["evaluator"])}


def main() -> pd.DataFrame:
    cfg = compose()
    tiny = instantiate(cfg.model)
    test = materialize(instantiate(cfg.dataset).load(split="test", transform=tiny.preprocess))
    torch.manual_seed(0)
    vit = load_clip("ViT-B-32")
    return pd.DataFrame([run("tiny", tiny.model, test.tensors[0]),
                         run("ViT-B-32", vit.model, torch.randn(64, 3, 224, 224))])
