"""Cross-dataset retention: full zero-shot accuracy on other datasets, before and after unlearning, as the protocol
reports it (Kravets & Namboodiri, WACV 2025): unlearning one dataset's class should leave the others alone."""
from collections.abc import Mapping

import torch

from ccup.evaluator import Evaluator, predict
from ccup.models import same_text_tower
from ccup.task import UnlearnTask
from ccup.zeroshot import class_embeddings


class CrossDataset:
    """`cross/<dataset>/acc` and `cross/<dataset>/acc_before` on the test split of each dataset in `datasets` (dataset
    configs by name: name, split, classnames, templates, load), except the one the task unlearns from (`exclude`)."""

    def __init__(self, datasets: Mapping, exclude: str):
        self.datasets = {name: data for name, data in datasets.items() if data.name != exclude}

    def __call__(self, evaluator: Evaluator, original: torch.nn.Module, unlearned: torch.nn.Module,
                 task: UnlearnTask, test_set) -> dict:
        metrics = {}
        for name, data in self.datasets.items():
            features_before, features, labels = evaluator.image_features(
                original, unlearned, data.load(split=data.split, transform=task.preprocess))
            before = class_embeddings(original, task.tokenizer, data.classnames, data.templates)
            after = (before if same_text_tower(unlearned, original)
                     else class_embeddings(unlearned, task.tokenizer, data.classnames, data.templates))
            metrics[f"cross/{name}/acc"] = accuracy(predict(unlearned, features, after), labels)
            metrics[f"cross/{name}/acc_before"] = accuracy(predict(original, features_before, before), labels)
        return metrics


def accuracy(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy in percent."""
    return 100 * (predictions == labels).double().mean().item()
