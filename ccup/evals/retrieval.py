"""Text-to-image retrieval: CLIP is also used to search images by text, and a model that only hides
a class from its zero-shot head (a blocklist) still finds that class's images when searched by its
name. Retrieval reads the image embeddings themselves, so it tells forgetting from hiding."""
from collections.abc import Sequence

import torch
from torchmetrics.functional.classification import multilabel_average_precision

from ccup.features import FeaturesOf
from ccup.task import UnlearnTask
from ccup.zeroshot import embeddings


def average_precisions(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(C,) average precision of each class's ranking of the N images: column c of the (N, C)
    `scores` ranks them, the images labelled c are the relevant ones. Threshold-free and over the
    whole ranking, unlike recall@k, whose k would have to suit classes of 50 and of 1,000 images
    alike."""
    relevant = torch.nn.functional.one_hot(labels, scores.shape[1])  # (N, C)
    return multilabel_average_precision(scores.float(), relevant, num_labels=scores.shape[1],
                                        average=None)


def prevalence(labels: torch.Tensor, classes: Sequence[int], num_classes: int) -> float:
    """The average precision of a random ranking, averaged over `classes`: each class's share of the
    images."""
    return (torch.bincount(labels, minlength=num_classes)[list(classes)].double().mean().item()
            / len(labels))


class Retrieval:
    """Each class's prompt ensemble (its column of the zero-shot classifier, from the model's own
    text tower) searches the test images by cosine similarity; in percent, for the unlearned model
    and (`_before`) the original:

    - `retrieval/forget_ap`: the average precision of the forget classes' searches (their mean).
      After retraining without the class it falls towards chance; a blocklist leaves it where it
      was;
    - `retrieval/retain_map`: the mean average precision of the retained classes' searches: the
      collateral damage;
    - `retrieval/forget_chance`: the forget classes' share of the images, the average precision of a
      random ranking. A forget AP far below it ranks the class's images last: a signature an
      attacker can read.
    """

    columns = ("retrieval/forget_ap", "retrieval/retain_map")

    def __call__(self, features: FeaturesOf, original: torch.nn.Module, unlearned: torch.nn.Module,
                 task: UnlearnTask, test_set) -> dict:
        metrics = {}
        for suffix, model in [("", unlearned), ("_before", original)]:
            image_features, labels = features(model, test_set)
            scores = embeddings(model, image_features) @ task.classifier_of(model)  # (N, C) cosines
            ap = 100 * average_precisions(scores.cpu(), labels)
            metrics[f"retrieval/forget_ap{suffix}"] = ap[task.forget_idx].mean().item()
            metrics[f"retrieval/retain_map{suffix}"] = ap[task.retain_idx].mean().item()
        metrics["retrieval/forget_chance"] = 100 * prevalence(labels, task.forget_idx,
                                                              len(task.classnames))
        return metrics
