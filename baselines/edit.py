"""The methods that edit weights (the fine-tuning baselines, SSD, SLUG): the fully unlearned
weights theta_1 computed once per setting and cached, then theta_alpha = lerp(theta_0, theta_1,
alpha) for every strength alpha."""
import copy
import fnmatch
from abc import ABC, abstractmethod
from pathlib import Path

import torch

from ccup import storage
from ccup.datasets import dataset_key
from ccup.models import weights_digest
from ccup.projection import check_alpha
from ccup.task import UnlearnTask


class WeightEdit(ABC):
    """A method whose fully unlearned weights (alpha = 1) of the parameters it `edits` are
    `compute`d once per `key(model, task)` and kept under `cache_dir/unlearned`: an alpha sweep
    computes them once. Their stats, with `unlearn/cache_hit`, become `stats`. A subclass gives
    `edits`, `compute` and `settings`."""

    def __init__(self, alpha: float, cache_dir: str):
        check_alpha(alpha)
        self.alpha, self.cache_dir = alpha, Path(cache_dir)
        self.stats = {}

    def __call__(self, model: torch.nn.Module, task: UnlearnTask) -> torch.nn.Module:
        path = self.cache_dir / "unlearned" / f"{self.key(model, task)}.pt"
        entry, hit = storage.cached(path, lambda: self.compute(model, task))
        self.stats = {**entry["stats"], "unlearn/cache_hit": int(hit)}
        return interpolate(model, entry["weights"], self.alpha)

    @abstractmethod
    def edits(self, model: torch.nn.Module) -> list[str]:
        """Names of the parameters this method may change."""

    @abstractmethod
    def compute(self, model: torch.nn.Module, task: UnlearnTask) -> dict:
        """{"weights": {name: theta_1} of (some of) the parameters it `edits`, "stats": what
        computing them cost}."""

    @abstractmethod
    def settings(self) -> dict:
        """Every setting the fully unlearned weights depend on but alpha: JSON, or objects that
        `storage.key_of` names."""

    def key(self, model: torch.nn.Module, task: UnlearnTask) -> str:
        """The cache entry's name: everything the fully unlearned weights depend on, the original
        weights, the task (its train split by `dataset_key`) and the `settings`."""
        train = dataset_key(task.load_train()) if task.load_train is not None else None
        return storage.digest({
            **self.settings(), "weights": weights_digest(model), "classnames": task.classnames,
            "forget": task.forget, "templates": task.templates, "train": train}, length=20)


def interpolate(model: torch.nn.Module, weights: dict[str, torch.Tensor],
                alpha: float) -> torch.nn.Module:
    """A copy of `model` with theta_0 + alpha (theta_1 - theta_0) for the named weights; lerp is
    exact at 0 and 1."""
    edited = copy.deepcopy(model)
    state = edited.state_dict()
    with torch.no_grad():
        for name, theta_1 in weights.items():
            state[name].copy_(torch.lerp(state[name], theta_1.to(state[name]), alpha))
    return edited


def matching(model: torch.nn.Module, params: list[str]) -> list[str]:
    """Names of the model's parameters that match any glob pattern of `params`."""
    return [name for name, _ in model.named_parameters()
            if any(fnmatch.fnmatch(name, p) for p in params)]
