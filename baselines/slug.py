"""SLUG as a method: Cai et al., "Targeted Unlearning with Single Layer Unlearning Gradient"
(arXiv:2407.11867), read from the authors' code (github.com/CSIPlab/SLUG at 59629a2:
src/clip/unlearn/calc_grad.py, src/clip/unlearn_slug.py, notebooks/experiment_vision_language.ipynb;
conf/method/slug.yaml names where each setting comes from).

One gradient, one layer, one step; no training.

1. Gradients, once, each the mean over batches of a batch's gradient (their calc_grad):
   - G_f of the forget loss, the mean cosine between a forget image's embedding and its class's text
     embedding. Their loss is CosineEmbeddingLoss on image-caption pairs, negated; here a class's
     caption is its zero-shot class embedding, the template ensemble.
   - G_r of the retain loss, CLIP's zero-shot cross-entropy on the retain images (their retain loss
     is CLIP's contrastive loss on captioned pairs; with class captions the image-to-text half of it
     is this cross-entropy).
2. The candidate layers of the chosen tower: every parameter that is no bias, logit scale,
   positional or token embedding (their filter). Each gets its importance ||G_f|| / ||theta|| and
   its gradient alignment |cos(G_f, G_r)|.
3. The layer: on the Pareto front of low alignment and high importance, the deepest one. Their
   notebook takes the deepest text-tower block on the front; within that block, the front's most
   important member (the authors take the front's most aligned, the same one: along a front,
   alignment rises with importance). An MLP layer moves with its twin (c_fc with c_proj), as theirs
   does. With no front member inside a block, the front's most important one.
4. The step theta_l <- theta_l - lam G_f,l, lam by their search: start at ||theta_l|| / ||G_f,l|| /
   10, double while the forget samples' zero-shot accuracy stays above `forget_target`, then bisect,
   10 evaluations in all. Their loop keeps whatever it tried last; this keeps the smallest step that
   reached the target (the least damage for the forgetting asked), or, if none did, the smallest of
   the steps that forgot most. Their target is top-5 accuracy 0 over 100 names; the suite scores
   top-1, and top-5 of ten classes is half the classes.

alpha interpolates the weights as for the fine-tuning baselines, theta_alpha = lerp(theta_0,
theta_slug, alpha); the unlearned weights are computed once per setting and cached under
`cache_dir/unlearned`.
"""
import copy
import math
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from baselines.edit import WeightEdit
from baselines.gradients import mean_gradients
from ccup.datasets import materialize
from ccup.errors import UserError
from ccup.loop import classification_loss
from ccup.task import UnlearnTask
from ccup.zeroshot import zero_shot_accuracy

USES = ("forget", "retain")
# the authors' filter on parameter names
NOT_LAYERS = ("bias", "logit_scale", "position", "embedding")
TOWERS = ("text", "image")


def candidates(model: torch.nn.Module, tower: str) -> list[str]:
    """The layers SLUG may pick in `tower`: parameters with a dimension that are none of
    NOT_LAYERS."""
    return [name for name, parameter in model.named_parameters()
            if parameter.ndim > 0 and not any(part in name for part in NOT_LAYERS)
            and name.startswith("visual.") == (tower == "image")]


def pareto_front(alignment: dict[str, float], importance: dict[str, float]) -> list[str]:
    """The names no other name beats on both counts: lower alignment and higher importance (the
    authors' test, strict in both)."""
    return [name for name in alignment
            if not any(alignment[other] < alignment[name] and importance[other] > importance[name]
                       for other in alignment)]


def block(name: str, order: list[str]) -> int:
    """How deep the block holding parameter `name` lies: where its first parameter comes in `order`
    (open_clip registers blocks input first); -1 outside numbered blocks (a final projection or
    norm)."""
    parts = name.split(".")
    numbered = [i for i, part in enumerate(parts) if part.isdigit()]
    if not numbered:
        return -1
    prefix = ".".join(parts[:numbered[0] + 1]) + "."
    return next(i for i, other in enumerate(order) if other.startswith(prefix))


