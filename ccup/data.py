"""Datasets behind one signature: `load(split, transform) -> Dataset` of (image, label) pairs."""
import gzip
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torchvision.datasets import FashionMNIST

from ccup.errors import UserError

FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def fashion_mnist(split: str, roots: Sequence[str], cache_dir: str, transform: Callable | None = None) -> Dataset:
    """Fashion-MNIST from the first of `roots` that holds it.

    A root may use torchvision's layout (`root/FashionMNIST/raw/<idx files>`) or hold the original gzipped idx
    files directly, as Debian's `dataset-fashion-mnist` does; those are unpacked once into `cache_dir`, since
    torchvision reads only uncompressed idx files.
    """
    if split not in ("train", "test"):
        raise UserError(f"Fashion-MNIST has splits 'train' and 'test', not {split!r}")
    for root in map(Path, roots):
        if all((root / "FashionMNIST" / "raw" / name).exists() for name in FASHION_MNIST_FILES):
            return FashionMNIST(str(root), train=split == "train", transform=transform)
        if all((root / f"{name}.gz").exists() for name in FASHION_MNIST_FILES):
            unpacked = Path(cache_dir) / "fashion-mnist"
            for name in FASHION_MNIST_FILES:
                _gunzip(root / f"{name}.gz", unpacked / "FashionMNIST" / "raw" / name)
            return FashionMNIST(str(unpacked), train=split == "train", transform=transform)
    raise UserError(
        f"Fashion-MNIST not found in {list(map(str, roots))}: run `make data` "
        "(installs Debian's dataset-fashion-mnist, or downloads with torchvision into data/), "
        "or point dataset.load.roots at a folder that holds it"
    )


def _gunzip(src: Path, dst: Path) -> None:
    """Unpack `src` to `dst` unless done; write-then-rename so parallel jobs never read half a file."""
    if dst.exists():
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(gzip.decompress(src.read_bytes()))
    os.replace(tmp, dst)


def materialize(dataset: Dataset, batch_size: int = 1024) -> TensorDataset:
    """Apply the dataset's transform once and keep the result as tensors, for repeated passes."""
    images, labels = zip(*DataLoader(dataset, batch_size=batch_size), strict=True)
    return TensorDataset(torch.cat(images), torch.cat(labels))
