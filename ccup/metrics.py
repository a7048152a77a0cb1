"""Unlearning metrics in percent, from how many test images of each class there are and how many of
them the model names right among all classes (the forgotten ones included), as in the protocol of
Kravets & Namboodiri (WACV 2025)."""
from collections.abc import Sequence

import torch


def class_counts(predictions: torch.Tensor, labels: torch.Tensor,
                 classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per class, the images predicted right and the images there are: a confusion matrix's diagonal
    and row sums, counted without its C x C cells (3.8 GB in float64 at ImageNet-21k's 21,841
    classes)."""
    support = torch.bincount(labels, minlength=classes)
    correct = torch.bincount(labels[predictions == labels], minlength=classes)
    return correct, support


def unlearning_metrics(correct: torch.Tensor, support: torch.Tensor, forget_idx: Sequence[int],
                       classnames: Sequence[str]) -> dict:
    """forget/acc, retain/acc, all/acc, retain/mean_per_class_recall and class/<name>/acc from the
    (C,) counts of `class_counts`."""
    correct, support = correct.double(), support.double()
    forget = torch.zeros(len(classnames), dtype=torch.bool)
    forget[list(forget_idx)] = True
    retain = ~forget & (support > 0)
    recall = correct / support.clamp(min=1)

    def acc(mask):
        return 100 * (correct[mask].sum() / support[mask].sum()).item()

    return {
        "forget/acc": acc(forget),
        "retain/acc": acc(retain),
        "all/acc": acc(support > 0),
        "retain/mean_per_class_recall": 100 * recall[retain].mean().item(),
        **{f"class/{name}/acc": 100 * recall[i].item() for i, name in enumerate(classnames)},
    }


def accuracy(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy in percent."""
    return 100 * (predictions.cpu() == labels.cpu()).double().mean().item()
