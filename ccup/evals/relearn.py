"""Relearning: how quickly a few forget images teach the class back. Forgetting that a handful of
fine-tuning steps undo hid the class rather than removed it (the relearning attacks of the LLM
unlearning literature)."""
import copy
import dataclasses
import fnmatch
from collections.abc import Callable, Sequence

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.combined_loader import CombinedLoader
from torch.utils.data import DataLoader, TensorDataset

from ccup.datasets import materialize, per_class
from ccup.errors import UserError
from ccup.features import FeaturesOf
from ccup.loop import UnlearningModule, classification_loss, uses
from ccup.metrics import accuracy
from ccup.task import UnlearnTask
from ccup.trainers import callbacks, check_trainer
from ccup.zeroshot import predict, zero_shot_accuracy


class Relearning:
    """`relearn/steps_to_half`: AdamW steps (learning rate `lr`, the parameters matching `params`)
    of cross-entropy on `shots` train images of each forget class (a fixed draw with `seed`, one
    full batch per step) until the forget accuracy on `test_per_class` test images of each forget
    class (a fixed draw; all with None) is at least half the original model's on the same images; 0
    when the unlearned model is there already, and `max_steps` with `relearn/reached` = 0 when it
    never gets there (the count is censored at the cap). `relearn/forget_acc` is the forget accuracy
    (percent) where it stopped. The original model's own count is 0 by construction: compare methods
    with each other, and with the cap."""

    columns = ("relearn/steps_to_half", "relearn/reached")

    def __init__(self, shots: int, max_steps: int, lr: float, params: Sequence[str],
                 test_per_class: int | None, seed: int, trainer: Callable[..., pl.Trainer]):
        if not (shots >= 1 and max_steps >= 1 and lr > 0):
            raise UserError("eval.relearn needs shots >= 1, max_steps >= 1 and lr > 0, got "
                            f"{shots}, {max_steps}, {lr}")
        check_trainer(trainer, "trainer")
        self.shots, self.max_steps, self.lr, self.params = shots, max_steps, lr, list(params)
        self.test_per_class = test_per_class
        self.seed = seed
        self.trainer = trainer

    def __call__(self, features: FeaturesOf, original: torch.nn.Module, unlearned: torch.nn.Module,
                 task: UnlearnTask, test_set) -> dict:
        if task.load_train is None:
            raise UserError("eval=relearn fine-tunes on forget images of the dataset's train "
                            "split, which this job has none of")
        forget_test = per_class(test_set, task.forget_idx, self.test_per_class, self.seed)
        features_before, labels = features(original, forget_test)
        target = accuracy(predict(original, features_before, task.classifier_of(original)),
                          labels) / 2
        # trained here; the unlearned model stays as the job scores it
        model = copy.deepcopy(unlearned)
        trainable = [name for name, _ in model.named_parameters()
                     if any(fnmatch.fnmatch(name, p) for p in self.params)]
        if not trainable:
            raise UserError(f"eval.relearn.params {self.params} match no parameter of the model")
        shots = materialize(per_class(task.load_train(), task.forget_idx, self.shots, self.seed))
        steps, reached, forget_acc = relearn(
            model, dataclasses.replace(task, classifier=task.classifier_of(unlearned)), shots,
            materialize(forget_test), target, trainable, self.lr, self.max_steps, self.trainer,
            self.seed)
        return {"relearn/steps_to_half": steps, "relearn/reached": int(reached),
                "relearn/forget_acc": forget_acc}


@uses("forget")
def relearn_loss(model, classifier, batch):
    """Descent on forget images with their true labels: the class taught back."""
    return classification_loss(model, classifier, *batch["forget"])


def relearn(model: torch.nn.Module, task: UnlearnTask, shots: TensorDataset, test: TensorDataset,
            target: float, trainable: list[str], lr: float, max_steps: int,
            trainer: Callable[..., pl.Trainer], seed: int) -> tuple[int, bool, float]:
    """(steps taken, whether forget accuracy on `test` reached `target` percent, the accuracy where
    it stopped) for training `model` in place on `shots`, the zero-shot classifier being
    `task.classifier`, checked after every step and stopped at `target` or after `max_steps`."""
    images, labels = test.tensors
    stop = StopAt(images, labels, target)
    stop.accuracy = zero_shot_accuracy(model, images, labels, task.classifier)
    if stop.accuracy >= target:
        return 0, True, stop.accuracy
    # the same seed gives the same count, whatever ran before in the job
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        module = UnlearningModule(model=model, task=task, trainable=trainable, lr=lr,
                                  loss=relearn_loss)
        loader = CombinedLoader({"forget": DataLoader(shots, batch_size=len(shots))},
                                mode="max_size_cycle")
        trainer(max_steps=max_steps, callbacks=callbacks(stop),
                enable_progress_bar=False).fit(module, loader)
    return stop.steps, stop.accuracy >= target, stop.accuracy


class StopAt(pl.Callback):
    """Counts optimizer steps and scores forget accuracy after each one; stops training once it
    reaches `target`."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, target: float):
        self.images = images
        self.labels = labels
        self.target = target
        self.steps, self.accuracy = 0, float("nan")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.steps += 1
        self.accuracy = zero_shot_accuracy(pl_module.model, self.images, self.labels,
                                           pl_module.classifier)
        if self.accuracy >= self.target:
            trainer.should_stop = True

