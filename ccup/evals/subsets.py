"""Fixed draws of a dataset's images by class, shared by the evaluations that need more images than the test split's
forget classes: the same images for every job, so their features are cached once per image tower."""
from collections.abc import Iterable

import torch
from torch.utils.data import Dataset, Subset

from baselines.samples import labels_of


def per_class(dataset: Dataset, classes: Iterable[int], count: int | None, seed: int) -> Subset:
    """Up to `count` images of each of `classes` (all of them when `count` is None), drawn with `seed`; indices in
    class order, then draw order."""
    labels = torch.as_tensor(labels_of(dataset))
    generator = torch.Generator().manual_seed(seed)
    picked = []
    for c in classes:
        members = (labels == c).nonzero().flatten()
        picked += members[torch.randperm(len(members), generator=generator)[:count]].tolist()
    return Subset(dataset, picked)
