"""The unlearning task every method receives: the classes, the ones to forget, how to name them, and where the
training images are for methods that need data."""
import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch.utils.data import Dataset

from ccup.errors import UserError, some
from ccup.zeroshot import class_embeddings, classifier_of


@dataclass(frozen=True)
class UnlearnTask:
    classnames: tuple[str, ...]
    forget: tuple[str, ...]
    templates: tuple[str, ...]
    tokenizer: Callable
    classifier: torch.Tensor  # (d, C) class text embeddings of the original model, columns in `classnames` order
    load_train: Callable[[], Dataset] | None = None  # loads the train split, for methods that use real images
    original: torch.nn.Module | None = field(default=None, repr=False)  # whose text tower gave `classifier`
    preprocess: Callable | None = None  # the model's image transform, for evaluations that load more images

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
            load_train: a function returning the train split, for the methods that need images; None for none.

        Returns:
            The task, with the (d, C) class text embeddings of `clip`'s model (`classifier`).

        Raises:
            UserError: a forget class that is not a class name, or a forget set that is empty or every class.
        """
        check_forget_set(forget, classnames)
        classifier = class_embeddings(clip.model, clip.tokenizer, classnames, templates)
        return cls(tuple(classnames), tuple(forget), tuple(templates), clip.tokenizer, classifier, load_train,
                   clip.model, clip.preprocess)

    @property
    def forget_idx(self) -> list[int]:
        return [self.classnames.index(name) for name in self.forget]

    @property
    def retain_idx(self) -> list[int]:
        return [i for i, name in enumerate(self.classnames) if name not in self.forget]

    def classifier_of(self, model: torch.nn.Module) -> torch.Tensor:
        """(d, C) zero-shot classifier of `model` itself: a method that edits the text tower is scored with it."""
        def encode(own: torch.nn.Module) -> torch.Tensor:
            return class_embeddings(own, self.tokenizer, self.classnames, self.templates)

        return encode(model) if self.original is None else classifier_of(model, self.original, self.classifier, encode)


def check_forget_set(forget: Sequence[str], classnames: Sequence[str]) -> None:
    """Forget sets name classes of the dataset: at least one, each once, and not all of them."""
    if isinstance(forget, str) or not all(isinstance(name, str) for name in forget):
        raise UserError(f"forget.classes must be a list of class names, got {forget!r}: write e.g. "
                        "forget.classes=[sandal], and quote names that look like numbers, forget.classes=['5']")
    if len(forget) == 0:
        raise UserError("the forget set is empty: name at least one class, e.g. forget.classes=[sandal]")
    for name in forget:
        if name not in classnames:
            close = difflib.get_close_matches(name, classnames, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UserError(f"unknown forget class {name!r}: {hint}the dataset's classes are {some(classnames)} "
                            "(dataset.classnames)")
    if len(set(forget)) < len(forget):
        raise UserError(f"a forget class is given twice in {list(forget)}: name each class once")
    if set(forget) == set(classnames):
        raise UserError("cannot forget every class: nothing would be left to retain or to classify as")
