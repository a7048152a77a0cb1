"""Paraphrase robustness: forget accuracy measured with prompts the unlearning never saw, held-out
templates and other names for each class (the dataset config's `heldout_templates` and `synonyms`),
since a method built from the dataset's own prompts may forget the words rather than the class."""
import logging
from collections.abc import Mapping, Sequence
from functools import partial

import torch
import torch.nn.functional as F

from ccup.datasets import per_class
from ccup.errors import UserError
from ccup.features import FeaturesOf
from ccup.metrics import accuracy
from ccup.task import UnlearnTask
from ccup.zeroshot import class_embeddings, classifier_of, predict

log = logging.getLogger(__name__)


class HeldOutPrompts:
    """On the test images of the forget classes, argmax over every class of the dataset, each class
    described by the held-out prompts only, for the unlearned model and (`_before`) the original, in
    percent:

    - `forget/acc_heldout_prompts`: each class is the ensemble of its `synonyms` under the held-out
      `templates`;
    - `forget/acc_heldout_templates`: each class under its own name, with the held-out templates:
      the template shift alone, apart from the change of words.

    A dataset without `synonyms` and `heldout_templates` (None here) is skipped with a warning, so
    that this evaluation can be on by default."""

    columns = ("forget/acc_heldout_templates", "forget/acc_heldout_prompts")

    def __init__(self, synonyms: Mapping[str, Sequence[str]] | None,
                 templates: Sequence[str] | None):
        self.synonyms = None if synonyms is None else {name: list(words)
                                                       for name, words in synonyms.items()}
        self.templates = None if templates is None else list(templates)

    def __call__(self, features: FeaturesOf, original: torch.nn.Module, unlearned: torch.nn.Module,
                 task: UnlearnTask, test_set) -> dict:
        if self.synonyms is None or self.templates is None:
            log.warning("eval=prompts skipped: the dataset config has no `synonyms` and "
                        "`heldout_templates`")
            return {}
        check_held_out(self.synonyms, self.templates, task.classnames, task.templates)
        # all of them: the seed draws nothing
        images = per_class(test_set, task.forget_idx, None, seed=0)
        (features_before, labels), (features_after, _) = (features(original, images),
                                                          features(unlearned, images))
        names = {name: [name] for name in task.classnames}
        metrics = {}
        for key, words in [("heldout_prompts", self.synonyms), ("heldout_templates", names)]:
            encode = partial(paraphrase_classifier, tokenizer=task.tokenizer,
                             classnames=task.classnames, synonyms=words, templates=self.templates)
            before = encode(original)
            after = classifier_of(unlearned, original, before, encode)
            predictions = predict(unlearned, features_after, after, task.classnames)
            metrics[f"forget/acc_{key}"] = accuracy(predictions, labels)
            metrics[f"forget/acc_{key}_before"] = accuracy(
                predict(original, features_before, before), labels)
        return metrics


def check_held_out(synonyms: Mapping[str, Sequence[str]], templates: Sequence[str],
                   classnames: Sequence[str], used: Sequence[str]) -> None:
    """Held-out prompts name every class, never by a class name of the dataset, with templates the
    task never used."""
    missing = [name for name in classnames if not synonyms.get(name)]
    if missing:
        raise UserError(f"dataset.synonyms has no other names for {missing}: give each class at "
                        "least one")
    names = {name.lower() for name in classnames}
    reused = sorted({word for words in synonyms.values()
                     for word in words if word.lower() in names})
    if reused:
        raise UserError(f"dataset.synonyms reuses class names {reused}: a synonym must be "
                        "another word")
    if not templates or not all("{}" in template for template in templates):
        raise UserError("dataset.heldout_templates must list templates, each with {} where the "
                        "class name goes")
    if shared := sorted(set(templates) & set(used)):
        raise UserError(f"dataset.heldout_templates {shared} are among the templates the "
                        "unlearning used: held-out templates must be new")


def paraphrase_classifier(model: torch.nn.Module, tokenizer, classnames: Sequence[str],
                          synonyms: Mapping[str, Sequence[str]],
                          templates: Sequence[str]) -> torch.Tensor:
    """(d, C) classifier: per class, the normalised mean over its synonyms of each synonym's
    template ensemble."""
    words = [word for name in classnames for word in synonyms[name]]
    # (d, W), columns in `words` order
    per_word = class_embeddings(model, tokenizer, words, templates)
    owner = torch.tensor([c for c, name in enumerate(classnames) for _ in synonyms[name]],
                         device=per_word.device)
    return ensemble(per_word, owner, len(classnames))


def ensemble(columns: torch.Tensor, owner: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(d, C): the normalised mean of the (d, W) unit columns that each class owns (`owner`, (W,)
    class indices)."""
    # (W, C); a product, deterministic on every device
    ownership = F.one_hot(owner, num_classes).to(columns.dtype)
    return F.normalize(columns @ ownership, dim=0)
