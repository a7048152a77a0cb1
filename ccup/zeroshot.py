"""Zero-shot classification with CLIP: class text embeddings and the scores every method, metric and
evaluation uses."""
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from open_clip import build_zero_shot_classifier

from ccup.heads import project
from ccup.metrics import accuracy
from ccup.models import same_text_tower


def class_embeddings(model, tokenizer: Callable, classnames: Sequence[str],
                     templates: Sequence[str]) -> torch.Tensor:
    """(d, C) classifier: per class, the normalised mean of the normalised template embeddings
    (CLIP's ensemble)."""
    device = next(model.parameters()).device
    return build_zero_shot_classifier(model, tokenizer, classnames, templates,
                                      num_classes_per_batch=20, device=device)


def classifier_of(model: torch.nn.Module, original: torch.nn.Module, classifier: torch.Tensor,
                  encode: Callable[[torch.nn.Module], torch.Tensor]) -> torch.Tensor:
    """(d, C) zero-shot classifier of `model`, scored with its own text tower: `classifier`, the
    original's, where that tower is the original's (encoding every prompt costs more than comparing
    weights), else `encode(model)`."""
    return classifier if same_text_tower(model, original) else encode(model)


def zero_shot_logits(model, images: torch.Tensor, classifier: torch.Tensor) -> torch.Tensor:
    """(B, C) logits: logit_scale * cos(image embedding, class embedding)."""
    image = model.encode_image(images, normalize=True)  # (B, d)
    return model.logit_scale.exp() * image @ classifier


def classify(model, images: torch.Tensor, classifier: torch.Tensor) -> torch.Tensor:
    """(B,) zero-shot predictions for (B, ...) images: the nearest of the (d, C) classifier's class
    embeddings."""
    return (model.encode_image(images, normalize=True) @ classifier).argmax(dim=-1)


@torch.no_grad()
def zero_shot_accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
                       classifier: torch.Tensor, batch_size: int = 256) -> float:
    """Zero-shot top-1 accuracy in percent of `model` on (N, ...) images with their (N,) labels,
    against the (d, C) classifier: `batch_size` images at a time on the model's device, in eval
    mode (the model's own mode is put back after).

    Returns:
        `metrics.accuracy` of the predictions: the one accuracy of the suite.
    """
    was_training, device = model.training, next(model.parameters()).device
    model.eval()
    classifier = classifier.to(device)
    try:
        predictions = torch.cat([classify(model, batch.to(device), classifier).cpu()
                                 for batch in images.split(batch_size)])
    finally:
        model.train(was_training)
    return accuracy(predictions, labels)


@torch.no_grad()
def embeddings(model: torch.nn.Module, features: torch.Tensor) -> torch.Tensor:
    """(N, d) L2-normalised image embeddings of `model`, on its device, from its (N, D) features
    before the final projection, as CLIP compares them."""
    return F.normalize(project(model, features.to(next(model.parameters()).device)), dim=-1)


def struck(model: torch.nn.Module, classnames: Sequence[str]) -> list[int]:
    """The indices of `classnames` that `model`'s blocklist strikes from the zero-shot candidates:
    the classes of a blocklist reference (baselines.mask), none for any other model."""
    blocklist = set(getattr(model, "blocklist", ()))
    return [c for c, name in enumerate(classnames) if name in blocklist]


@torch.no_grad()
def predict(model: torch.nn.Module, features: torch.Tensor, classifier: torch.Tensor,
            classnames: Sequence[str] = ()) -> torch.Tensor:
    """(N,) zero-shot class predictions from features before the final projection and a (d, C)
    classifier on the model's device; a class of `classnames` (the classifier's columns) that the
    model's blocklist names is never predicted."""
    scores = embeddings(model, features) @ classifier  # (N, C)
    scores[:, struck(model, classnames)] = -torch.inf
    return scores.argmax(dim=-1).cpu()
