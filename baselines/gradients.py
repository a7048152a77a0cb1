"""Gradients averaged over batches, as the one-shot gradient methods take them (SSD's importances,
SLUG's G_f, G_r)."""
from collections.abc import Callable, Iterable

import torch

from ccup.errors import UserError


def mean_gradients(loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                   parameters: dict[str, torch.Tensor],
                   batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                   power: int = 1) -> dict[str, torch.Tensor]:
    """The mean over `batches` of each batch's gradient of `loss(inputs, labels)` (raised
    elementwise to `power`) with respect to each of `parameters` (tensors that require grad), one
    tensor per parameter, of its shape. A parameter the loss does not reach gets 0."""
    total = {name: torch.zeros_like(tensor) for name, tensor in parameters.items()}
    count = 0
    for inputs, labels in batches:
        grads = torch.autograd.grad(loss(inputs, labels), list(parameters.values()),
                                    allow_unused=True)
        for name, grad in zip(parameters, grads, strict=True):
            if grad is not None:
                total[name] += grad.pow(power)
        count += 1
    if count == 0:
        raise UserError("gradients need at least one batch of samples")
    return {name: value / count for name, value in total.items()}
