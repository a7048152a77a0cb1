"""Data-free forget samples (Kravets & Namboodiri, WACV 2025; docs/method.md#synthetic-samples):
images grown from noise by gradient ascent on a class's text embedding until the model classifies
them as that class with confidence."""
import math

import torch
import torch.nn.functional as F
from torchvision.transforms.functional import gaussian_blur

# the paper's step size and jitter are for 224-px images; other sizes scale them
REFERENCE_SIZE = 224


def synthesize(model, classifier: torch.Tensor, target: int, n: int, size, mean, std,
               generator: torch.Generator, *, steps: int, step_size: float, jitter: int,
               blur_every: int, blur_sigma: float, norm_weight: float, temperature: float,
               threshold: float, threshold_step: float,
               threshold_floor: float) -> torch.Tensor | None:
    """(n, 3, H, W) normalised images that `model` assigns to class `target` with
    softmax(temperature * cos) above a threshold: each attempt ascends for at most `steps` steps
    from fresh noise; samples still short of it start again with the threshold lowered by
    `threshold_step`, down to `threshold_floor`. None if some never get there."""
    height, width = (size, size) if isinstance(size, int) else size
    # noise is drawn on the CPU generator, then moved: the same samples on any device
    device = classifier.device
    mean, std = (torch.tensor(mean, device=device).view(1, 3, 1, 1),
                 torch.tensor(std, device=device).view(1, 3, 1, 1))
    low, high = -mean / std, (1 - mean) / std  # the pixel range [0, 1] after normalisation
    scale = math.sqrt(height * width) / REFERENCE_SIZE
    images = torch.empty(n, 3, height, width, device=device)
    todo = torch.arange(n, device=device)
    while todo.numel() and threshold >= threshold_floor - 1e-9:
        noise = torch.randn(len(todo), 3, height, width, generator=generator).to(device)
        x = torch.maximum(torch.minimum(noise, high), low)
        accepted = ascend(model, classifier, target, x, low, high, generator, steps=steps,
                          step_size=step_size * scale, jitter=max(1, round(jitter * scale)),
                          blur_every=blur_every, blur_sigma=blur_sigma, norm_weight=norm_weight,
                          temperature=temperature, threshold=threshold)
        images[todo[accepted]] = x[accepted]
        todo, threshold = todo[~accepted], threshold - threshold_step
    return images.cpu() if todo.numel() == 0 else None


def ascend(model, classifier, target, x, low, high, generator, *, steps, step_size, jitter,
           blur_every, blur_sigma, norm_weight, temperature, threshold) -> torch.Tensor:
    """Ascend x (B, 3, H, W) in place on temperature * cos(image, class) - norm_weight * ||x||; a
    sample stops moving once it is accepted. Returns the (B,) mask of accepted samples."""
    accepted = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    for step in range(steps + 1):
        with torch.no_grad():  # accept on the image as it will be used, not on its jittered copy
            cos = F.normalize(model.encode_image(x), dim=-1) @ classifier  # (B, C)
            confidence = (temperature * cos).softmax(dim=-1)[:, target]
            accepted |= (cos.argmax(dim=-1) == target) & (confidence > threshold)
        if accepted.all() or step == steps:
            break
        dy, dx = torch.randint(-jitter, jitter + 1, (2,), generator=generator).tolist()
        # random jitter, undone on the gradient
        shifted = torch.roll(x, (dy, dx), dims=(2, 3)).requires_grad_()
        cos = F.normalize(model.encode_image(shifted), dim=-1) @ classifier
        objective = temperature * cos[:, target] - norm_weight * shifted.flatten(1).norm(dim=1)
        (grad,) = torch.autograd.grad(objective.sum(), shifted)
        with torch.no_grad():
            grad = torch.roll(grad, (-dy, -dx), dims=(2, 3))
            move = ~accepted
            norms = grad[move].flatten(1).norm(dim=1).clamp(min=1e-12).view(-1, 1, 1, 1)
            x[move] = torch.maximum(torch.minimum(x[move] + step_size * grad[move] / norms, high),
                                    low)
            if (step + 1) % blur_every == 0:
                x[move] = gaussian_blur(x[move], kernel_size=3, sigma=blur_sigma)
    return accepted
