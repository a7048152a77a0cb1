"""How far a Lightning Trainer has got, as a line every few seconds, where no one watches a bar."""
import logging
import math
import time
from collections.abc import Callable

import pytorch_lightning as pl

log = logging.getLogger(__name__)


class Progress(pl.Callback):
    """Logs `training: step 120/400, 31 s elapsed, about 72 s left` (`encoding: batch 3/20, ...` in
    a predict loop) every `every_s` seconds of `clock`, where Lightning's progress bar would redraw
    one endless line of a log file (a sweep's jobs, SLURM); nothing in a run shorter than that.

    A step is a training batch: one optimizer step, but where a module accumulates gradients
    itself (Lipschitz). A Trainer bounded by neither max_steps nor max_epochs (a module that stops
    itself) gets no total and no time left."""

    def __init__(self, every_s: float = 15.0, clock: Callable[[], float] = time.monotonic):
        self.every_s = every_s
        self.clock = clock
        self.start = self.last = 0.0
        self.done = 0

    def begin(self) -> None:
        self.start = self.last = self.clock()
        self.done = 0

    def advance(self, trainer: pl.Trainer, what: str, unit: str, total: float) -> None:
        self.done += 1
        now = self.clock()
        if now - self.last < self.every_s or not trainer.is_global_zero:
            return
        self.last = now
        log.info(progress_line(what, unit, self.done, total, now - self.start))

    def on_train_start(self, trainer, pl_module):
        self.begin()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.advance(trainer, "training", "step", training_batches(trainer))

    def on_predict_start(self, trainer, pl_module):
        self.begin()

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self.advance(trainer, "encoding", "batch", sum(trainer.num_predict_batches))


def training_batches(trainer: pl.Trainer) -> float:
    """The training batches a Trainer runs at most: max_steps (of accumulate_grad_batches batches
    each) or max_epochs whole epochs, whichever ends first; inf where neither bounds it."""
    accumulate = trainer.accumulate_grad_batches
    steps = math.inf if trainer.max_steps == -1 else trainer.max_steps * accumulate
    epochs = (math.inf if trainer.max_epochs in (None, -1)
              else trainer.max_epochs * trainer.num_training_batches)
    return min(steps, epochs)


def progress_line(what: str, unit: str, done: int, total: float, elapsed: float) -> str:
    """`training: step 120/400, 31 s elapsed, about 72 s left`: the time left at the pace so far;
    without a total, none."""
    if not math.isfinite(total):
        return f"{what}: {unit} {done}, {elapsed:.0f} s elapsed"
    left = elapsed / done * (total - done)
    return f"{what}: {unit} {done}/{total:.0f}, {elapsed:.0f} s elapsed, about {left:.0f} s left"
