"""Cross-dataset retention: full zero-shot accuracy on other datasets, before and after unlearning,
as the protocol reports it (Kravets & Namboodiri, WACV 2025): unlearning one dataset's class should
leave the others alone."""
from collections.abc import Mapping
from functools import partial

import torch

from ccup.datasets import half
from ccup.features import FeaturesOf
from ccup.metrics import accuracy
from ccup.task import UnlearnTask
from ccup.zeroshot import class_embeddings, classifier_of, predict


class CrossDataset:
    """`cross/<dataset>/acc` and `cross/<dataset>/acc_before` on the test split of each dataset in
    `datasets` (dataset configs by name: name, split, classnames, templates, load), except the one
    the task unlearns from (`exclude`): the same half of each (`test_images`, ccup.data.half) as the
    job scores of its own."""

    # cross/<dataset>/acc, one per dataset: the report shows every one it finds (ccup.report.CROSS)
    columns = ()

    def __init__(self, datasets: Mapping, exclude: str, test_images: str = "all"):
        self.datasets = {name: data for name, data in datasets.items() if data.name != exclude}
        self.test_images = test_images

    def __call__(self, features: FeaturesOf, original: torch.nn.Module, unlearned: torch.nn.Module,
                 task: UnlearnTask, test_set) -> dict:
        metrics = {}
        for name, data in self.datasets.items():
            images = half(data.load(split=data.split, transform=task.preprocess), self.test_images)
            (features_before, labels), (features_after, _) = (features(original, images),
                                                              features(unlearned, images))
            encode = partial(class_embeddings, tokenizer=task.tokenizer, classnames=data.classnames,
                             templates=data.templates)
            before = encode(original)
            after = classifier_of(unlearned, original, before, encode)
            predictions = predict(unlearned, features_after, after, data.classnames)
            metrics[f"cross/{name}/acc"] = accuracy(predictions, labels)
            metrics[f"cross/{name}/acc_before"] = accuracy(
                predict(original, features_before, before), labels)
        return metrics
