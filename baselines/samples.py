"""The data regimes of the fine-tuning baselines: `samples(model, task, uses) -> ({"forget":
Dataset, "retain": ...}, stats)`, stats being what building them cost.

`samples=real` draws images of the dataset's train split; `samples=synthetic` is data-free: images
synthesised from noise by gradient ascent on each class's text embedding
(docs/method.md#synthetic-samples), cached per (model, class, seed).
"""
import time
from dataclasses import dataclass, field, fields
from functools import partial
from pathlib import Path

import torch
from torch.utils.data import Dataset, TensorDataset

from baselines.synthesis import synthesize
from ccup import storage
from ccup.datasets import per_class
from ccup.errors import UserError
from ccup.models import weights_digest
from ccup.task import UnlearnTask


def class_indices(task: UnlearnTask, uses: tuple[str, ...]) -> dict[str, list[int]]:
    """The classes behind each sample set a loss uses."""
    if "retain" in uses and not task.retain_idx:
        raise UserError("this method trains on retain data, but the retain set is empty")
    return {name: {"forget": task.forget_idx, "retain": task.retain_idx}[name] for name in uses}


def compared_settings(samples) -> dict:
    """A samples dataclass's settings but those declared `compare=False`: what names the samples,
    or where they are kept, is not what they are."""
    return {setting.name: getattr(samples, setting.name)
            for setting in fields(samples) if setting.compare}


@dataclass(frozen=True)
class RealSamples:
    """Up to `per_class` train-split images of each class, drawn with `seed`."""

    per_class: int
    seed: int
    source: str = field(default="train", compare=False)  # its config's word for the report

    def __post_init__(self):
        if not self.per_class >= 1:
            raise UserError(f"samples.per_class must be at least 1, got {self.per_class}")

    @property
    def key(self) -> dict:
        """What the samples depend on, beside the task: every setting (`source` names them)."""
        return compared_settings(self)

    def __call__(self, model, task: UnlearnTask,
                 uses: tuple[str, ...]) -> tuple[dict[str, Dataset], dict]:
        if task.load_train is None:
            raise UserError("samples=real needs the dataset's train split; use samples=synthetic "
                            "for data-free unlearning")
        train = task.load_train()
        # one stream over the sample sets, in `uses` order
        generator = torch.Generator().manual_seed(self.seed)
        sets = {}
        for name, classes in class_indices(task, uses).items():
            sets[name] = per_class(train, classes, self.per_class, generator)
            if len(sets[name]) == 0:
                names = [task.classnames[c] for c in classes]
                raise UserError(f"the train split has no images of the {name} classes {names}")
        return sets, {}


@dataclass(frozen=True)
class SyntheticSamples:
    """`per_class` synthetic images of each class (docs/method.md#synthetic-samples), synthesised
    once per (model weights, class, setting) and cached under `cache_dir/synthetic`."""

    per_class: int
    steps: int
    step_size: float
    jitter: int
    blur_every: int
    blur_sigma: float
    norm_weight: float
    temperature: float
    threshold: float
    threshold_step: float
    threshold_floor: float
    seed: int
    cache_dir: str = field(compare=False)  # where the samples are kept, not what they are
    source: str = field(default="synthetic", compare=False)  # its config's word for the report

    def __post_init__(self):
        if not self.per_class >= 1:
            raise UserError(f"samples.per_class must be at least 1, got {self.per_class}")
        if not (self.steps >= 1 and self.blur_every >= 1 and self.threshold_step > 0):
            raise UserError("samples.steps and samples.blur_every must be at least 1 and "
                            f"samples.threshold_step positive, got {self.steps}, "
                            f"{self.blur_every}, {self.threshold_step}")

    @property
    def key(self) -> dict:
        """What the samples depend on, beside the model and the task: every setting but the cache
        folder."""
        return compared_settings(self)

    def __call__(self, model, task: UnlearnTask,
                 uses: tuple[str, ...]) -> tuple[dict[str, Dataset], dict]:
        start, hits, sets = time.perf_counter(), 0, {}
        for name, classes in class_indices(task, uses).items():
            images = []
            for c in classes:
                # Acceptance is an argmax over all classes: the competing class names are part of
                # what a sample is.
                entry = {"setting": self.key, "weights": weights_digest(model),
                         "target": task.classnames[c], "classnames": task.classnames,
                         "templates": task.templates}
                path = Path(self.cache_dir) / "synthetic" / f"{storage.digest(entry, length=20)}.pt"
                class_images, hit = storage.cached(path, partial(self.make, model, task, c))
                images.append(class_images)
                hits += hit
            labels = torch.tensor(classes).repeat_interleave(self.per_class)
            sets[name] = TensorDataset(torch.cat(images), labels)
        return sets, {"time/synthesis_s": time.perf_counter() - start, "synthesis/cache_hits": hits}

    def make(self, model, task: UnlearnTask, target: int) -> torch.Tensor:
        # open_clip's size, mean and std: the valid pixel range after normalising
        cfg = model.visual.preprocess_cfg
        generator = torch.Generator().manual_seed(self.seed * 100_003 + target)
        images = synthesize(
            model, task.classifier, target, self.per_class, cfg["size"], cfg["mean"], cfg["std"],
            generator, steps=self.steps, step_size=self.step_size, jitter=self.jitter,
            blur_every=self.blur_every, blur_sigma=self.blur_sigma, norm_weight=self.norm_weight,
            temperature=self.temperature, threshold=self.threshold,
            threshold_step=self.threshold_step, threshold_floor=self.threshold_floor)
        if images is None:
            raise UserError(f"synthesis of {task.classnames[target]!r} never reached its "
                            f"confidence threshold (floor {self.threshold_floor}) in {self.steps} "
                            "steps per attempt: raise samples.steps or lower "
                            "samples.threshold_floor, or use samples=real")
        return images