def chosen_layer(front: list[str], importance: dict[str, float], order: list[str]) -> str:
    """The deepest block's most important member of the front (a front with no block member: its
    most important)."""
    return max(front, key=lambda name: (block(name, order), importance[name]))


def select_layer(forget_grads: dict[str, torch.Tensor], retain_grads: dict[str, torch.Tensor],
                 weights: dict[str, torch.Tensor]) -> tuple[str, list[str]]:
    """SLUG's layer among `weights` (named in the model's order) and the Pareto front it lies on,
    from each layer's importance ||G_f|| / ||theta|| and alignment |cos(G_f, G_r)|; layers the
    forget loss does not reach are none."""
    importance = {name: float(forget_grads[name].norm() / weights[name].norm()) for name in weights
                  if forget_grads[name].norm() > 0}
    if not importance:
        raise UserError("the forget loss does not reach the layers SLUG may edit")
    alignment = {name: abs(float(F.cosine_similarity(forget_grads[name].flatten(),
                                                     retain_grads[name].flatten(), dim=0,
                                                     eps=1e-6))) for name in importance}
    front = pareto_front(alignment, importance)
    return chosen_layer(front, importance, list(weights)), front


def layer_group(name: str, names: list[str]) -> list[str]:
    """The parameters that move with `name`: an MLP's two weights together, as the authors update
    fc1 with fc2."""
    if ".mlp." not in name:
        return [name]
    prefix = name.split(".mlp.")[0] + ".mlp."
    return [other for other in names if other.startswith(prefix)]


def step_search(forget_accuracy: Callable[[float], float], start: float, evaluations: int,
                target: float) -> tuple[float, list[tuple[float, float]]]:
    """The authors' step search: double the step from `start` while the forget accuracy stays above
    `target`, then bisect between the last step above and the first at or below; `evaluations`
    accuracies in all. Returns the smallest step that reached the target (none did: the smallest of
    those with the lowest accuracy) and every (step, accuracy) tried."""
    low, high, step = 0.0, math.inf, start
    tried = []
    for _ in range(evaluations):
        left = forget_accuracy(step)
        tried.append((step, left))
        if left <= target:
            high = step
        else:
            low = step
        step = 2 * step if high == math.inf else (low + high) / 2
    step, _ = min(tried, key=lambda pair: (max(pair[1], target), pair[0]))
    return step, tried


def text_classifier(model: torch.nn.Module, task: UnlearnTask) -> torch.Tensor:
    """(d, C) zero-shot classifier of `model`'s text tower for the task's classes and templates, as
    `ccup.zeroshot.class_embeddings` computes it, but differentiable: gradients reach the text
    tower."""
    prompts = task.tokenizer([t.format(c) for c in task.classnames for t in task.templates])
    texts = F.normalize(model.encode_text(prompts.to(task.classifier.device)), dim=-1)
    return F.normalize(texts.view(len(task.classnames), len(task.templates), -1).mean(dim=1),
                       dim=-1).T


def class_cosine(model, classifier: torch.Tensor, images: torch.Tensor,
                 labels: torch.Tensor) -> torch.Tensor:
    """The mean cosine between each image's embedding and its class's (column of the (d, C)
    classifier): SLUG's forget loss, the authors' CosineEmbeddingLoss of image-caption pairs,
    negated, up to a constant."""
    return (model.encode_image(images, normalize=True) * classifier[:, labels].T).sum(dim=-1).mean()


