"""Unlearning metrics from a confusion matrix, in percent. Rows are true classes, columns predictions over all
classes (the forgotten ones included), as in the protocol of Kravets & Namboodiri (WACV 2025)."""
from collections.abc import Sequence

import torch


def unlearning_metrics(confmat: torch.Tensor, forget_idx: Sequence[int], classnames: Sequence[str]) -> dict:
    """forget/acc, retain/acc, all/acc, retain/mean_per_class_recall and class/<name>/acc from a (C, C) matrix."""
    confmat = confmat.double()
    correct, support = confmat.diag(), confmat.sum(dim=1)  # (C,), (C,)
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
