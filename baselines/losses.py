"""Fine-tuning unlearning objectives: a baseline is its loss on forget and/or retain batches, trained by the shared loop
(ccup.loop, which says what a loss takes). A loss's settings have no defaults: conf/method/<name>.yaml passes them."""
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
def neggrad_plus(model, classifier, batch, beta: float):
    """NegGrad+ (Kurmanji et al., "Towards Unbounded Machine Unlearning", NeurIPS 2023, arXiv:2302.09880): descent on
    retain data, ascent on forget data weighted by beta. Their b * retain - (1 - b) * forget is this loss up to scale,
    with beta = (1 - b) / b."""
    retain = classification_loss(model, classifier, *batch["retain"])
    return retain - beta * classification_loss(model, classifier, *batch["forget"])


@uses("forget", "retain")
def random_label(model, classifier, batch):
    """RL: forget samples relabelled to random other classes, trained together with retain data, as in SalUn (Fan et
    al., "SalUn: Empowering Machine Unlearning via Gradient-based Weight Saliency in Both Image Classification and
    Generation", ICLR 2024, arXiv:2310.12508)."""
    images, labels = batch["forget"]
    num_classes = classifier.shape[1]
    other = (labels + torch.randint(1, num_classes, labels.shape, device=labels.device)) % num_classes
    retain = classification_loss(model, classifier, *batch["retain"])
    return classification_loss(model, classifier, images, other) + retain
