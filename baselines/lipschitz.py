"""Lipschitz forgetting (Kravets & Namboodiri, WACV 2025; PAPER.md §3 steps 2-3): make the model's embeddings of
the forget samples insensitive to input noise, updating only the top-k parameter tensors of each tower."""
import pytorch_lightning as pl
import torch

from ccup.errors import UserError
from ccup.metrics import accuracy
from ccup.task import UnlearnTask
from ccup.zeroshot import classify


def lipschitz_loss(model, images: torch.Tensor, captions: torch.Tensor, sigma: float, noise_samples: int,
                   low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """(||E_txt(t) - E_img(x~)|| + ||E_img(x) - E_img(x~)||) / (2 ||x - x~||), summed over the batch, averaged over
    noisy copies x~ = clamp(x + N(0, sigma^2)) and halved; unnormalised embeddings, E_img(x~) without gradient."""
    image, text = model.encode_image(images), model.encode_text(captions)  # (B, d), (B, d)
    total = 0.0
    for _ in range(noise_samples):
        noisy = torch.maximum(torch.minimum(images + sigma * torch.randn_like(images), high), low)
        with torch.no_grad():
            image_noisy = model.encode_image(noisy)
        distance = (noisy - images).flatten(1).norm(dim=1).clamp(min=1e-12)
        total = total + (((text - image_noisy).norm(dim=1) + (image - image_noisy).norm(dim=1)) / (2 * distance)).sum()
    return 0.5 * total / noise_samples


class LipschitzUnlearning(pl.LightningModule):
    """Each epoch: noise level sigmas[epoch]; the k_image (k_text) image (text) parameter tensors with the largest
    mean |gradient| are updated, k growing by k_growth per epoch; training stops once the accuracy on the forget
    samples is at most stop_accuracy (percent), or after `epochs`, and the weights with the lowest such accuracy are
    kept."""

    uses = ("forget",)

    def __init__(self, model: torch.nn.Module, task: UnlearnTask, trainable: list[str], lr: float, sigmas: list[float],
                 noise_samples: int, k_image: int, k_text: int, k_growth: int, stop_accuracy: float, epochs: int,
                 betas: tuple[float, float], eps: float, weight_decay: float):
        super().__init__()
        if not 0 <= stop_accuracy <= 100:
            raise UserError(f"method.module.stop_accuracy is a percentage, from 0 to 100, got {stop_accuracy}")
        self.automatic_optimization = False
        self.model, self.task, self.trainable, self.lr = model, task, trainable, lr
        self.sigmas, self.noise_samples = list(sigmas), noise_samples
        self.stop_accuracy, self.epochs = stop_accuracy, epochs
        self.k_image, self.k_text, self.k_growth = k_image, k_text, k_growth
        self.betas, self.eps, self.weight_decay = tuple(betas), eps, weight_decay
        cfg = model.visual.preprocess_cfg
        mean, std = torch.tensor(cfg["mean"]).view(1, 3, 1, 1), torch.tensor(cfg["std"]).view(1, 3, 1, 1)
        self.register_buffer("low", -mean / std)
        self.register_buffer("high", (1 - mean) / std)
        self.register_buffer("captions", task.tokenizer([f"A picture of {name}" for name in task.classnames]))
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(name in trainable)
        self.best = (float("inf"), None)  # (forget accuracy, weights)

    def on_train_epoch_start(self):
        self.model.eval()  # BatchNorm statistics frozen and no dropout, as in PAPER.md §3

    def training_step(self, batch, batch_idx):
        images, labels = batch["forget"]
        sigma = self.sigmas[min(self.current_epoch, len(self.sigmas) - 1)]
        loss = lipschitz_loss(self.model, images, self.captions[labels], sigma, self.noise_samples, self.low, self.high)
        optimizer = self.optimizers()
        optimizer.zero_grad()
        self.manual_backward(loss)
        selected = self.top_k()
        for name, parameter in self.model.named_parameters():
            if name not in selected:
                parameter.grad = None  # AdamW skips parameters without a gradient, weight decay included
        optimizer.step()
        self.log("unlearn/loss", loss, prog_bar=True)

    def top_k(self) -> set[str]:
        """Names of the top-k trainable tensors of each tower by mean |gradient|."""
        k_growth = self.k_growth * self.current_epoch
        grads = {name: p.grad.abs().mean().item() for name, p in self.model.named_parameters()
                 if name in self.trainable and p.grad is not None}
        image = sorted((n for n in grads if n.startswith("visual.")), key=grads.get, reverse=True)
        text = sorted((n for n in grads if not n.startswith("visual.")), key=grads.get, reverse=True)
        return set(image[:self.k_image + k_growth]) | set(text[:self.k_text + k_growth])

    def on_train_epoch_end(self):
        accuracy = forget_accuracy(self.model, self.task, self.trainer.train_dataloader["forget"])
        self.log("unlearn/forget_sample_acc", accuracy, prog_bar=True)
        if accuracy < self.best[0]:
            weights = {n: p.detach().clone() for n, p in self.model.named_parameters() if n in self.trainable}
            self.best = (accuracy, weights)
        if accuracy <= self.stop_accuracy or self.current_epoch + 1 >= self.epochs:
            self.trainer.should_stop = True

    def on_train_end(self):
        with torch.no_grad():
            for name, parameter in self.model.named_parameters():
                if name in self.best[1]:
                    parameter.copy_(self.best[1][name])

    def configure_optimizers(self):
        parameters = [p for name, p in self.model.named_parameters() if name in self.trainable]
        return torch.optim.AdamW(parameters, lr=self.lr, betas=self.betas, eps=self.eps, weight_decay=self.weight_decay)

    @property
    def stats(self) -> dict:
        return {"unlearn/steps": self.global_step, "unlearn/forget_sample_acc": self.best[0]}


@torch.no_grad()
def forget_accuracy(model, task: UnlearnTask, loader) -> float:
    """Zero-shot accuracy in percent of `model`, scored with its own text tower, on the forget samples."""
    classifier = task.classifier_of(model)
    predictions, labels = zip(*[(classify(model, x.to(classifier.device), classifier), y) for x, y in loader],
                              strict=True)
    return accuracy(torch.cat(predictions), torch.cat(labels))
