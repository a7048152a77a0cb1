"""Membership inference on the forget class, where membership is defined: a loss-threshold attack
(Yeom et al., CSF 2018) asking whether the model's loss still tells the images it was trained on
from images it never saw."""
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from ccup.datasets import per_class
from ccup.errors import UserError
from ccup.features import FeaturesOf
from ccup.task import UnlearnTask
from ccup.zeroshot import embeddings


class LossThreshold:
    """`mia/forget_auroc`: the AUROC of minus the per-image zero-shot loss (cross-entropy of
    logit_scale · cos over every class of the dataset, on the true class) separating members,
    `per_class` train images of each forget class, from non-members, as many of its test images
    (fixed draws with `seed`); `mia/retain_auroc` the same over the retained classes,
    `retain_per_class` images of each, the attack's reach on classes no method meant to touch; each
    with `_before` for the original model. 0.5: members and non-members look alike to the
    attack; above: members have lower loss (membership leaks); below: members have *higher* loss,
    which unlearning itself can cause and which leaks membership just as well.

    Defined only where the model's training set is known to be the dataset's train split, i.e. for a
    model trained here: `model_train_data` lists the dataset configs it was trained on (the embedded
    model's `model.train_data`; None for any other model, for which this evaluation refuses to
    run)."""

    columns = ("mia/forget_auroc",)

    def __init__(self, per_class: int, retain_per_class: int, seed: int, dataset: str,
                 model_train_data: Mapping | None):
        if not (per_class >= 1 and retain_per_class >= 1):
            raise UserError("eval.mia.per_class and retain_per_class must be at least 1, got "
                            f"{per_class} and {retain_per_class}")
        trained_on = [] if model_train_data is None else [data["name"]
                                                          for data in model_train_data.values()]
        if dataset not in trained_on:
            raise UserError(f"eval=mia needs a model trained on the train split of {dataset!r}, so "
                            "that members are known; this model's training data is "
                            f"{'unknown' if not trained_on else trained_on} (the embedded "
                            "model=tiny is trained on fashion_mnist and digits)")
        self.per_class = per_class
        self.retain_per_class = retain_per_class
        self.seed = seed

    def __call__(self, features: FeaturesOf, original: torch.nn.Module, unlearned: torch.nn.Module,
                 task: UnlearnTask, test_set) -> dict:
        if task.load_train is None:
            raise UserError("eval=mia needs the dataset's train split: its members")
        metrics = {}
        for name, classes, count in [("forget", task.forget_idx, self.per_class),
                                     ("retain", task.retain_idx, self.retain_per_class)]:
            members = per_class(task.load_train(), classes, count, self.seed)
            others = per_class(test_set, classes, count, self.seed)
            for suffix, model in [("", unlearned), ("_before", original)]:
                classifier = task.classifier_of(model)
                member_losses = losses(model, *features(model, members), classifier)
                metrics[f"mia/{name}_auroc{suffix}"] = attack_auroc(
                    member_losses, losses(model, *features(model, others), classifier))
        return metrics


@torch.no_grad()
def losses(model: torch.nn.Module, features: torch.Tensor, labels: torch.Tensor,
           classifier: torch.Tensor) -> torch.Tensor:
    """(N,) zero-shot cross-entropy of each image on its true class, from features before the final
    projection."""
    # (N, C)
    logits = model.logit_scale.exp().cpu() * embeddings(model, features).cpu() @ classifier.cpu()
    return F.cross_entropy(logits, labels, reduction="none")


def attack_auroc(member_losses: torch.Tensor, other_losses: torch.Tensor) -> float:
    """AUROC of the loss-threshold attack: members predicted by low loss (score = -loss)."""
    scores = torch.cat([member_losses, other_losses]).neg().double().numpy()
    truth = torch.cat([torch.ones(len(member_losses)), torch.zeros(len(other_losses))]).numpy()
    return float(roc_auc_score(truth, scores))
