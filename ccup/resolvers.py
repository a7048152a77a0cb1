"""Config resolvers: forget sets drawn at random, validation and test forget classes, and prompt templates from
open_clip or a file, resolved when a job's config is, so that its record holds the classes and templates it used; a
forget set joined into one word."""
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import open_clip.zero_shot_metadata
from omegaconf import ListConfig, OmegaConf

from ccup.errors import UserError


def random_classes(classnames: Sequence[str], k: int, draw: int) -> list[str]:
    """`k` distinct class names drawn with the seed `draw`: the same classes for the same draw on every machine."""
    if not 0 < k < len(classnames):
        raise UserError(f"forget.k={k}: draw between 1 and {len(classnames) - 1} of the {len(classnames)} classes")
    return random.Random(draw).sample(list(classnames), k)


def validation_classes(classnames: Sequence[str], exclude: Sequence[str], k: int = 3) -> list[str]:
    """The forget classes a search tunes on, by a rule fixed before any result is read: the classes outside `exclude`
    (the published protocol forget classes) in the order of numpy's default_rng(0) permutation, the first `k`."""
    candidates = [name for name in classnames if name not in set(exclude)]
    return [candidates[i] for i in np.random.default_rng(0).permutation(len(candidates))[:k]]


def other_classes(classnames: Sequence[str], taken: Sequence[str]) -> list[str]:
    """The classes not in `taken`, in the dataset's order: the test forget classes beside the validation ones."""
    return [name for name in classnames if name not in set(taken)]


def open_clip_templates(name: str) -> list[str]:
    """A template list that open_clip ships (OPENAI_IMAGENET_TEMPLATES, SIMPLE_IMAGENET_TEMPLATES) as format strings."""
    return [template("{}") for template in getattr(open_clip.zero_shot_metadata, name)]


def read_templates(path: str) -> list[str]:
    """Templates from a text file, one per line with `{}` where the class name goes; blank and `#` lines skipped."""
    file = Path(path)
    if not file.is_file():
        raise UserError(f"no template file at {file.resolve()}: pass prompts=file dataset.templates_file=PATH")
    templates = [line.strip() for line in file.read_text().splitlines() if line.strip() and not line.startswith("#")]
    if not templates or not all("{}" in template for template in templates):
        raise UserError(f"{file}: write one template per line, each with {{}} where the class name goes")
    return templates


def joined(classes: Sequence[str]) -> str:
    """A forget set as one word, as reports name it: `sandal+sneaker+ankle boot`."""
    return "+".join(classes)


def as_node(resolver: Callable[..., list]) -> Callable[..., ListConfig]:
    """A resolver whose list comes back as a config node: OmegaConf.resolve, which instantiate calls, cannot put a
    plain list where an interpolation was."""
    return lambda *args: OmegaConf.create(resolver(*args))


OmegaConf.register_new_resolver("random_classes", as_node(random_classes), replace=True)
OmegaConf.register_new_resolver("joined", joined, replace=True)
OmegaConf.register_new_resolver("validation_classes", as_node(validation_classes), replace=True)
OmegaConf.register_new_resolver("other_classes", as_node(other_classes), replace=True)
OmegaConf.register_new_resolver("open_clip_templates", as_node(open_clip_templates), replace=True)
OmegaConf.register_new_resolver("read_templates", as_node(read_templates), replace=True)