class SLUG(WeightEdit):
    """Single Layer Unlearning Gradient on the `tower` ("text" or "image"; see the module's
    docstring), with gradients from the samples that `samples` builds, `batch_size` images per
    batch."""

    def __init__(self, alpha: float, samples: Callable, tower: str, forget_target: float,
                 evaluations: int, start_divisor: float, batch_size: int, cache_dir: str):
        super().__init__(alpha, cache_dir)
        if tower not in TOWERS:
            raise UserError(f"method.tower is one of {list(TOWERS)}, got {tower!r}")
        if not (isinstance(forget_target, int | float) and 0 <= forget_target < 100):
            raise UserError("method.forget_target (the forget samples' accuracy to reach, in %) "
                            f"lies in [0, 100), got {forget_target}")
        if not (isinstance(evaluations, int) and evaluations >= 1 and batch_size >= 1):
            raise UserError("method.evaluations and method.batch_size must be at least 1, got "
                            f"{evaluations} and {batch_size}")
        if not (isinstance(start_divisor, int | float) and 0 < start_divisor < float("inf")):
            raise UserError("method.start_divisor must be a positive finite number, got "
                            f"{start_divisor}")
        self.samples = samples
        self.tower = tower
        self.forget_target = forget_target
        self.evaluations = evaluations
        self.start_divisor = start_divisor
        self.batch_size = batch_size

    def edits(self, model: torch.nn.Module) -> list[str]:
        """Names of the parameters this method may change: its tower's candidate layers (it changes
        one or two)."""
        return candidates(model, self.tower)

    def compute(self, model: torch.nn.Module, task: UnlearnTask) -> dict:
        """The weights after SLUG's step (alpha = 1), with the layer, the step and their cost in the
        stats."""
        start = time.perf_counter()
        names = self.edits(model)
        if not names:
            raise UserError(f"the model has no {self.tower} tower layer for SLUG to edit")
        data, sample_stats = self.samples(model, task, USES)
        forget_grads, retain_grads = self.gradients(model, task, names, data)
        weights = {name: value.detach() for name, value in model.named_parameters()
                   if name in names}
        layer, front = select_layer(forget_grads, retain_grads, weights)
        group = layer_group(layer, names)

        forget_images, forget_labels = materialize(data["forget"]).tensors

        def stepped(step: float) -> dict[str, torch.Tensor]:
            return {name: weights[name] - step * forget_grads[name] for name in group}

        def forget_accuracy(step: float) -> float:  # with the edited model's own text tower
            edited = copy.deepcopy(model)
            edited.load_state_dict(stepped(step), strict=False)
            return zero_shot_accuracy(edited, forget_images, forget_labels,
                                      task.classifier_of(edited), self.batch_size)

        first = float(weights[layer].norm() / forget_grads[layer].norm()) / self.start_divisor
        step, tried = step_search(forget_accuracy, first, self.evaluations, self.forget_target)
        stats = {**sample_stats, "unlearn/layer": layer, "unlearn/step": step,
                 "unlearn/forget_sample_acc": dict(tried)[step],
                 "unlearn/pareto_layers": len(front), "time/unlearn_s": time.perf_counter() - start}
        return {"weights": stepped(step), "stats": stats}

    def gradients(self, model: torch.nn.Module, task: UnlearnTask, names: list[str],
                  data: dict) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """G_f and G_r of the named parameters, on a copy of `model` (the given model's grad flags
        stay as they are)."""
        copied = copy.deepcopy(model).eval()
        for name, parameter in copied.named_parameters():
            # no gradient is computed for what SLUG cannot edit
            parameter.requires_grad_(name in names)
        layers = {name: parameter for name, parameter in copied.named_parameters() if name in names}
        device = task.classifier.device

        # through the text tower where SLUG may edit it, else the task's
        def classifier() -> torch.Tensor:
            return text_classifier(copied, task) if self.tower == "text" else task.classifier

        def forget_loss(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            return class_cosine(copied, classifier(), images.to(device), labels.to(device))

        def retain_loss(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            return classification_loss(copied, classifier(), images.to(device), labels.to(device))

        def batches(dataset):
            return DataLoader(dataset, batch_size=self.batch_size, shuffle=False)

        return (mean_gradients(forget_loss, layers, batches(data["forget"])),
                mean_gradients(retain_loss, layers, batches(data["retain"])))

    def settings(self) -> dict:
        """Every setting but alpha (the samples' own `key`)."""
        return {"method": "slug", "samples": self.samples, "tower": self.tower,
                "forget_target": self.forget_target, "evaluations": self.evaluations,
                "start_divisor": self.start_divisor, "batch_size": self.batch_size}
