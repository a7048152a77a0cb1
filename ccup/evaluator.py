"""One Lightning evaluator for every method: same data, same metric keys, each model scored with its
own text tower.

Images go through a model's image tower once (`Trainer.predict`) up to its final projection; the
unlearned model reuses the original's features when its image tower differs only there (CCUP, the
nullspace projection), and the original's features are cached on disk across the jobs of a sweep
(ccup.features). Evaluations beyond forget and retain accuracy (the `eval` config group) follow
`ccup.evals.Evaluation` and run after it.
"""
import resource
import time
from collections.abc import Callable, Mapping

import pytorch_lightning as pl
import torch
from torch.utils.data import Dataset

from ccup.errors import UserError
from ccup.evals import Evaluation, check_evaluations
from ccup.features import FeatureCache, Features
from ccup.metrics import class_counts, unlearning_metrics
from ccup.task import UnlearnTask
from ccup.trainers import check_trainer
from ccup.zeroshot import predict


class Evaluator:
    """Forget/retain metrics of the unlearned model next to the original's (`*_before`), with time
    and memory."""

    def __init__(self, trainer: Callable[[], pl.Trainer], batch_size: int, num_workers: int,
                 cache: FeatureCache, evals: Mapping[str, Evaluation] | None = None):
        if not (batch_size >= 1 and num_workers >= 0):
            raise UserError("evaluator.batch_size must be at least 1 and evaluator.num_workers at "
                            f"least 0, got {batch_size} and {num_workers}")
        check_trainer(trainer, "evaluator.trainer")
        self.trainer = trainer
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.cache = cache
        self.evals = dict(evals) if evals is not None else {}
        check_evaluations(self.evals)

    def features(self, original: torch.nn.Module) -> Features:
        """How this evaluator sees the images of `original` and of the models unlearned from it."""
        return Features(original, self.trainer, self.batch_size, self.num_workers, self.cache)

    def __call__(self, original: torch.nn.Module, unlearned: torch.nn.Module, task: UnlearnTask,
                 dataset: Dataset) -> dict:
        """Scores both models on the same images.

        Args:
            original: the model before unlearning.
            unlearned: the model a method returned.
            task: the classes, the forget set and the original's class text embeddings.
            dataset: the test split, transformed by the model's preprocessing.

        Returns:
            {metric: value}: forget, retain, all and per-class accuracy (`ccup.metrics`), each with
            its `_before`, what every evaluation returns, `time/eval_s` and `memory/peak_mb`.
        """
        start = time.perf_counter()
        features = self.features(original)
        before = {f"{key}_before": value
                  for key, value in scores(original, *features(original, dataset), task).items()}
        metrics = {**scores(unlearned, *features(unlearned, dataset), task), **before}
        for evaluation in self.evals.values():
            metrics.update(evaluation(features, original, unlearned, task, dataset))
        return {**metrics, "time/eval_s": time.perf_counter() - start,
                "memory/peak_mb": peak_memory_mb()}


@torch.no_grad()
def scores(model: torch.nn.Module, features: torch.Tensor, labels: torch.Tensor,
           task: UnlearnTask) -> dict:
    """Unlearning metrics of `model` from its image features before the final projection."""
    classifier = task.classifier_of(model)  # (d, C), on the model's device
    counts = class_counts(predict(model, features, classifier, task.classnames), labels,
                          classifier.shape[1])
    return unlearning_metrics(*counts, task.forget_idx, task.classnames)


def peak_memory_mb() -> float:
    """Peak GPU memory allocated when on a GPU, else the process's peak resident set size."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # Linux reports KiB
