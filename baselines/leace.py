"""LEACE as a method: Belrose et al., "LEACE: Perfect linear concept erasure in closed form" (NeurIPS 2023,
arXiv:2306.03819), through the authors' package `concept-erasure` (`LeaceFitter`), folded into the image tower's final
projection as CCUP's W is.

The concept is "is a forget class", one binary column, fitted on the L2-normalised image embeddings of the `samples`
images (the forget and retain sets the fine-tuning baselines train on; `samples=synthetic` fits on synthetic images,
so the method is then data-free). Normalised, not raw: zero-shot classification reads an image only through its
normalised embedding u (argmax_c of cos(z, t_c) is argmax_c of u . t_c), so u is where the concept has to be erased,
and because the map W is linear, normalize(W z) = normalize(W u): folding W into the projection, which acts on the raw
z, gives the same classification as applying it to u. Fitted on raw z, the eraser would spend itself on the image's
norm, which the classifier never reads.

The eraser is affine, x -> x - P (x - mu) with P = proj_left @ proj_right (rank 1 for a binary concept) and mu the
samples' mean embedding. Its linear part W = I - P is what is folded, for every kind of tower, and alpha scales it like
CCUP's, W_alpha = I - alpha P. The shift P mu is dropped, also where the projection has a bias (ModifiedResNet's
c_proj): the shift lives on the unit sphere of u, while a bias would be added to the raw z before normalisation, at
each image's own norm, so no bias reproduces it. The consequence: the edited model embeds an image as W u (up to its
norm), not as LEACE's W u + P mu. LEACE's guarantee survives the constant: the class-conditional means of W u are
equal (both (I - P) mu), so no affine classifier tells forget from retain images better than a constant. The cosine
scores do not: each class's score loses the offset (P mu) . t_c before normalisation, so the edited model's zero-shot
predictions are not the ones LEACE's own output would give. `unlearn/leace_shift` records |P mu| (embeddings have
norm 1), the size of what was dropped.
"""
from collections.abc import Callable

import torch
from concept_erasure import LeaceFitter
from torch.utils.data import DataLoader, Dataset

from ccup.errors import UserError
from ccup.method import Projection
from ccup.projection import LowRank
from ccup.task import UnlearnTask

USES = ("forget", "retain")  # the concept needs both sides: images that have it and images that do not


class Leace(Projection):
    """Fits LEACE's eraser of "is a forget class" on the normalised image embeddings of the samples that `samples`
    builds; its linear part is the map folded (see the module's docstring)."""

    def __init__(self, alpha: float, samples: Callable, batch_size: int):
        super().__init__(alpha)
        if not batch_size >= 1:
            raise UserError(f"method.batch_size must be at least 1, got {batch_size}")
        self.samples = samples
        self.batch_size = batch_size

    def unlearning_map(self, model: torch.nn.Module, task: UnlearnTask) -> LowRank:
        data, sample_stats = self.samples(model, task, USES)
        forget = embed(model, data["forget"], self.batch_size)
        retain = embed(model, data["retain"], self.batch_size)
        # float64: the fitter computes in its input's dtype, and LowRank applies a map in float64 as CCUP's
        embeddings = torch.cat([forget, retain]).double()
        concept = torch.cat([torch.ones(len(forget)), torch.zeros(len(retain))]).double()[:, None]
        eraser = LeaceFitter.fit(embeddings, concept).eraser
        # The eraser applies x - (x - mu) proj_right^T proj_left^T to rows: on columns, I - proj_left proj_right,
        # which is LowRank's I - U V^T with U = proj_left and V = proj_right^T.
        W = LowRank(eraser.proj_left, eraser.proj_right.mH)
        shift = eraser.proj_left @ (eraser.proj_right @ eraser.bias)  # P mu, the dropped part
        self.stats = {**sample_stats, "unlearn/leace_shift": shift.norm().item()}
        return W


@torch.no_grad()
def embed(model: torch.nn.Module, dataset: Dataset, batch_size: int) -> torch.Tensor:
    """(N, d) L2-normalised image embeddings of `model` for the images of an (image, label) dataset, on the CPU."""
    device = next(model.parameters()).device
    batches = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    return torch.cat([model.encode_image(images.to(device), normalize=True).cpu() for images, _ in batches])
