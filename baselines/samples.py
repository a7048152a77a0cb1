"""The data regimes of the fine-tuning baselines: `samples(model, task, uses) -> {"forget": Dataset, "retain": ...}`.

`data=real` draws images of the dataset's train split; `data=synthetic` is data-free: images synthesised from noise
by gradient ascent on each class's text embedding (PAPER.md §3, step 1), cached per (model, class, seed).
"""
import hashlib
import json
import time
from pathlib import Path

import torch
from torch.utils.data import Dataset, TensorDataset

from baselines.synthesis import synthesize
from ccup import storage
from ccup.data import per_class
from ccup.errors import UserError
from ccup.models import weights_digest
from ccup.task import UnlearnTask


def class_indices(task: UnlearnTask, uses: tuple[str, ...]) -> dict[str, list[int]]:
    """The classes behind each sample set a loss uses."""
    if "retain" in uses and not task.retain_idx:
        raise UserError("this method trains on retain data, but the retain set is empty")
    return {name: {"forget": task.forget_idx, "retain": task.retain_idx}[name] for name in uses}


class RealSamples:
    """Up to `per_class` train-split images of each class, drawn with `seed`."""

    def __init__(self, per_class: int, seed: int):
        if not per_class >= 1:
            raise UserError(f"data.per_class must be at least 1, got {per_class}")
        self.per_class, self.seed = per_class, seed
        self._stats = {}

    @property
    def stats(self) -> dict:
        return self._stats

    def __call__(self, model, task: UnlearnTask, uses: tuple[str, ...]) -> dict[str, Dataset]:
        if task.train is None:
            raise UserError("data=real needs the dataset's train split; use data=synthetic for data-free unlearning")
        train = task.train()
        generator = torch.Generator().manual_seed(self.seed)  # one stream over the sample sets, in `uses` order
        sets = {}
        for name, classes in class_indices(task, uses).items():
            sets[name] = per_class(train, classes, self.per_class, generator)
            if len(sets[name]) == 0:
                names = [task.classnames[c] for c in classes]
                raise UserError(f"the train split has no images of the {name} classes {names}")
        return sets


class SyntheticSamples:
    """`per_class` synthetic images of each class (PAPER.md §3 step 1), synthesised once per (model weights, class,
    setting) and cached under `cache_dir/synthetic`."""

    def __init__(self, per_class: int, steps: int, step_size: float, jitter: int, blur_every: int, blur_sigma: float,
                 norm_weight: float, temperature: float, threshold: float, threshold_step: float,
                 threshold_floor: float, seed: int, cache_dir: str):
        if not per_class >= 1:
            raise UserError(f"data.per_class must be at least 1, got {per_class}")
        if not (steps >= 1 and blur_every >= 1 and threshold_step > 0):
            raise UserError(f"data.steps and data.blur_every must be at least 1 and data.threshold_step positive, got "
                            f"{steps}, {blur_every}, {threshold_step}")
        self.per_class, self.steps, self.step_size, self.jitter = per_class, steps, step_size, jitter
        self.blur_every, self.blur_sigma = blur_every, blur_sigma
        self.norm_weight, self.temperature = norm_weight, temperature
        self.threshold, self.threshold_step, self.threshold_floor = threshold, threshold_step, threshold_floor
        self.seed, self.cache_dir = seed, cache_dir
        self._stats = {}

    @property
    def stats(self) -> dict:
        return self._stats

    def __call__(self, model, task: UnlearnTask, uses: tuple[str, ...]) -> dict[str, Dataset]:
        start, hits, sets = time.perf_counter(), 0, {}
        for name, classes in class_indices(task, uses).items():
            images = []
            for c in classes:
                path = Path(self.cache_dir) / "synthetic" / f"{self.key(model, task, c)}.pt"
                hits += path.exists()
                images.append(torch.load(path, weights_only=True) if path.exists() else self.make(model, task, c, path))
            labels = torch.tensor(classes).repeat_interleave(self.per_class)
            sets[name] = TensorDataset(torch.cat(images), labels)
        self._stats = {"time/synthesis_s": time.perf_counter() - start, "synthesis/cache_hits": hits}
        return sets

    def make(self, model, task: UnlearnTask, target: int, path: Path) -> torch.Tensor:
        cfg = model.visual.preprocess_cfg  # open_clip's size, mean and std: the valid pixel range after normalising
        generator = torch.Generator().manual_seed(self.seed * 100_003 + target)
        images = synthesize(
            model, task.classifier, target, self.per_class, cfg["size"], cfg["mean"], cfg["std"], generator,
            steps=self.steps, step_size=self.step_size, jitter=self.jitter, blur_every=self.blur_every,
            blur_sigma=self.blur_sigma, norm_weight=self.norm_weight, temperature=self.temperature,
            threshold=self.threshold, threshold_step=self.threshold_step, threshold_floor=self.threshold_floor)
        if images is None:
            raise UserError(f"synthesis of {task.classnames[target]!r} never reached its confidence threshold (floor "
                            f"{self.threshold_floor}) in {self.steps} steps per attempt: raise data.steps or lower "
                            "data.threshold_floor, or use data=real")
        storage.save(images, path)
        return images

    def key(self, model, task: UnlearnTask, target: int) -> str:
        setting = {k: v for k, v in vars(self).items() if not k.startswith("_") and k != "cache_dir"}
        # Acceptance is an argmax over all classes: the competing class names are part of what a sample is.
        setting.update(weights=weights_digest(model), target=task.classnames[target], classnames=task.classnames,
                       templates=task.templates)
        return hashlib.sha256(json.dumps(setting, sort_keys=True).encode()).hexdigest()[:20]
