"""LEACE as a method: Belrose et al., "LEACE: Perfect linear concept erasure in closed form"
(NeurIPS 2023, arXiv:2306.03819), through the authors' package `concept-erasure` (`LeaceFitter`),
folded into the image tower's final projection as CCUP's W is.

The concept is "is a forget class", one binary column, fitted on the L2-normalised image embeddings
of the `samples` images (the forget and retain sets the fine-tuning baselines train on;
`samples=synthetic` fits on synthetic images, so the method is then data-free). Normalised, not raw:
zero-shot classification reads an image only through its normalised embedding u (argmax_c of cos(z,
t_c) is argmax_c of u . t_c), so u is where the concept has to be erased, and because the map W is
linear, normalize(W z) = normalize(W u): folding W into the projection, which acts on the raw z,
gives the same classification as applying it to u. Fitted on raw z, the eraser would spend itself on
the image's norm, which the classifier never reads.

The eraser is affine, x -> x - P (x - mu) with P = proj_left @ proj_right (rank 1 for a binary
concept) and mu the samples' mean embedding. Its linear part W = I - P is what is folded, for every
kind of tower, and alpha scales it like CCUP's, W_alpha = I - alpha P. The shift P mu is dropped,
also where the projection has a bias (ModifiedResNet's c_proj): the shift lives on the unit sphere
of u, while a bias would be added to the raw z before normalisation, at each image's own norm, so no
bias reproduces it. The consequence: the edited model embeds an image as W u (up to its norm), not
as LEACE's W u + P mu. LEACE's guarantee survives the constant: the class-conditional means of W u
are equal (both (I - P) mu), so no affine classifier tells forget from retain images better than a
constant. The cosine scores do not: each class's score loses the offset (P mu) . t_c, so the edited
model's zero-shot predictions can differ from the ones LEACE's own output gives.
`unlearn/leace_shift` records |P mu| (embeddings have norm 1), the size of what was dropped, and
`python -m baselines.leace` measures what it changes on the embedded benchmark's test classes
(results/leace/).
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from concept_erasure import LeaceEraser, LeaceFitter
from torch.utils.data import DataLoader, Dataset

from ccup.datasets import labels_of
from ccup.errors import UserError
from ccup.method import Projection
from ccup.projection import LowRank
from ccup.task import UnlearnTask

if TYPE_CHECKING:  # pandas for the measurement alone: a job that runs LEACE never reads a table
    import pandas as pd

# the concept needs both sides: images that have it and images that do not
USES = ("forget", "retain")


class Leace(Projection):
    """Fits LEACE's eraser of "is a forget class" on the normalised image embeddings of the samples
    that `samples` builds; its linear part is the map folded (see the module's docstring)."""

    def __init__(self, alpha: float, samples: Callable, batch_size: int):
        super().__init__(alpha)
        if not batch_size >= 1:
            raise UserError(f"method.batch_size must be at least 1, got {batch_size}")
        self.samples = samples
        self.batch_size = batch_size

    def eraser(self, model: torch.nn.Module, task: UnlearnTask) -> tuple[LeaceEraser, dict]:
        """LEACE's eraser of "is a forget class", fitted on the samples' normalised embeddings, with
        what building the samples cost."""
        data, sample_stats = self.samples(model, task, USES)
        forget = embed(model, data["forget"], self.batch_size)
        retain = embed(model, data["retain"], self.batch_size)
        # float64: the fitter computes in its input's dtype, and LowRank applies a map in float64 as
        # CCUP's
        embeddings = torch.cat([forget, retain]).double()
        concept = torch.cat([torch.ones(len(forget)), torch.zeros(len(retain))]).double()[:, None]
        return LeaceFitter.fit(embeddings, concept).eraser, sample_stats

    def unlearning_map(self, model: torch.nn.Module, task: UnlearnTask) -> LowRank:
        eraser, sample_stats = self.eraser(model, task)
        # The eraser applies x - (x - mu) proj_right^T proj_left^T to rows: on columns, I -
        # proj_left proj_right, which is LowRank's I - U V^T with U = proj_left and V =
        # proj_right^T.
        W = LowRank(eraser.proj_left, eraser.proj_right.mH)
        self.stats = {**sample_stats, "unlearn/leace_shift": shift(eraser).norm().item()}
        return W


def shift(eraser: LeaceEraser) -> torch.Tensor:
    """(d,) P mu: what the eraser adds to every embedding besides its linear part, the part the
    folded map drops."""
    return eraser.proj_left @ (eraser.proj_right @ eraser.bias)


def shift_effect(eraser: LeaceEraser, embeddings: torch.Tensor, labels: torch.Tensor,
                 classifier: torch.Tensor, forget_idx: list[int]) -> dict[str, float]:
    """What dropping the shift changes, on (N, d) normalised test embeddings of the original model,
    their (N,) labels and the (d, C) zero-shot classifier: forget and retain accuracy in percent
    with the folded map (W u, as method=leace's model predicts) and with LEACE's own output
    (eraser(u) = W u + P mu), and the share of images predicted alike."""
    u = embeddings.double()
    folded = u - u @ (eraser.proj_left @ eraser.proj_right).T  # rows: W u
    exact = folded + shift(eraser)  # eraser(u), as concept-erasure's LeaceEraser applies it
    predicted = {name: (x @ classifier.double()).argmax(dim=1)
                 for name, x in [("folded", folded), ("exact", exact)]}
    forget = torch.isin(labels, torch.tensor(forget_idx))
    metrics = {}
    for name, prediction in predicted.items():
        right = (prediction == labels).double()
        metrics |= {f"forget/acc {name}": 100 * right[forget].mean().item(),
                    f"retain/acc {name}": 100 * right[~forget].mean().item()}
    return {**metrics, "predicted alike %":
            100 * (predicted["folded"] == predicted["exact"]).double().mean().item()}


@torch.no_grad()
def embed(model: torch.nn.Module, dataset: Dataset, batch_size: int) -> torch.Tensor:
    """(N, d) L2-normalised image embeddings of `model` for the images of an (image, label) dataset,
    on the CPU."""
    device = next(model.parameters()).device
    batches = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    return torch.cat([model.encode_image(images.to(device), normalize=True).cpu()
                      for images, _ in batches])


def measure(dataset: str = "fashion_mnist", seeds: tuple[int, ...] = (0, 1, 2)) -> pd.DataFrame:
    """`shift_effect` on the embedded model for each test forget class of `dataset` (its
    `test_forget`) and seed, the eraser fitted as method=leace fits it (samples=real, drawn with the
    seed)."""
    import pandas as pd
    from hydra.utils import instantiate

    from ccup.configs import compose
    from ccup.method import build

    cfg = compose("method=leace", f"dataset={dataset}")
    clip, data = instantiate(cfg.model), instantiate(cfg.dataset)
    test = data.load(split=data.split, transform=clip.preprocess)
    embeddings = embed(clip.model, test, batch_size=500)
    labels = torch.as_tensor(labels_of(test))
    train = partial(data.load, split="train", transform=clip.preprocess)
    rows = []
    for forget in data.test_forget:
        task = UnlearnTask.of(clip, data.classnames, data.templates, [forget], train)
        for seed in seeds:
            eraser, _ = build(compose("method=leace", f"dataset={dataset}",
                                      f"seed={seed}").method).eraser(clip.model, task)
            effect = shift_effect(eraser, embeddings, labels, task.classifier, task.forget_idx)
            rows.append({"forget": forget, "seed": seed, "shift": shift(eraser).norm().item(),
                         **effect})
    return pd.DataFrame(rows)


def summary(measured: pd.DataFrame) -> pd.DataFrame:
    """Each column's mean over the forget classes (each one's mean over seeds), with its interval
    (ccup.report)."""
    import pandas as pd

    from ccup.report import cell, interval

    per_class = measured.drop(columns="seed").groupby("forget").mean()
    return pd.DataFrame([{"measure": column,
                          "mean [95% CI] over test classes": cell(per_class[column].mean(),
                                                                  *interval(per_class[column]))}
                         for column in per_class.columns])


def main(argv: list[str] | None = None) -> None:
    """`python -m baselines.leace [results/leace]`: what dropping LEACE's mean shift changes on the
    embedded model's test classes, per class and seed into shift.csv, the summary as markdown into
    shift.md."""
    out = Path((argv if argv is not None else sys.argv[1:] or ["results/leace"])[0])
    measured = measure()
    out.mkdir(parents=True, exist_ok=True)
    measured.to_csv(out / "shift.csv", index=False)
    table = summary(measured).to_markdown(index=False)
    (out / "shift.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
