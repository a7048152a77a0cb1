"""SSD as a method: Foster, Schoepf & Brintrup, "Fast Machine Unlearning Without Retraining Through
Selective Synaptic Dampening" (AAAI 2024, arXiv:2308.07707), read from the authors' code
(github.com/if-loops/selective-synaptic-dampening, src/ssd.py; conf/method/ssd.yaml names the file
and line of each setting).

No training. The diagonal Fisher importance of every parameter entry, the mean over batches of the
squared gradient of the classification loss (CLIP's zero-shot cross-entropy, as the fine-tuning
baselines'), is computed on the forget samples ([]_f) and on all training samples, retain then
forget ([]_D); every entry with []_f > selection_weighting * []_D is multiplied by
min(dampening_constant * []_D / []_f, 1), the others stay. alpha interpolates the weights as for the
fine-tuning baselines, theta_alpha = lerp(theta_0, theta_ssd, alpha). The dampened weights are
computed once per (original weights, settings, samples, task) and cached under `cache_dir/unlearned`
as the baselines' are: the importances take a forward and a backward pass per sample, 2,816 of them
for the embedded model with samples=real (20 to 35 s on two CPU cores shared with other jobs), and
an alpha sweep needs them once.

As the authors' code does, the importances are of batch gradients (their `calc_importance`: the
squared gradient of each batch's mean loss, averaged over batches), and the batches of D are not
shuffled: retain images first, then the forget images. Where the retain images fill whole batches
(samples=real: 256 per class, 64 per batch), D's last batches are the forget set's own, and []_D >=
[]_f * (forget batches / all batches) for every entry: with the authors' ResNet selection_weighting
10 and a forget set of a tenth of D (one class of ten, as many samples of each), no entry can pass
the selection. Their ViT value, 5, lets the entries through whose forget importance is more than
half the bound (`unlearn/dampened` counts the entries dampened). The default takes their value for
the tower at hand (`authors_selection_weighting`), as their code takes it for the model it runs.
"""
import copy
import time
from collections.abc import Callable, Iterable

import torch
from torch.utils.data import ConcatDataset, DataLoader

from baselines.edit import WeightEdit, matching
from baselines.gradients import mean_gradients
from ccup.errors import UserError
from ccup.loop import classification_loss
from ccup.task import UnlearnTask

USES = ("forget", "retain")  # []_f needs the forget samples, []_D all of them


def importances(loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                parameters: dict[str, torch.Tensor],
                batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """SSD's diagonal Fisher importance of each of `parameters`: the mean over `batches` of the
    squared gradient of `loss(inputs, labels)`."""
    return mean_gradients(loss, parameters, batches, power=2)


def authors_selection_weighting(visual: torch.nn.Module) -> float:
    """The authors' selection_weighting for an image tower, 10 times their model-size scaler
    (src/forget_full_class_main.py l.161-165, l.177): 1 for their ResNet18, so 10 for a ResNet;
    0.5 for their ViT, so 5 for a ViT and for any tower that is no ResNet."""
    from open_clip.modified_resnet import ModifiedResNet

    return 10.0 if isinstance(visual, ModifiedResNet) else 5.0


def dampening(forget: torch.Tensor, full: torch.Tensor, selection_weighting: float,
              dampening_constant: float) -> torch.Tensor:
    """SSD's factor for each parameter entry, from its forget importance []_f and its importance on
    all the training samples []_D: min(dampening_constant * []_D / []_f, 1) where []_f >
    selection_weighting * []_D, else 1 (kept)."""
    # implies forget > 0: the ratio below is finite where it is used
    selected = forget > selection_weighting * full
    ratio = dampening_constant * full / torch.where(selected, forget, torch.ones_like(forget))
    return torch.where(selected, ratio.clamp(max=1), torch.ones_like(forget))


class SSD(WeightEdit):
    """Selective Synaptic Dampening of the parameters matching `params` (glob patterns over
    parameter names), with importances from the samples that `samples` builds, `batch_size` images
    per batch (see the module's docstring)."""

    def __init__(self, alpha: float, samples: Callable, params: list[str],
                 selection_weighting: float | None, dampening_constant: float, batch_size: int,
                 cache_dir: str):
        super().__init__(alpha, cache_dir)
        if selection_weighting is not None and not (
                isinstance(selection_weighting, int | float)
                and 0 <= selection_weighting < float("inf")):
            raise UserError("method.selection_weighting must be a finite number >= 0 (null: the "
                            f"authors' value for the tower), got {selection_weighting}")
        if not (isinstance(dampening_constant, int | float)
                and 0 <= dampening_constant < float("inf")):
            raise UserError("method.dampening_constant must be a finite number >= 0, got "
                            f"{dampening_constant}")
        if not batch_size >= 1:
            raise UserError(f"method.batch_size must be at least 1, got {batch_size}")
        self.samples = samples
        self.params = list(params)
        self.selection_weighting = selection_weighting
        self.dampening_constant = dampening_constant
        self.batch_size = batch_size

    def edits(self, model: torch.nn.Module) -> list[str]:
        """Names of the parameters this method may change."""
        return matching(model, self.params)

    def compute(self, model: torch.nn.Module, task: UnlearnTask) -> dict:
        """The dampened weights (alpha = 1) of the parameters it edits, with the cost of computing
        them."""
        start = time.perf_counter()
        names = self.edits(model)
        if not names:
            raise UserError(f"params {self.params} match no parameter of the model")
        data, sample_stats = self.samples(model, task, USES)
        # gradients are taken on a copy: the given model's grad flags stay as they are
        copied = copy.deepcopy(model)
        copied.eval()
        for name, parameter in copied.named_parameters():
            # no gradient is computed for what SSD does not edit
            parameter.requires_grad_(name in names)
        parameters = dict(copied.named_parameters())
        edited = {name: parameters[name] for name in names}
        device = task.classifier.device

        def loss(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            return classification_loss(copied, task.classifier, images.to(device),
                                       labels.to(device))

        def batches(dataset):
            return DataLoader(dataset, batch_size=self.batch_size, shuffle=False)

        forget = importances(loss, edited, batches(data["forget"]))
        # D as the authors' full_train_dl: retain then forget, unshuffled (see the module's
        # docstring)
        full = importances(loss, edited, batches(ConcatDataset([data["retain"], data["forget"]])))
        weighting = (self.selection_weighting if self.selection_weighting is not None
                     else authors_selection_weighting(model.visual))
        factors = {name: dampening(forget[name], full[name], weighting, self.dampening_constant)
                   for name in names}
        weights = {name: edited[name].detach() * factors[name] for name in names}
        stats = {**sample_stats,
                 "unlearn/dampened": sum(int((f < 1).sum()) for f in factors.values()),
                 "unlearn/selection_weighting": weighting,
                 "time/unlearn_s": time.perf_counter() - start}
        return {"weights": weights, "stats": stats}

    def settings(self) -> dict:
        """Every setting but alpha (the samples' own `key`)."""
        return {"method": "ssd", "samples": self.samples, "params": self.params,
                "selection_weighting": self.selection_weighting,
                "dampening_constant": self.dampening_constant, "batch_size": self.batch_size}
