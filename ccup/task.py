"""The unlearning task every method receives: the classes, the ones to forget, how to name them, and
where the training images are for methods that need data."""
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch.utils.data import Dataset

from ccup.classnames import check_forget_set
from ccup.zeroshot import class_embeddings, classifier_of


@dataclass(frozen=True)
class UnlearnTask:
    classnames: tuple[str, ...]
    forget: tuple[str, ...]
    templates: tuple[str, ...]
    tokenizer: Callable
    # (d, C) class text embeddings of the original model, columns in `classnames` order
    classifier: torch.Tensor
    # loads the train split, for methods that use real images
    load_train: Callable[[], Dataset] | None = None
    # whose text tower gave `classifier`
    original: torch.nn.Module | None = field(default=None, repr=False)
    # the model's image transform, for evaluations that load more images
    preprocess: Callable | None = None

    def __post_init__(self):
        check_forget_set(self.forget, self.classnames)

    @classmethod
    def of(cls, clip, classnames: Sequence[str], templates: Sequence[str], forget: Sequence[str],
           load_train: Callable[[], Dataset] | None = None) -> "UnlearnTask":
        """The task for a model; the forget set is checked before any text is encoded.

        Args:
            clip: the model (`ccup.models.Clip`: model, preprocess, tokenizer).
            classnames: the dataset's class names, in the order of its labels.
            templates: prompt templates with `{}` where a class name goes, averaged per class.
            forget: the class names to forget, a subset of `classnames`.
            load_train: a function returning the train split, for the methods that need images; None
                for none.

        Returns:
            The task, with the (d, C) class text embeddings of `clip`'s model (`classifier`).

        Raises:
            UserError: a forget class that is not a class name, or a forget set that is empty or
                every class.
        """
        check_forget_set(forget, classnames)
        classifier = class_embeddings(clip.model, clip.tokenizer, classnames, templates)
        return cls(tuple(classnames), tuple(forget), tuple(templates), clip.tokenizer, classifier,
                   load_train, clip.model, clip.preprocess)

    @property
    def forget_idx(self) -> list[int]:
        return [self.classnames.index(name) for name in self.forget]

    @property
    def retain_idx(self) -> list[int]:
        return [i for i, name in enumerate(self.classnames) if name not in self.forget]

    def classifier_of(self, model: torch.nn.Module) -> torch.Tensor:
        """(d, C) zero-shot classifier of `model` itself: a method that edits the text tower is
        scored with it."""
        def encode(own: torch.nn.Module) -> torch.Tensor:
            return class_embeddings(own, self.tokenizer, self.classnames, self.templates)

        return (encode(model) if self.original is None
                else classifier_of(model, self.original, self.classifier, encode))
