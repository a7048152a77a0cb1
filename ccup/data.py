"""Datasets behind one signature: `load(split, transform) -> Dataset` of (image, label) pairs."""
import gzip
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset
from torchvision.datasets import CIFAR10, CIFAR100, FashionMNIST, ImageFolder, OxfordIIITPet
from torchvision.datasets.folder import IMG_EXTENSIONS, default_loader, make_dataset

from ccup import storage
from ccup.classnames import class_folders, split_folder
from ccup.errors import MissingFiles, UserError, one_line, some

IMAGENET_CLASSES = 1000

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
    raise MissingFiles(
        f"Fashion-MNIST not found in {list(map(str, roots))}: run `make data` "
        "(installs Debian's dataset-fashion-mnist, or downloads with torchvision into data/), "
        "or point dataset.load.roots at a folder that holds it"
    )


def _gunzip(src: Path, dst: Path) -> None:
    """Unpack `src` to `dst` once; torchvision reads the file itself, so the cache only checks that it is there."""
    storage.cached(dst, lambda: gzip.decompress(src.read_bytes()), read=Path.stat, write=storage.write_bytes)


def dataset_key(dataset: Dataset) -> str | None:
    """What identifies a dataset split as the model sees it across runs (torchvision's repr names root, split and
    transform), or None where nothing does: a default repr names a memory address, new in every process."""
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
    """Labels without decoding images where the dataset keeps them (torchvision's `targets`, also under a Subset),
    else by iterating."""
    if isinstance(dataset, Subset):
        labels = labels_of(dataset.dataset)
        return [labels[i] for i in dataset.indices]
    targets = getattr(dataset, "targets", None)
    if targets is not None:  # tolist: iterating a tensor makes a tensor of every label
        return torch.as_tensor(targets).tolist()
    return [int(label) for _, labels in DataLoader(dataset, batch_size=256) for label in labels]


def per_class(dataset: Dataset, classes: Iterable[int], count: int | None, seed: int | torch.Generator) -> Subset:
    """Up to `count` images of each of `classes` (all of them when `count` is None), drawn with `seed` (or a generator
    that goes on from an earlier draw); indices in class order, then draw order. Evaluations draw with a fixed seed,
    so that every job scores the same images and their features are cached once per image tower."""
    labels = torch.as_tensor(labels_of(dataset))
    generator = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)
    picked = []
    for c in classes:
        members = (labels == c).nonzero().flatten()
        picked += members[torch.randperm(len(members), generator=generator)[:count]].tolist()
    return Subset(dataset, picked)


# Which images of a test split a job scores: all of them, or one of its two halves, the validation half that searches
# tune on and the test half that a benchmark reports (`test_images`, conf/config.yaml).
HALVES = ("all", "validation", "test")


