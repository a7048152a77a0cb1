"""Fine-tuning baselines as methods: train once per setting (cached), then
theta_alpha = theta_0 + alpha (theta_1 - theta_0)."""
import copy
import fnmatch
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.combined_loader import CombinedLoader
from torch.utils.data import DataLoader

from ccup import storage
from ccup.data import dataset_key
from ccup.errors import UserError
from ccup.models import weights_digest
from ccup.projection import check_alpha
from ccup.task import UnlearnTask
from ccup.trainers import callbacks, check_trainer, watched


class FineTune:
    """Trains the parameters matching `params` (glob patterns over parameter names) with `module` (the shared loop
    and the method's loss) for `steps` steps on the samples that `samples` builds, under a Lightning
    Trainer. Its curves go to `loggers` (the job's, which run.py hands over) when it trains; a cache
    hit logs none."""

    def __init__(self, alpha: float, module: Callable, samples: Callable, params: list[str], steps: int,
                 batch_size: int, lr: float, seed: int, trainer: Callable[..., pl.Trainer],
                 cache_dir: str, loggers: Sequence = ()):
        check_alpha(alpha)
        if not 0 < lr < float("inf"):
            raise UserError(f"lr must be a positive finite number, got {lr}")
        if not steps >= 1:
            raise UserError(f"steps must be at least 1, got {steps}")
        if not batch_size >= 1:
            raise UserError(f"batch_size must be at least 1, got {batch_size}")
        check_trainer(trainer, "trainer")
        self.alpha, self.module, self.samples, self.params = alpha, module, samples, list(params)
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.seed = seed
        self.trainer, self.cache_dir = trainer, Path(cache_dir)
        self.loggers = list(loggers)
        self.stats = {}

    def edits(self, model: torch.nn.Module) -> list[str]:
        """Names of the parameters this method may change."""
        return matching(model, self.params)

    def __call__(self, model: torch.nn.Module, task: UnlearnTask) -> torch.nn.Module:
        return unlearned_once(self, model, task, lambda: self.train(model, task))

    def train(self, model: torch.nn.Module, task: UnlearnTask) -> dict:
        """The fully unlearned weights (alpha = 1) of the declared parameters, with the cost of getting them."""
        start = time.perf_counter()
        edited = copy.deepcopy(model)
        names = self.edits(edited)
        if not names:
            raise UserError(f"params {self.params} match no parameter of the model")
        with torch.random.fork_rng():  # the same seed gives the same weights, whatever ran before in the job
            torch.manual_seed(self.seed)
            module = self.module(model=edited, task=task, trainable=names, lr=self.lr)
            data, sample_stats = self.samples(model, task, module.uses)
            loaders = {name: DataLoader(data[name], batch_size=self.batch_size, shuffle=True) for name in module.uses}
            logger = {"logger": self.loggers} if self.loggers else {}  # none: the trainer's setting
            trainer = self.trainer(max_steps=self.steps, enable_progress_bar=watched(),
                                   callbacks=callbacks(), **logger)
            trainer.fit(module, CombinedLoader(loaders, mode="max_size_cycle"))
        weights = {name: value.detach().clone() for name, value in edited.state_dict().items() if name in names}
        stats = {**sample_stats, **module.stats, "time/unlearn_s": time.perf_counter() - start}
        return {"weights": weights, "stats": stats}

    def key(self, model: torch.nn.Module, task: UnlearnTask) -> str:
        """Everything the fully unlearned weights depend on: the original weights, the task, and every setting of
        this method but alpha (the loop, its loss and their settings; the samples' own `key`; the trainer's)."""
        return storage.digest({
            "weights": weights_digest(model), "module": self.module, "samples": self.samples, "trainer": self.trainer,
            "params": self.params, "steps": self.steps, "batch_size": self.batch_size, "lr": self.lr, "seed": self.seed,
            "classnames": task.classnames, "forget": task.forget, "templates": task.templates,
            "train": dataset_key(task.load_train()) if task.load_train is not None else None}, length=20)


def matching(model: torch.nn.Module, params: list[str]) -> list[str]:
    """Names of the model's parameters that match any glob pattern of `params`."""
    return [name for name, _ in model.named_parameters() if any(fnmatch.fnmatch(name, p) for p in params)]


def unlearned_once(method, model: torch.nn.Module, task: UnlearnTask, compute: Callable[[], dict]) -> torch.nn.Module:
    """theta_alpha of a method whose fully unlearned weights `compute()` gives ({"weights", "stats"}), computed once per
    `method.key(model, task)` under `method.cache_dir`; their stats, with the cache hit, become `method.stats`."""
    path = method.cache_dir / "unlearned" / f"{method.key(model, task)}.pt"
    entry, hit = storage.cached(path, compute)
    method.stats = {**entry["stats"], "unlearn/cache_hit": int(hit)}
    return interpolate(model, entry["weights"], method.alpha)


def interpolate(model: torch.nn.Module, weights: dict[str, torch.Tensor], alpha: float) -> torch.nn.Module:
    """A copy of `model` with theta_0 + alpha (theta_1 - theta_0) for the named weights; lerp is exact at 0 and 1."""
    edited = copy.deepcopy(model)
    state = edited.state_dict()
    with torch.no_grad():
        for name, theta_1 in weights.items():
            state[name].copy_(torch.lerp(state[name], theta_1.to(state[name]), alpha))
    return edited
