"""Fine-tuning baselines as methods: train once per setting (cached), then
theta_alpha = theta_0 + alpha (theta_1 - theta_0)."""
import copy
import time
from collections.abc import Callable, Sequence

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.combined_loader import CombinedLoader
from torch.utils.data import DataLoader

from baselines.edit import WeightEdit, matching
from ccup.errors import UserError
from ccup.task import UnlearnTask
from ccup.trainers import callbacks, check_trainer, on_terminal


class FineTune(WeightEdit):
    """Trains the parameters matching `params` (glob patterns over parameter names) with `module`
    (the shared loop and the method's loss) for `steps` steps on the samples that `samples` builds,
    under a Lightning Trainer. Its curves go to `loggers` (the job's, which run.py hands over) when
    it trains; a cache hit logs none."""

    def __init__(self, alpha: float, module: Callable, samples: Callable, params: list[str],
                 steps: int, batch_size: int, lr: float, seed: int,
                 trainer: Callable[..., pl.Trainer], cache_dir: str, loggers: Sequence = ()):
        super().__init__(alpha, cache_dir)
        if not 0 < lr < float("inf"):
            raise UserError(f"lr must be a positive finite number, got {lr}")
        if not steps >= 1:
            raise UserError(f"steps must be at least 1, got {steps}")
        if not batch_size >= 1:
            raise UserError(f"batch_size must be at least 1, got {batch_size}")
        check_trainer(trainer, "trainer")
        self.module, self.samples, self.params = module, samples, list(params)
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.seed = seed
        self.trainer = trainer
        self.loggers = list(loggers)

    def edits(self, model: torch.nn.Module) -> list[str]:
        """Names of the parameters this method may change."""
        return matching(model, self.params)

    def compute(self, model: torch.nn.Module, task: UnlearnTask) -> dict:
        """The weights trained by `module` (alpha = 1) of the parameters it edits, with the cost
        of getting them."""
        start = time.perf_counter()
        edited = copy.deepcopy(model)
        names = self.edits(edited)
        if not names:
            raise UserError(f"params {self.params} match no parameter of the model")
        # the same seed gives the same weights, whatever ran before in the job
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            module = self.module(model=edited, task=task, trainable=names, lr=self.lr)
            data, sample_stats = self.samples(model, task, module.uses)
            loaders = {name: DataLoader(data[name], batch_size=self.batch_size, shuffle=True)
                       for name in module.uses}
            logger = {"logger": self.loggers} if self.loggers else {}  # none: the trainer's setting
            trainer = self.trainer(max_steps=self.steps, enable_progress_bar=on_terminal(),
                                   callbacks=callbacks(), **logger)
            trainer.fit(module, CombinedLoader(loaders, mode="max_size_cycle"))
        weights = {name: value.detach().clone() for name, value in edited.state_dict().items()
                   if name in names}
        stats = {**sample_stats, **module.stats, "time/unlearn_s": time.perf_counter() - start}
        return {"weights": weights, "stats": stats}

    def settings(self) -> dict:
        """Every setting but alpha: the loop, its loss and their settings; the samples' own `key`;
        the trainer's."""
        return {"module": self.module, "samples": self.samples, "trainer": self.trainer,
                "params": self.params, "steps": self.steps, "batch_size": self.batch_size,
                "lr": self.lr, "seed": self.seed}
