"""The loaders the dataset configs target (conf/dataset/*.yaml, `load`), one signature:
`load(split, transform) -> Dataset` of (image, label) pairs."""
import gzip
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset
from torchvision.datasets import CIFAR10, CIFAR100, FashionMNIST, ImageFolder, OxfordIIITPet
from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset

from ccup import storage
from ccup.classnames import class_folders, split_folder
from ccup.datasets import ArrayImages, ImageList, read_image
from ccup.errors import MissingFiles, UserError, listed, one_line

IMAGENET_CLASSES = 1000

FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def fashion_mnist(split: str, roots: Sequence[str], cache_dir: str,
                  transform: Callable | None = None) -> Dataset:
    """Fashion-MNIST from the first of `roots` that holds it.

    A root may use torchvision's layout (`root/FashionMNIST/raw/<idx files>`) or hold the original
    gzipped idx files directly, as Debian's `dataset-fashion-mnist` does; those are unpacked once
    into `cache_dir`, since torchvision reads only uncompressed idx files.
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
    """Unpack `src` to `dst` once; torchvision reads the file itself, so the cache only checks that
    it is there."""
    storage.cached(dst, lambda: gzip.decompress(src.read_bytes()), read=Path.stat,
                   write=storage.write_bytes)


def json_split(root: str, split_file: str, image_dir: str, classnames: Sequence[str], source: str,
               split: str, transform: Callable | None = None) -> ImageList:
    """A dataset given by a CoOp-style split file, `{"train" | "val" | "test": [[image path, label,
    class name], ...]}`.

    Image paths are relative to `root/image_dir`. Labels are looked up by class name in
    `classnames`, the config's list, so that a label always indexes the names the prompts are built
    from, whatever order the split file numbers its classes in. Names match after CoOp's own
    prompt-time cleaning, '_' read as ' '. `source` says where to get the files, for the error a
    missing dataset raises.
    """
    split_path, images = Path(root) / split_file, Path(root) / image_dir
    if not split_path.is_file():
        raise MissingFiles(f"{split_path} not found: expected the split file there and the images "
                           f"under {images}/; {source}")
    splits = json.loads(split_path.read_text())
    if split not in splits:
        raise UserError(f"{split_file} has splits {sorted(splits)}, not {split!r}")
    label_of = {_clean(name): label for label, name in enumerate(classnames)}
    unknown = sorted({name for _, _, name in splits[split] if _clean(name) not in label_of})
    if unknown:
        raise UserError(f"{split_file} names classes that dataset.classnames lacks, e.g. "
                        f"{unknown[:3]}: the config's class names must be the split file's")
    samples = [(images / path, label_of[_clean(name)]) for path, _, name in splits[split]]
    missing = [path for path, _ in samples if not path.is_file()]
    if missing:
        raise MissingFiles(f"{len(missing)} of the {len(samples)} {split} images of {split_file} "
                           f"are missing, e.g. {missing[0]}: its paths are read relative to "
                           f"{images} (dataset.load.image_dir); {source}")
    return ImageList(samples, transform)


def _clean(classname: str) -> str:
    return classname.replace("_", " ")


def cifar10(root: str, split: str, transform: Callable | None = None,
            download: bool = False) -> Dataset:
    """CIFAR-10 in torchvision's layout, `root/cifar-10-batches-py/`."""
    return _cifar(CIFAR10, "CIFAR-10", root, split, transform, download)


def cifar100(root: str, split: str, transform: Callable | None = None,
             download: bool = False) -> Dataset:
    """CIFAR-100 in torchvision's layout, `root/cifar-100-python/`; labels are the 100 fine
    classes."""
    return _cifar(CIFAR100, "CIFAR-100", root, split, transform, download)


def _cifar(cls: type[CIFAR10], name: str, root: str, split: str, transform: Callable | None,
           download: bool) -> Dataset:
    if split not in ("train", "test"):
        raise UserError(f"{name} has splits 'train' and 'test', not {split!r}")
    return _torchvision(
        lambda: cls(root, train=split == "train", transform=transform, download=download),
        f"{name} not found or incomplete in {Path(root) / cls.base_folder}/: pass "
        "dataset.load.download=true to download it with torchvision, or extract the python version "
        f"from https://www.cs.toronto.edu/~kriz/cifar.html into {root}",
    )


