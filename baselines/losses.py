"""Fine-tuning unlearning objectives (PAPER.md §3): a baseline is its loss on forget and/or retain batches, trained by
the shared loop (ccup.loop, which says what a loss takes)."""
import torch

from ccup.loop import classification_loss, uses


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
