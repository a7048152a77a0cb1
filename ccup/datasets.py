"""The Dataset classes the loaders return (image files, greyscale arrays in memory) and what the
suite reads from any dataset of (image, label) pairs: its key across runs, its labels, per-class
draws, its images as tensors."""
import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset
from torchvision.datasets.folder import default_loader

from ccup.errors import UserError


def dataset_key(dataset: Dataset) -> str | None:
    """What identifies a dataset split as the model sees it across runs (torchvision's repr names
    root, split and transform), or None where nothing does: a default repr names a memory address,
    new in every process."""
    if isinstance(dataset, Subset):
        inner = dataset_key(dataset.dataset)
        indices = hashlib.sha256(str(list(dataset.indices)).encode()).hexdigest()
        return inner and f"Subset({inner}, indices {indices})"
    text = f"{dataset!r}|{len(dataset)}"
    return None if " at 0x" in text or "Lambda()" in text else text


def materialize(dataset: Dataset, batch_size: int = 1024) -> TensorDataset:
    """Apply the dataset's transform once and keep the result as tensors, for repeated passes."""
    images, labels = zip(*DataLoader(dataset, batch_size=batch_size), strict=True)
    return TensorDataset(torch.cat(images), torch.cat(labels))


def labels_of(dataset: Dataset) -> list[int]:
    """Labels without decoding images where the dataset keeps them (torchvision's `targets`, also
    under a Subset), else by iterating."""
    if isinstance(dataset, Subset):
        labels = labels_of(dataset.dataset)
        return [labels[i] for i in dataset.indices]
    targets = getattr(dataset, "targets", None)
    if targets is not None:  # tolist: iterating a tensor makes a tensor of every label
        return torch.as_tensor(targets).tolist()
    return [int(label) for _, labels in DataLoader(dataset, batch_size=256) for label in labels]


def per_class(dataset: Dataset, classes: Iterable[int], count: int | None,
              seed: int | torch.Generator) -> Subset:
    """Up to `count` images of each of `classes` (all of them when `count` is None), drawn with
    `seed` (or a generator that goes on from an earlier draw); indices in class order, then draw
    order. Evaluations draw with a fixed seed, so that every job scores the same images and their
    features are cached once per image tower."""
    labels = torch.as_tensor(labels_of(dataset))
    generator = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)
    picked = []
    for c in classes:
        members = (labels == c).nonzero().flatten()
        picked += members[torch.randperm(len(members), generator=generator)[:count]].tolist()
    return Subset(dataset, picked)


# Which images of a test split a job scores: all of them, or one of its two halves, the validation
# half that searches tune on and the test half that a benchmark reports (`test_images`,
# conf/config.yaml).
HALVES = ("all", "validation", "test")


def half(dataset: Dataset, which: str) -> Dataset:
    """`which` half of a test split, by a rule fixed once: each class's images in numpy's
    default_rng(0) permutation of their order, the first half (rounded down) validation, the rest
    test; so the halves are disjoint and stratified, and the same on every machine. `all` is the
    split itself."""
    if which not in HALVES:
        raise UserError(f"test_images={which!r}: score all of a test split's images, or its "
                        f"validation or test half ({', '.join(HALVES)})")
    if which == "all":
        return dataset
    labels = np.asarray(labels_of(dataset))
    picked = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)[
            np.random.default_rng(0).permutation((labels == label).sum())]
        picked += (members[:len(members) // 2] if which == "validation"
                   else members[len(members) // 2:]).tolist()
    return Subset(dataset, sorted(picked))


class ImageList(Dataset):
    """Image files with their labels: (transform(RGB PIL image), label)."""

    def __init__(self, samples: Sequence[tuple[Path, int]], transform: Callable | None = None):
        self.samples, self.transform = list(samples), transform
        # labels without decoding images, as torchvision keeps them
        self.targets = [label for _, label in self.samples]

    def __repr__(self) -> str:
        """What identifies the split for the feature cache: its files with their labels, sizes and
        modification times, so that an image replaced under the same name is encoded anew."""
        listing = hashlib.sha256()
        for path, label in self.samples:
            try:
                info = os.stat(path)
                listing.update(f"{path}\0{label}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
            except OSError:  # gone: reading it will say so
                listing.update(f"{path}\0{label}\n".encode())
        return (f"ImageList({len(self)} images, listing {listing.hexdigest()[:16]}, "
                f"transform={self.transform!r})")

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, label = self.samples[index]
        image = read_image(path)
        return (self.transform(image) if self.transform else image), label


def read_image(path: str | Path) -> Image.Image:
    """An image file as an RGB PIL image, as torchvision's loaders read it.

    Raises:
        UserError: the file cannot be read or decoded (truncated, not an image), naming it: one bad
            file among thousands would otherwise end a job in PIL's traceback inside a DataLoader,
            which never names it.
    """
    try:
        return default_loader(str(path))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:  # PIL's errors
        said = " ".join(str(exc).split()) or type(exc).__name__
        reason = "not an image PIL can read" if isinstance(exc, UnidentifiedImageError) else said
        raise UserError(f"cannot read image {path} ({reason}): replace or remove it") from exc


class ArrayImages(Dataset):
    """Greyscale images held in memory, (n, h, w) uint8, with their labels: (transform(PIL image),
    label)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Callable | None = None):
        self.images = images
        self.labels = labels
        self.transform = transform
        self.targets = labels.tolist()

    def __repr__(self) -> str:  # identifies the split for the feature cache
        content = hashlib.sha256(self.images.tobytes() + self.labels.tobytes()).hexdigest()[:16]
        return f"ArrayImages({len(self)} images, content {content}, transform={self.transform!r})"

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        image = Image.fromarray(self.images[index])
        return (self.transform(image) if self.transform else image), int(self.labels[index])
