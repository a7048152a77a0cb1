"""Zero-shot classification with CLIP: class text embeddings and the logits every method and metric uses."""
from collections.abc import Callable, Sequence

import torch
from open_clip import build_zero_shot_classifier


def class_embeddings(model, tokenizer: Callable, classnames: Sequence[str],
                     templates: Sequence[str]) -> torch.Tensor:
    """(d, C) classifier: per class, the normalised mean of the normalised template embeddings (CLIP's ensemble)."""
    device = next(model.parameters()).device
    return build_zero_shot_classifier(model, tokenizer, classnames, templates, num_classes_per_batch=20,
                                      device=device)


def zero_shot_logits(model, images: torch.Tensor, classifier: torch.Tensor) -> torch.Tensor:
    """(B, C) logits: logit_scale * cos(image embedding, class embedding)."""
    image = model.encode_image(images, normalize=True)  # (B, d)
    return model.logit_scale.exp() * image @ classifier