def half(dataset: Dataset, which: str) -> Dataset:
    """`which` half of a test split, by a rule fixed once: each class's images in numpy's default_rng(0) permutation of
    their order, the first half (rounded down) validation, the rest test; so the halves are disjoint and stratified, and
    the same on every machine. `all` is the split itself."""
    if which not in HALVES:
        raise UserError(f"test_images={which!r}: score all of a test split's images, or its validation or test half "
                        f"({', '.join(HALVES)})")
    if which == "all":
        return dataset
    labels = np.asarray(labels_of(dataset))
    picked = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)[np.random.default_rng(0).permutation((labels == label).sum())]
        picked += (members[:len(members) // 2] if which == "validation" else members[len(members) // 2:]).tolist()
    return Subset(dataset, sorted(picked))


class ImageList(Dataset):
    """Image files with their labels: (transform(RGB PIL image), label)."""

    def __init__(self, samples: Sequence[tuple[Path, int]], transform: Callable | None = None):
        self.samples, self.transform = list(samples), transform
        self.targets = [label for _, label in self.samples]  # labels without decoding images, as torchvision keeps them

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
    """Greyscale images held in memory, (n, h, w) uint8, with their labels: (transform(PIL image), label)."""

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


def json_split(root: str, split_file: str, image_dir: str, classnames: Sequence[str], source: str, split: str,
               transform: Callable | None = None) -> ImageList:
    """A dataset given by a CoOp-style split file, `{"train" | "val" | "test": [[image path, label, class name], ...]}`.

    Image paths are relative to `root/image_dir`. Labels are looked up by class name in `classnames`, the config's
    list, so that a label always indexes the names the prompts are built from, whatever order the split file numbers
    its classes in. Names match after CoOp's own prompt-time cleaning, '_' read as ' '. `source` says where to get the
    files, for the error a missing dataset raises.
    """
    split_path, images = Path(root) / split_file, Path(root) / image_dir
    if not split_path.is_file():
        raise MissingFiles(f"{split_path} not found: expected the split file there and the images under {images}/; "
                        f"{source}")
    splits = json.loads(split_path.read_text())
    if split not in splits:
        raise UserError(f"{split_file} has splits {sorted(splits)}, not {split!r}")
    label_of = {_clean(name): label for label, name in enumerate(classnames)}
    unknown = sorted({name for _, _, name in splits[split] if _clean(name) not in label_of})
    if unknown:
        raise UserError(f"{split_file} names classes that dataset.classnames lacks, e.g. {unknown[:3]}: the config's "
                        "class names must be the split file's")
    samples = [(images / path, label_of[_clean(name)]) for path, _, name in splits[split]]
    missing = [path for path, _ in samples if not path.is_file()]
    if missing:
        raise MissingFiles(f"{len(missing)} of the {len(samples)} {split} images of {split_file} are missing, e.g. "
                        f"{missing[0]}: its paths are read relative to {images} (dataset.load.image_dir); {source}")
    return ImageList(samples, transform)


def _clean(classname: str) -> str:
    return classname.replace("_", " ")


def cifar10(root: str, split: str, transform: Callable | None = None, download: bool = False) -> Dataset:
    """CIFAR-10 in torchvision's layout, `root/cifar-10-batches-py/`."""
    return _cifar(CIFAR10, "CIFAR-10", root, split, transform, download)


def cifar100(root: str, split: str, transform: Callable | None = None, download: bool = False) -> Dataset:
    """CIFAR-100 in torchvision's layout, `root/cifar-100-python/`; labels are the 100 fine classes."""
    return _cifar(CIFAR100, "CIFAR-100", root, split, transform, download)


def _cifar(cls: type[CIFAR10], name: str, root: str, split: str, transform: Callable | None,
           download: bool) -> Dataset:
    if split not in ("train", "test"):
        raise UserError(f"{name} has splits 'train' and 'test', not {split!r}")
    return _torchvision(
        lambda: cls(root, train=split == "train", transform=transform, download=download),
        f"{name} not found or incomplete in {Path(root) / cls.base_folder}/: pass dataset.load.download=true to "
        f"download it with torchvision, or extract the python version from https://www.cs.toronto.edu/~kriz/cifar.html "
        f"into {root}",
    )


def oxford_pets(root: str, split: str, transform: Callable | None = None, download: bool = False) -> Dataset:
    """Oxford-IIIT Pet in torchvision's layout, `root/oxford-iiit-pet/{images,annotations}`; labels are the dataset's
    class ids minus one, the breeds in alphabetical order. Split 'train' is the dataset's 'trainval' list: every
    dataset here calls its training images 'train', which is what methods that train ask for."""
    splits = {"train": "trainval", "test": "test"}
    if split not in splits:
        raise UserError(f"Oxford-IIIT Pet has splits 'train' and 'test', not {split!r}")
    folder = Path(root) / "oxford-iiit-pet"
    return _torchvision(
        lambda: OxfordIIITPet(root, split=splits[split], target_types="category", transform=transform,
                              download=download),
        f"Oxford-IIIT Pet not found in {folder}/ (images/*.jpg, annotations/trainval.txt, annotations/test.txt): pass "
        f"dataset.load.download=true to download it with torchvision, or extract images.tar.gz and annotations.tar.gz "
        f"from https://www.robots.ox.ac.uk/~vgg/data/pets/ there",
    )


def _torchvision(make: Callable[[], Dataset], missing: str) -> Dataset:
    """`make()`, with torchvision's error for missing, corrupt or undownloadable data turned into one UserError line."""
    try:
        return make()
    except (RuntimeError, OSError) as exc:
        raise MissingFiles(f"{missing} (torchvision: {' '.join(str(exc).split())})") from exc


def imagenet(root: str, split: str, transform: Callable | None = None) -> Dataset:
    """ImageNet-1k as class folders, `root/<split>/<wnid>/*.JPEG`; labels index the WordNet ids in sorted order, the
    order of OpenAI's class names."""
    if split not in ("train", "val"):
        raise UserError(f"ImageNet has splits 'train' and 'val', not {split!r}")
    folder = Path(root) / split
    found = sum(path.is_dir() for path in folder.iterdir()) if folder.is_dir() else 0
    if found != IMAGENET_CLASSES:  # with a folder missing, every later label would name the wrong class
        raise MissingFiles(
            f"ImageNet {split} not found or incomplete: expected {IMAGENET_CLASSES} class folders "
            f"{folder}/<wnid>/*.JPEG, found {found}; download ILSVRC2012 from https://image-net.org and sort the "
            "validation images into folders named by WordNet id (e.g. with valprep.sh from PyTorch's ImageNet example)"
        )
    return ImageFolder(str(folder), transform=transform, loader=read_image)


def image_folder(root: str, split: str, classnames: Sequence[str], names: Mapping[str, str] | None,
                 test_fraction: float, split_seed: int, transform: Callable | None = None) -> ImageList:
    """Your own images, one folder per class as torchvision's ImageFolder reads them: `root/train/<class>/*` and
    `root/test/<class>/*`, or a flat `root/<class>/*` split here (`flat_split`).

    A folder's label is the index of its class name in `classnames`, found by name: the folder name, or the word
    `names` maps it to. So a class list in any order labels every image right, and a folder the list lacks is refused.
    """
    if split not in ("train", "test"):
        raise UserError(f"a folder dataset has splits 'train' and 'test', not {split!r}")
    split_dir, flat = split_folder(root, split)
    names = names or {}
    label_of = {name: label for label, name in enumerate(classnames)}
    folders = class_folders(split_dir)
    unknown = [folder for folder in folders if names.get(folder, folder) not in label_of]
    if unknown:
        raise UserError(f"class folder {unknown[0]!r} of {split_dir} is not among dataset.classnames "
                        f"{some(classnames)}: name it in dataset.names (folder: class name), or leave "
                        "dataset.classnames to be read from the folders")
    class_to_idx = {folder: label_of[names.get(folder, folder)] for folder in folders}
    try:
        samples = make_dataset(str(split_dir), class_to_idx, extensions=IMG_EXTENSIONS)
    except FileNotFoundError as exc:  # a class folder without a single image
        raise MissingFiles(f"{split_dir}: {one_line(exc)}") from exc
    if flat:
        samples = flat_split(samples, split, test_fraction, split_seed)
    return ImageList(samples, transform)


def flat_split(samples: Sequence[tuple[str, int]], split: str, test_fraction: float,
               split_seed: int) -> list[tuple[str, int]]:
    """One split of a flat folder's images: of each class's images, in file-name order and then shuffled by numpy's
    default_rng(split_seed), the first round(test_fraction * n) (at least one) are the test split, the rest train."""
    if not 0 < test_fraction < 1:
        raise UserError(f"dataset.load.test_fraction lies in (0, 1), got {test_fraction!r}")
    kept = []
    for label in sorted({label for _, label in samples}):
        members = sorted(path for path, of in samples if of == label)
        order = np.random.default_rng(split_seed).permutation(len(members))
        n_test = max(1, round(test_fraction * len(members)))
        picked = order[:n_test] if split == "test" else order[n_test:]
        kept += [(members[i], label) for i in sorted(picked)]
    return kept


def digits(test_size: int | float, split_seed: int, split: str, transform: Callable | None = None) -> ArrayImages:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes), split once into train and test,
    stratified by class, with a fixed seed; `test_size` is a count or a fraction, as train_test_split takes it.

    A pixel counts the set pixels (0..16) of a 4x4 block of the original 32x32 bitmap; scaled to 0..255 it is an
    8-bit grey level.
    """
    from sklearn.datasets import load_digits  # only this dataset needs scikit-learn, and importing it takes a while
    from sklearn.model_selection import train_test_split

    if split not in ("train", "test"):
        raise UserError(f"digits has splits 'train' and 'test', not {split!r}")
    bunch = load_digits()
    images = np.rint(bunch.images * (255 / 16)).astype(np.uint8)  # (1797, 8, 8)
    train, test = train_test_split(np.arange(len(images)), test_size=test_size, stratify=bunch.target,
                                   random_state=split_seed)
    keep = train if split == "train" else test
    return ArrayImages(images[keep], bunch.target[keep], transform)
