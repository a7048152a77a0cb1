"""The Lightning loop every fine-tuning method shares (the baselines, and relearning in ccup.evals):
minimise a loss over the parameters the method declares.

A loss takes the model, the (d, C) zero-shot classifier and a batch {"forget": (x, y), "retain": (x,
y)} holding the sample sets it `uses`; labels index all C classes, the forgotten ones included. A
loss declared `with_teacher` also takes, as keywords, `teacher` (a frozen copy of the model as
training found it), `step` (the optimizer steps taken so far) and `steps` (the trainer's max_steps).
"""
import copy
import functools
from collections.abc import Callable, Sequence

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from ccup.task import UnlearnTask
from ccup.zeroshot import zero_shot_logits


def uses(*sample_sets: str):
    """Declare which sample sets ("forget", "retain") a loss reads, so only those are built."""
    def mark(loss):
        loss.uses = sample_sets
        return loss
    return mark


def classification_loss(model, classifier: torch.Tensor, images: torch.Tensor,
                        labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of logit_scale * cos(image, class text embeddings): CLIP's zero-shot
    classification loss."""
    return F.cross_entropy(zero_shot_logits(model, images, classifier), labels)


def with_teacher(loss):
    """Declare that a loss takes `teacher`, `step` and `steps` (module docstring), so the loop
    builds a teacher."""
    loss.needs_teacher = True
    return loss


def unwrap(loss: Callable) -> Callable:
    """The loss function inside any functools.partial around it."""
    while isinstance(loss, functools.partial):
        loss = loss.func
    return loss


def sample_sets(loss: Callable) -> tuple[str, ...]:
    """The sample sets a loss reads (see `uses`), through any functools.partial around it."""
    return unwrap(loss).uses


def needs_teacher(loss: Callable) -> bool:
    """Whether a loss is declared `with_teacher`, through any functools.partial around it."""
    return getattr(unwrap(loss), "needs_teacher", False)


def frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of `model` in eval mode whose parameters take no gradient."""
    teacher = copy.deepcopy(model).eval()
    teacher.requires_grad_(False)
    return teacher


class UnlearningModule(pl.LightningModule):
    """`optimizer` (a torch optimizer taking the parameters and `lr`; AdamW without weight decay
    where None) on the `trainable` parameters of `model`; the rest stay frozen. The learning rate is
    multiplied by `lr_decay` at each of `lr_milestones`, fractions of the trainer's max_steps (a
    method's schedule in epochs, mapped onto steps). With `saliency`, only that fraction of the
    trainable weights, those with the largest forget-loss gradient, may move (SalUn's weight mask).
    A loss declared `with_teacher` gets `teacher`, a frozen copy of `model` as given, built for such
    a loss only."""

    def __init__(self, model: torch.nn.Module, task: UnlearnTask, trainable: list[str], lr: float,
                 loss: Callable, saliency: float | None = None, optimizer: Callable | None = None,
                 lr_milestones: Sequence[float] = (), lr_decay: float = 0.1):
        super().__init__()
        self.model = model
        self.loss = loss
        self.trainable = trainable
        self.lr = lr
        self.saliency = saliency
        self.optimizer = optimizer or functools.partial(torch.optim.AdamW, weight_decay=0.0)
        self.lr_milestones, self.lr_decay = list(lr_milestones), lr_decay
        # (d, C): the text tower is not trained here
        self.register_buffer("classifier", task.classifier)
        self.uses = sample_sets(loss)
        self.masks: dict[str, torch.Tensor] = {}
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(name in trainable)
        self.teacher = frozen_copy(model) if needs_teacher(loss) else None

    def training_step(self, batch, batch_idx):
        if self.teacher is None:
            loss = self.loss(self.model, self.classifier, batch)
        else:
            loss = self.loss(self.model, self.classifier, batch, teacher=self.teacher,
                             step=self.global_step, steps=self.trainer.max_steps)
        self.log("unlearn/loss", loss, prog_bar=True)
        if "forget" in batch and self.logs_now():
            accuracy = batch_accuracy(self.model, self.classifier, *batch["forget"])
            self.log("unlearn/forget_sample_acc", accuracy)
        return loss

    def logs_now(self) -> bool:
        """Whether the Trainer hands this step's values to its loggers (every `log_every_n_steps`
        steps): the curves beside the loss are computed for those steps alone."""
        every = self.trainer.log_every_n_steps
        return bool(self.trainer.loggers) and (self.global_step + 1) % every == 0

    def on_train_epoch_start(self):
        self.model.eval()  # BatchNorm statistics frozen and no dropout (docs/method.md#baselines)
        if self.teacher is not None:
            self.teacher.eval()

    def on_train_start(self):
        if self.saliency is not None:
            forget = self.trainer.train_dataloader["forget"]
            self.masks = saliency_masks(self.model, self.classifier, forget, self.trainable,
                                        self.saliency)

    def on_after_backward(self):
        for name, parameter in self.model.named_parameters():
            if name in self.masks:
                parameter.grad *= self.masks[name]

    def configure_optimizers(self):
        parameters = [p for name, p in self.model.named_parameters() if name in self.trainable]
        optimizer = self.optimizer(parameters, lr=self.lr)
        if not self.lr_milestones:
            return optimizer
        steps = [round(fraction * self.trainer.max_steps) for fraction in self.lr_milestones]
        schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, steps, gamma=self.lr_decay)
        return [optimizer], [{"scheduler": schedule, "interval": "step"}]

    @property
    def stats(self) -> dict:
        return {"unlearn/steps": self.global_step}


@torch.no_grad()
def batch_accuracy(model, classifier: torch.Tensor, images: torch.Tensor,
                   labels: torch.Tensor) -> torch.Tensor:
    """Zero-shot accuracy in percent of `model` on (B, ...) images and (B,) labels over the (d, C)
    classifier: one forward pass, without gradient."""
    predictions = zero_shot_logits(model, images, classifier).argmax(dim=1)
    return (predictions == labels).float().mean() * 100


def saliency_masks(model, classifier, loader, trainable: list[str],
                   fraction: float) -> dict[str, torch.Tensor]:
    """SalUn: 0/1 masks keeping the `fraction` of trainable weights with the largest |gradient| of
    the forget loss, thresholded over all trainable weights together."""
    model.zero_grad()
    for images, labels in loader:
        classification_loss(model, classifier, images.to(classifier.device),
                            labels.to(classifier.device)).backward()
    grads = {name: p.grad.abs() for name, p in model.named_parameters() if name in trainable}
    flat = torch.cat([g.flatten() for g in grads.values()])
    threshold = flat.kthvalue(max(1, int(round((1 - fraction) * flat.numel())))).values
    model.zero_grad()
    return {name: (g >= threshold).to(g.dtype) for name, g in grads.items()}
