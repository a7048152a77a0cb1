"""Fine-tuning unlearning objectives (PAPER.md §3): a baseline is its loss on forget and/or retain batches.

Each loss takes the model, the (d, C) zero-shot classifier and a batch {"forget": (x, y), "retain": (x, y)} holding
the sample sets it `uses`; labels index all C classes, the forgotten ones included.
"""
import torch
import torch.nn.functional as F

from ccup.zeroshot import zero_shot_logits


def uses(*sample_sets: str):
    """Declare which sample sets ("forget", "retain") a loss reads, so only those are built."""
    def mark(loss):
        loss.uses = sample_sets
        return loss
    return mark


def classification_loss(model, classifier: torch.Tensor, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of logit_scale * cos(image, class text embeddings): CLIP's zero-shot classification loss."""
    return F.cross_entropy(zero_shot_logits(model, images, classifier), labels)


@uses("retain")
def finetune(model, classifier, batch):
    """FT: fine-tune on retain data only; the forget class fades because it is never a target."""
    return classification_loss(model, classifier, *batch["retain"])


@uses("forget")
def grad_ascent(model, classifier, batch):
    """GA / NegGrad: gradient ascent on the forget data."""
    return -classification_loss(model, classifier, *batch["forget"])


@uses("forget", "retain")
def neggrad_plus(model, classifier, batch, beta: float = 1.0):
    """NegGrad+: descent on retain data, ascent on forget data weighted by beta."""
    retain = classification_loss(model, classifier, *batch["retain"])
    return retain - beta * classification_loss(model, classifier, *batch["forget"])


@uses("forget", "retain")
def random_label(model, classifier, batch):
    """RL: forget samples relabelled to random other classes, trained together with retain data (as in SalUn)."""
    images, labels = batch["forget"]
    num_classes = classifier.shape[1]
    other = (labels + torch.randint(1, num_classes, labels.shape, device=labels.device)) % num_classes
    retain = classification_loss(model, classifier, *batch["retain"])
    return classification_loss(model, classifier, images, other) + retain
