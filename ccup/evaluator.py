"""One Lightning evaluator for every method: same data, same metric keys, each model scored with its own text tower.

Images go through a model's image tower once (`Trainer.predict`) up to its final projection; the unlearned model
reuses the original's features when its image tower differs only there (CCUP, the nullspace projection), and the
original's features are cached on disk across the jobs of a sweep.
"""
import resource
import time
from collections.abc import Callable

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torchmetrics.functional.classification import multiclass_confusion_matrix

from ccup.adapter import project
from ccup.features import FeatureCache, encode, same_tower
from ccup.metrics import unlearning_metrics
from ccup.task import UnlearnTask


class Evaluator:
    """Forget/retain metrics of the unlearned model next to the original's (`*_before`), with time and memory."""

    def __init__(self, trainer: Callable[[], pl.Trainer], batch_size: int, num_workers: int, cache: FeatureCache):
        self.trainer, self.batch_size, self.num_workers, self.cache = trainer, batch_size, num_workers, cache

    def features(self, model: torch.nn.Module, dataset: Dataset, cached: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, D) features before the final projection and (N,) labels; from the cache when `cached`."""
        path = self.cache.path(model, dataset) if cached else None
        entry = self.cache.load(path, len(dataset))
        if entry is not None:
            return entry
        loader = DataLoader(dataset, batch_size=self.batch_size, num_workers=self.num_workers)
        features, labels = encode(self.trainer(), model, loader)
        self.cache.save(path, features, labels)
        return features, labels

    def __call__(self, original: torch.nn.Module, unlearned: torch.nn.Module, task: UnlearnTask,
                 dataset: Dataset) -> dict:
        features, labels = self.features(original, dataset, cached=True)
        before = scores(original, features, labels, task)
        start = time.perf_counter()
        if not same_tower(original, unlearned):  # fine-tuned towers are encoded anew, never cached
            features, labels = self.features(unlearned, dataset, cached=False)
        after = scores(unlearned, features, labels, task)
        return {
            **after,
            **{f"{key}_before": value for key, value in before.items()},
            "time/eval_s": time.perf_counter() - start,
            "memory/peak_mb": peak_memory_mb(),
        }


@torch.no_grad()
def scores(model: torch.nn.Module, features: torch.Tensor, labels: torch.Tensor, task: UnlearnTask) -> dict:
    """Unlearning metrics of `model` from its image features before the final projection."""
    classifier = task.classifier_of(model)  # (d, C), on the model's device
    projected = project(model, features.to(classifier.device))  # (N, d)
    predictions = (F.normalize(projected, dim=-1) @ classifier).argmax(dim=-1).cpu()
    confmat = multiclass_confusion_matrix(predictions, labels, num_classes=classifier.shape[1])
    return unlearning_metrics(confmat, task.forget_idx, task.classnames)


def peak_memory_mb() -> float:
    """Peak GPU memory allocated when on a GPU, else the process's peak resident set size."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # Linux reports KiB
