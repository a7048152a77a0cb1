"""Lipschitz forgetting, from Kravets & Namboodiri, "Zero-Shot Class Unlearning in CLIP with
Synthetic Samples" (WACV 2025, arXiv:2407.07485), run the way the authors' train_forget.py runs it
(github.com/akres001/Zero-Shot-Class-Unlearning-in-CLIP-with-Synthetic-Samples). It makes the
model's embeddings of the forget samples insensitive to input noise, and each step updates only the
top-k parameter tensors of each tower.

The schedule moves through stages. Stage i uses noise level sigmas[i] and updates the k_image[i]
image tensors and the k_text[i] text tensors with the largest mean |gradient|. After each epoch, the
module scores the forget samples:
- if their accuracy went down (it starts at 100%), it keeps the epoch;
- otherwise it puts back the weights and the Adam state from the start of that epoch and moves to
  the next stage.
Training ends after the last stage, after `epochs` epochs, or right after the first optimizer step
that leaves the forget samples at most stop_accuracy percent right. Each step sums the gradients of
min(accumulate, batches per epoch) batches.

Where this still differs from their code, and why:
- Data and models are the suite's: its datasets, sample regimes (samples=real or synthetic) and
  models. With real images they train on the forget class's whole train split, with random resized
  crops and flips; samples=real here draws per_class images and does not augment them. The k lists
  are the ones they use for ViT-B/16 (the default model is a ViT). On the 28-px tiny model (56 image
  tensors, 24 text
  transformer tensors), these values update more of each tower: the whole text transformer. For RN50
  they use other k lists (conf/method/lipschitz.yaml gives them) and also leave out some RN50
  tensors (LayerNorms, attention pooling, downsample and conv layers; frozen_params.py FREEZE_RN),
  which this module has no list for.
- The forget-sample accuracy is scored with the task's prompt templates, the ones every method here
  is scored with. They use one template per dataset ("a photo of a {}.").
- They run the model in train() mode with BatchNorm frozen. Here it runs in eval() mode. For CLIP's
  towers, which have no dropout, this computes the same thing.
- Their loop checks the stopping rule after every batch. Here it is checked after every optimizer
  step. Between steps the weights do not change, so the result is the same.
"""
import copy

import pytorch_lightning as pl
import torch

from ccup.errors import UserError
from ccup.task import UnlearnTask
from ccup.zeroshot import zero_shot_accuracy


def lipschitz_loss(model, images: torch.Tensor, captions: torch.Tensor, sigma: float,
                   noise_samples: int) -> torch.Tensor:
    """(||E_txt(t) - E_img(x~)|| + ||E_img(x) - E_img(x~)||) / (2 ||x - x~||), summed over the
    batch, averaged over noisy copies x~ = x + N(0, sigma^2) and halved (clip_forget_losses.py
    lipschitz_loss_joint). The noise is clamped to the batch's own min and max (clip_forget_utils.py
    AddGaussianNoise). Embeddings are unnormalised, and E_img(x~) is computed without gradient."""
    image, text = model.encode_image(images), model.encode_text(captions)  # (B, d), (B, d)
    low, high = images.min(), images.max()
    total = 0.0
    for _ in range(noise_samples):
        noisy = (images + sigma * torch.randn_like(images)).clamp(low, high)
        with torch.no_grad():
            image_noisy = model.encode_image(noisy)
        distance = (noisy - images).flatten(1).norm(dim=1).clamp(min=1e-12)
        total = total + (((text - image_noisy).norm(dim=1)
                          + (image - image_noisy).norm(dim=1)) / (2 * distance)).sum()
    return 0.5 * total / noise_samples


