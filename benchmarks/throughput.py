"""Evaluator efficiency: images per second of the evaluator's Lightning pass against a bare `encode_image` loop over
the same preloaded tensors."""
import pandas as pd
import torch
from hydra.utils import instantiate
from torch.utils.data import DataLoader

from benchmarks.common import best_of, config, evaluator
from ccup.data import materialize
from ccup.features import encode
from ccup.models import load_clip


@torch.inference_mode()
def bare_loop(model, loader):
    for images, _ in loader:
        model.encode_image(images)


def run(name: str, model, images: torch.Tensor) -> dict:
    loader = DataLoader(torch.utils.data.TensorDataset(images, torch.zeros(len(images), dtype=torch.long)),
                        batch_size=256)
    trainer = evaluator("unused").trainer
    bare = best_of(lambda: bare_loop(model, loader))
    lightning = best_of(lambda: encode(trainer(), model, loader))
    return {"model": name, "images": len(images), "bare images/s": len(images) / bare,
            "evaluator images/s": len(images) / lightning, "evaluator / bare": bare / lightning}


def main() -> pd.DataFrame:
    cfg = config()
    tiny = instantiate(cfg.model)
    test = materialize(instantiate(cfg.dataset).load(split="test", transform=tiny.preprocess))
    torch.manual_seed(0)
    vit = load_clip("ViT-B-32")
    rows = [run("tiny", tiny.model, test.tensors[0]), run("ViT-B-32", vit.model, torch.randn(256, 3, 224, 224))]
    return pd.DataFrame(rows).round(3)
