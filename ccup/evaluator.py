"""One Lightning evaluator for every method: same data, same classifier, same metric keys."""
import resource
import time
from collections.abc import Callable

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset
from torchmetrics.classification import MulticlassConfusionMatrix

from ccup.metrics import unlearning_metrics
from ccup.task import UnlearnTask
from ccup.zeroshot import zero_shot_logits


class ZeroShotTest(pl.LightningModule):
    """`Trainer.test` accumulates the confusion matrix of zero-shot predictions over all classes."""

    def __init__(self, model: torch.nn.Module, classifier: torch.Tensor):
        super().__init__()
        self.model = model
        self.register_buffer("classifier", classifier)  # (d, C)
        self.confmat = MulticlassConfusionMatrix(num_classes=classifier.shape[1])

    def test_step(self, batch, batch_idx):
        images, labels = batch
        self.confmat.update(zero_shot_logits(self.model, images, self.classifier).argmax(dim=-1), labels)


class Evaluator:
    """Forget/retain metrics of the unlearned model next to the original's (`*_before`), with time and memory."""

    def __init__(self, trainer: Callable[[], pl.Trainer], batch_size: int, num_workers: int):
        self.trainer, self.batch_size, self.num_workers = trainer, batch_size, num_workers

    def confusion(self, model: torch.nn.Module, task: UnlearnTask, dataset: Dataset) -> torch.Tensor:
        """(C, C) confusion matrix, rows = true classes."""
        module = ZeroShotTest(model, task.classifier_of(model))
        loader = DataLoader(dataset, batch_size=self.batch_size, num_workers=self.num_workers)
        self.trainer().test(module, loader, verbose=False)
        return module.confmat.compute().cpu()

    def __call__(self, original: torch.nn.Module, unlearned: torch.nn.Module, task: UnlearnTask,
                 dataset: Dataset) -> dict:
        before = unlearning_metrics(self.confusion(original, task, dataset), task.forget_idx, task.classnames)
        start = time.perf_counter()
        after = unlearning_metrics(self.confusion(unlearned, task, dataset), task.forget_idx, task.classnames)
        return {
            **after,
            **{f"{key}_before": value for key, value in before.items()},
            "time/eval_s": time.perf_counter() - start,
            "memory/peak_mb": peak_memory_mb(),
        }


def peak_memory_mb() -> float:
    """Peak GPU memory allocated when on a GPU, else the process's peak resident set size."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # Linux reports KiB
