"""Unlearning metrics in percent, from how many test images of each class there are and how many of them the model
names right among all classes (the forgotten ones included), as in the protocol of Kravets & Namboodiri (WACV 2025)."""
from collections.abc import Sequence

import torch


def class_counts(predictions: torch.Tensor, labels: torch.Tensor, classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per class, the images predicted right and the images there are: a confusion matrix's diagonal and row sums,
    counted without its C x C cells (3.8 GB in float64 at ImageNet-21k's 21,841 classes)."""
    support = torch.bincount(labels, minlength=classes)
    correct = torch.bincount(labels[predictions == labels], minlength=classes)
    return correct, support


def unlearning_metrics(correct: torch.Tensor, support: torch.Tensor, forget_idx: Sequence[int],
                       classnames: Sequence[str]) -> dict:
    """forget/acc, retain/acc, all/acc, retain/mean_per_class_recall and class/<name>/acc from the (C,) counts of
    `class_counts`."""
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


def implausible(metrics: dict, alpha: float, classes: int) -> list[str]:
    """What makes a complete job's numbers suspect, as sentences saying what to check: the forget classes recognised no
    better than chance before unlearning (a class list out of the labels' order reads 0.00 before and after), or a full
    unlearning that left their accuracy where it was (a projection can lower the class's score while every other
    score falls further)."""
    before, after = metrics.get("forget/acc_before"), metrics.get("forget/acc")
    chance = 100 / classes
    warnings = []
    if before is not None and before <= chance:
        warnings.append(f"forget/acc before unlearning is {before:.2f} %, at or below chance ({chance:.2f} % for "
                        f"{classes} classes): check that the class names follow the order of the dataset's labels")
    if alpha == 1 and before is not None and after is not None and before > chance and after >= before:
        warnings.append(f"forget/acc did not fall at alpha = 1 ({after:.2f} %, {before:.2f} % before): the method "
                        "left the class as it was; check its settings")
    return warnings