class LipschitzUnlearning(pl.LightningModule):
    """The authors' schedule (see the module docstring) on the shared Lightning loop, with manual
    optimisation."""

    uses = ("forget",)

    def __init__(self, model: torch.nn.Module, task: UnlearnTask, trainable: list[str], lr: float,
                 sigmas: list[float], k_image: list[int], k_text: list[int], noise_samples: int,
                 stop_accuracy: float, epochs: int, accumulate: int, betas: tuple[float, float],
                 eps: float, weight_decay: float):
        super().__init__()
        if not 0 <= stop_accuracy <= 100:
            raise UserError("method.module.stop_accuracy is a percentage, from 0 to 100, got "
                            f"{stop_accuracy}")
        if not len(sigmas) == len(k_image) == len(k_text) >= 1:
            raise UserError("method.module.sigmas, k_image and k_text are one schedule, one entry "
                            "per stage: give them the same length (at least 1), got "
                            f"{len(sigmas)}, {len(k_image)}, {len(k_text)}")
        self.automatic_optimization = False
        self.model = model
        self.task = task
        self.trainable = trainable
        self.lr = lr
        self.sigmas, self.k_image, self.k_text = list(sigmas), list(k_image), list(k_text)
        self.noise_samples = noise_samples
        self.stop_accuracy = stop_accuracy
        self.epochs = epochs
        self.accumulate = accumulate
        self.betas, self.eps, self.weight_decay = tuple(betas), eps, weight_decay
        self.register_buffer("captions",
                             task.tokenizer([f"A picture of {name}" for name in task.classnames]))
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(name in trainable)
        self.stage = 0  # index into sigmas, k_image, k_text
        # their best_train_acc starts at 1 (100%), not at the model's own accuracy
        self.best_accuracy = 100.0
        self.start = None  # (weights, optimizer state) as the epoch began: what a rollback restores
        # the last rolled-back epoch's weights: kept if no epoch ever improves, as theirs does
        self.rejected = None

    def on_fit_start(self):
        if self.trainer.max_epochs == -1:  # bounded by max_steps alone: the Trainer learns the
            self.trainer.fit_loop.max_epochs = self.epochs  # epochs bound too, for progress lines

    def on_train_epoch_start(self):
        self.model.eval()  # BatchNorm statistics frozen and no dropout
        self.start = (self.weights(), copy.deepcopy(self.optimizer.state_dict()))

    def training_step(self, batch, batch_idx):
        images, labels = batch["forget"]
        batches = self.trainer.num_training_batches
        accumulate = min(self.accumulate, batches)
        loss = lipschitz_loss(self.model, images, self.captions[labels], self.sigmas[self.stage],
                              self.noise_samples)
        self.manual_backward(loss / accumulate)
        selected = self.top_k()
        for name, parameter in self.model.named_parameters():
            if name not in selected:
                # not stepped, not decayed, and its accumulated gradient dropped, as theirs
                parameter.grad = None
        self.log("unlearn/loss", loss, prog_bar=True)
        if (batch_idx + 1) % accumulate == 0 or batch_idx + 1 == batches:
            optimizer = self.optimizers()
            optimizer.step()
            optimizer.zero_grad()
            accuracy = self.forget_accuracy()
            self.log("unlearn/forget_sample_acc", accuracy, prog_bar=True)
            if accuracy <= self.stop_accuracy:
                # Lightning ends the epoch here; on_train_epoch_end keeps it
                self.trainer.should_stop = True

    def top_k(self) -> set[str]:
        """Names of the k_image image and k_text text tensors of this stage with the largest mean
        |gradient|."""
        grads = {name: p.grad.abs().mean().item() for name, p in self.model.named_parameters()
                 if name in self.trainable and p.grad is not None}
        image = sorted((n for n in grads if n.startswith("visual.")), key=grads.get, reverse=True)
        text = sorted((n for n in grads if not n.startswith("visual.")), key=grads.get,
                      reverse=True)
        return set(image[:self.k_image[self.stage]]) | set(text[:self.k_text[self.stage]])

    def on_train_epoch_end(self):
        accuracy = self.forget_accuracy()
        if accuracy < self.best_accuracy:
            self.best_accuracy = accuracy
        else:  # the epoch is undone, weights and Adam state, and the next stage begins
            self.rejected = self.weights()
            self.load(self.start[0])
            self.optimizer.load_state_dict(self.start[1])
            self.stage += 1
        if (accuracy <= self.stop_accuracy or self.stage == len(self.sigmas)
                or self.current_epoch + 1 >= self.epochs):
            self.trainer.should_stop = True

    def on_train_end(self):
        if self.best_accuracy == 100.0 and self.rejected is not None:  # no epoch improved
            self.load(self.rejected)

    def forget_accuracy(self) -> float:
        return forget_accuracy(self.model, self.task, self.trainer.train_dataloader["forget"])

    def weights(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().clone() for n, p in self.model.named_parameters()
                if n in self.trainable}

    @torch.no_grad()
    def load(self, weights: dict[str, torch.Tensor]) -> None:
        for name, parameter in self.model.named_parameters():
            if name in weights:
                parameter.copy_(weights[name])

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self.trainer.optimizers[0]

    def configure_optimizers(self):
        parameters = [p for name, p in self.model.named_parameters() if name in self.trainable]
        return torch.optim.Adam(parameters, lr=self.lr, betas=self.betas, eps=self.eps,
                                weight_decay=self.weight_decay)

    @property
    def stats(self) -> dict:
        return {"unlearn/steps": self.global_step, "unlearn/forget_sample_acc": self.best_accuracy}


def forget_accuracy(model, task: UnlearnTask, loader) -> float:
    """Zero-shot accuracy in percent of `model`, scored with its own text tower, on the forget
    samples: one pass of the training's loader, in its batches (its shuffle draws from the job's
    random stream, as each pass of it does)."""
    images, labels = (torch.cat(part) for part in zip(*loader, strict=True))
    return zero_shot_accuracy(model, images, labels, task.classifier_of(model), loader.batch_size)
