"""One Lightning evaluator for every method: same data, same metric keys, each model scored with its own text tower.

Images go through a model's image tower once (`Trainer.predict`) up to its final projection; the unlearned model
reuses the original's features when its image tower differs only there (CCUP, the nullspace projection), and the
original's features are cached on disk across the jobs of a sweep. Evaluations beyond forget and retain accuracy
(the `eval` config group) are callables `(evaluator, original, unlearned, task, test_set) -> metrics` run after it.
"""
import resource
import time
from collections.abc import Callable, Mapping

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

    def __init__(self, trainer: Callable[[], pl.Trainer], batch_size: int, num_workers: int, cache: FeatureCache,
                 evals: Mapping[str, Callable[..., dict]] | None = None):
        self.trainer, self.batch_size, self.num_workers, self.cache = trainer, batch_size, num_workers, cache
        self.evals = dict(evals) if evals is not None else {}

    def features(self, model: torch.nn.Module, dataset: Dataset, cached: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, D) features before the final projection and (N,) labels; from the cache when `cached`."""
        trainer = self.trainer()
        numerics = f"{trainer.strategy.root_device.type} {trainer.precision}"
        path = self.cache.path(model, dataset, numerics) if cached else None
        entry = self.cache.load(path, len(dataset))
        if entry is not None:
            return entry
        loader = DataLoader(dataset, batch_size=self.batch_size, num_workers=self.num_workers)
        features, labels = encode(trainer, model, loader)
        self.cache.save(path, features, labels)
        return features, labels

    def __call__(self, original: torch.nn.Module, unlearned: torch.nn.Module, task: UnlearnTask,
                 dataset: Dataset) -> dict:
        start = time.perf_counter()
        features_before, features, labels = self.image_features(original, unlearned, dataset)
        before = {f"{key}_before": value for key, value in scores(original, features_before, labels, task).items()}
        metrics = {**scores(unlearned, features, labels, task), **before}
        for evaluation in self.evals.values():
            metrics.update(evaluation(self, original, unlearned, task, dataset))
        return {**metrics, "time/eval_s": time.perf_counter() - start, "memory/peak_mb": peak_memory_mb()}

    def image_features(self, original: torch.nn.Module, unlearned: torch.nn.Module,
                       dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Features of `dataset` before the final projection for the original (cached) and the unlearned model (the
        same tensor when only the projection differs), and the labels. Fine-tuned towers are encoded anew, never cached.
        """
        before, labels = self.features(original, dataset, cached=True)
        after = before if same_tower(original, unlearned) else self.features(unlearned, dataset, cached=False)[0]
        return before, after, labels


@torch.no_grad()
def scores(model: torch.nn.Module, features: torch.Tensor, labels: torch.Tensor, task: UnlearnTask) -> dict:
    """Unlearning metrics of `model` from its image features before the final projection."""
    classifier = task.classifier_of(model)  # (d, C), on the model's device
    confmat = multiclass_confusion_matrix(predict(model, features, classifier), labels, num_classes=classifier.shape[1])
    return unlearning_metrics(confmat, task.forget_idx, task.classnames)


@torch.no_grad()
def embeddings(model: torch.nn.Module, features: torch.Tensor) -> torch.Tensor:
    """(N, d) L2-normalised image embeddings of `model`, on its device, from its (N, D) features before the final
    projection, as CLIP compares them."""
    return F.normalize(project(model, features.to(next(model.parameters()).device)), dim=-1)


@torch.no_grad()
def predict(model: torch.nn.Module, features: torch.Tensor, classifier: torch.Tensor) -> torch.Tensor:
    """(N,) zero-shot class predictions from features before the final projection and a (d, C) classifier on the
    model's device."""
    return (embeddings(model, features) @ classifier).argmax(dim=-1).cpu()


def peak_memory_mb() -> float:
    """Peak GPU memory allocated when on a GPU, else the process's peak resident set size."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # Linux reports KiB
