"""Config resolvers: forget sets drawn at random and prompt templates from open_clip or a file, resolved when a job's
config is, so that its record holds the classes and templates it used; a forget set joined into one word."""
import random
from collections.abc import Sequence
from pathlib import Path

import open_clip.zero_shot_metadata
from omegaconf import OmegaConf

from ccup.errors import UserError


def random_classes(classnames: Sequence[str], k: int, draw: int) -> list[str]:
    """`k` distinct class names drawn with the seed `draw`: the same classes for the same draw on every machine."""
    if not 0 < k < len(classnames):
        raise UserError(f"forget.k={k}: draw between 1 and {len(classnames) - 1} of the {len(classnames)} classes")
    return random.Random(draw).sample(list(classnames), k)


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


OmegaConf.register_new_resolver("random_classes", random_classes, replace=True)
OmegaConf.register_new_resolver("joined", joined, replace=True)
OmegaConf.register_new_resolver("open_clip_templates", open_clip_templates, replace=True)
OmegaConf.register_new_resolver("read_templates", read_templates, replace=True)