def oxford_pets(root: str, split: str, transform: Callable | None = None,
                download: bool = False) -> Dataset:
    """Oxford-IIIT Pet in torchvision's layout, `root/oxford-iiit-pet/{images,annotations}`; labels
    are the dataset's class ids minus one, the breeds in alphabetical order. Split 'train' is the
    dataset's 'trainval' list: every dataset here calls its training images 'train', which is what
    methods that train ask for."""
    splits = {"train": "trainval", "test": "test"}
    if split not in splits:
        raise UserError(f"Oxford-IIIT Pet has splits 'train' and 'test', not {split!r}")
    folder = Path(root) / "oxford-iiit-pet"
    return _torchvision(
        lambda: OxfordIIITPet(root, split=splits[split], target_types="category",
                              transform=transform, download=download),
        f"Oxford-IIIT Pet not found in {folder}/ (images/*.jpg, annotations/trainval.txt, "
        "annotations/test.txt): pass dataset.load.download=true to download it with torchvision, "
        "or extract images.tar.gz and annotations.tar.gz from "
        "https://www.robots.ox.ac.uk/~vgg/data/pets/ there",
    )


def _torchvision(make: Callable[[], Dataset], missing: str) -> Dataset:
    """`make()`, with torchvision's error for missing, corrupt or undownloadable data turned into
    one UserError line."""
    try:
        return make()
    except (RuntimeError, OSError) as exc:
        raise MissingFiles(f"{missing} (torchvision: {' '.join(str(exc).split())})") from exc


def imagenet(root: str, split: str, transform: Callable | None = None) -> Dataset:
    """ImageNet-1k as class folders, `root/<split>/<wnid>/*.JPEG`; labels index the WordNet ids in
    sorted order, the order of OpenAI's class names."""
    if split not in ("train", "val"):
        raise UserError(f"ImageNet has splits 'train' and 'val', not {split!r}")
    folder = Path(root) / split
    found = sum(path.is_dir() for path in folder.iterdir()) if folder.is_dir() else 0
    # with a folder missing, every later label would name the wrong class
    if found != IMAGENET_CLASSES:
        raise MissingFiles(
            f"ImageNet {split} not found or incomplete: expected {IMAGENET_CLASSES} class folders "
            f"{folder}/<wnid>/*.JPEG, found {found}; download ILSVRC2012 from "
            "https://image-net.org and sort the validation images into folders named by WordNet id "
            "(e.g. with valprep.sh from PyTorch's ImageNet example)"
        )
    return ImageFolder(str(folder), transform=transform, loader=read_image)


def image_folder(root: str, split: str, classnames: Sequence[str], names: Mapping[str, str] | None,
                 test_fraction: float, split_seed: int,
                 transform: Callable | None = None) -> ImageList:
    """Your own images, one folder per class as torchvision's ImageFolder reads them:
    `root/train/<class>/*` and `root/test/<class>/*`, or a flat `root/<class>/*` split here
    (`flat_split`).

    A folder's label is the index of its class name in `classnames`, found by name: the folder name,
    or the word `names` maps it to. So a class list in any order labels every image right, and a
    folder the list lacks is refused.
    """
    if split not in ("train", "test"):
        raise UserError(f"a folder dataset has splits 'train' and 'test', not {split!r}")
    split_dir, flat = split_folder(root, split)
    names = names or {}
    label_of = {name: label for label, name in enumerate(classnames)}
    folders = class_folders(split_dir)
    unknown = [folder for folder in folders if names.get(folder, folder) not in label_of]
    if unknown:
        raise UserError(f"class folder {unknown[0]!r} of {split_dir} is not among "
                        f"dataset.classnames {listed(classnames)}: name it in dataset.names "
                        "(folder: class name), or leave dataset.classnames to be read from the "
                        "folders")
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
    """One split of a flat folder's images: of each class's images, in file-name order and then
    shuffled by numpy's default_rng(split_seed), the first round(test_fraction * n) (at least one)
    are the test split, the rest train."""
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


def digits(test_size: int | float, split_seed: int, split: str,
           transform: Callable | None = None) -> ArrayImages:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes), split once into
    train and test, stratified by class, with a fixed seed; `test_size` is a count or a fraction, as
    train_test_split takes it.

    A pixel counts the set pixels (0..16) of a 4x4 block of the original 32x32 bitmap; scaled to
    0..255 it is an 8-bit grey level.
    """
    # only this dataset needs scikit-learn, and importing it takes a while
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if split not in ("train", "test"):
        raise UserError(f"digits has splits 'train' and 'test', not {split!r}")
    bunch = load_digits()
    images = np.rint(bunch.images * (255 / 16)).astype(np.uint8)  # (1797, 8, 8)
    train, test = train_test_split(np.arange(len(images)), test_size=test_size,
                                   stratify=bunch.target, random_state=split_seed)
    keep = train if split == "train" else test
    return ArrayImages(images[keep], bunch.target[keep], transform)
